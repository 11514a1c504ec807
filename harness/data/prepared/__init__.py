"""The prepared on-disk format: writing and reading it, batches of clips, and how --dataset finds a folder."""
