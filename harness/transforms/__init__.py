"""Clip transforms shared by the readers and the methods: the NTU normalisation, modalities, temporal resampling."""
