"""Published checkpoint formats of the methods (installed as ``harness.methods.checkpoint_formats``).

One module per format, each registered with ``@CHECKPOINT_FORMATS.register()`` and naming the method
its backbone belongs to (``method = "usdrl"``); ``harness.checkpoints`` finds them through the
registry, so a new format is one new file here (docs/extending.md).
"""
