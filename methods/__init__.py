"""Built-in methods and encoders (installed as ``harness.methods``)."""
