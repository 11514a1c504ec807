"""The data layer: topologies, the prepared on-disk format, readers for raw datasets, augmentation."""
