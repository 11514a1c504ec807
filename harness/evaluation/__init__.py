"""Evaluation building blocks shared by the protocols and the core's own commands.

``features`` (frozen-backbone feature extraction), ``knn`` (cosine k-nearest-neighbour prediction),
``scores`` (per-sample score files for fusion), ``pku_scorer`` and ``intervals`` (the official PKU-MMD
detection scorer and the frames → intervals rules). The protocol plugins in ``harness.protocols``
and the commands ``harness fuse``, ``harness eval-detection`` and ``harness tune`` use them.
"""
