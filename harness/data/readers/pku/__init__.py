"""PKU-MMD (Phase I and II): raw files, split files, and the dataset kind."""
