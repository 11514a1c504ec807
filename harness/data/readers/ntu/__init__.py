"""NTU RGB+D: .skeleton files, splits, and arrays made by other codebases (2s-AGCN, pyskl)."""
