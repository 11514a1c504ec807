"""Built-in methods and encoders (installed as ``harness_methods``)."""
