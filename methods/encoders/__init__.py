"""Registered encoders (DSTE, STTR, ...).

Importing this package registers ``dste`` and ``sttr`` in :data:`harness.registry.ENCODERS`.
"""

from .base import Encoder, EncoderOutput, build_encoder
from .dste import DSTE
from .layers import Projector, init_weights
from .sttr import STTR

__all__ = ["Encoder", "EncoderOutput", "build_encoder", "DSTE", "STTR", "Projector", "init_weights"]
