"""Built-in evaluation protocols and the PKU-MMD scorer (installed as ``harness.protocols``)."""
