"""The built-in synthetic dataset: a body model, an action library, trimmed clips and untrimmed videos."""
