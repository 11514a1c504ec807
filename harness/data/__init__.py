"""The data layer: topologies, the prepared on-disk format, readers for raw datasets, resampling
and modalities (augmentations are the package :mod:`harness.augment`)."""
