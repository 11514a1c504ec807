"""`harness bench` benchmarks: augmentation and encoder throughput."""
