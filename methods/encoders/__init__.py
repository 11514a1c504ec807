"""Registered encoders (DSTE, STTR, MAMP's ViT, UmURL's fusion encoder).

Each module registers its encoder in :data:`harness.registry.ENCODERS`; the registry finds them by
scanning this package.
"""
