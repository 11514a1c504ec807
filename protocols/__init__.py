"""Built-in evaluation protocols and the PKU-MMD scorer (installed as ``harness_protocols``)."""
