"""The data layer: skeleton topologies (``topology``), the prepared on-disk format and its batches
(``prepared``), readers of raw datasets, one per family (``readers``), and the built-in synthetic
dataset (``synthetic``). Clip transforms (normalisation, modalities, resampling) are the package
:mod:`harness.transforms`; augmentations are :mod:`harness.augment`."""
