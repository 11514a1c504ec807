"""The training engine: loop, AMP, checkpoints, resume, DDP, logs."""
