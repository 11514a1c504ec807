"""Skeleton-SSL benchmark harness: one data pipeline, one engine, every method and protocol."""

__version__ = "0.1.0"
