"""Registered encoders (DSTE, STTR, ...)."""
