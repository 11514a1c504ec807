"""SCD-Net's objective (docs/reference/methods.md §3; cong-wu/SCD-Net @ 0af1b19 ``scd/builder.py``).

Four InfoNCE terms (:mod:`.info_nce_term`) of the clues against the instance anchor, summed::

    (q_t vs k_i, Queue_i)   (q_s vs k_i, Queue_i)   (q_i vs k_t, Queue_t)   (q_i vs k_s, Queue_s)
"""

from __future__ import annotations

import torch

from .info_nce_term import info_nce

__all__ = ["scd_loss"]


def scd_loss(q: dict[str, torch.Tensor], k: dict[str, torch.Tensor], queues: dict[str, torch.Tensor],
             temperature: float = 0.2) -> dict[str, torch.Tensor]:
    """The four anchor InfoNCE terms and their sum; ``q``/``k`` map "t", "s", "i" to (B, D) features
    (normalised), ``queues`` "t", "s", "i" to (D, K)."""
    ti, acc_ti = info_nce(q["t"], k["i"], queues["i"], temperature)
    si, acc_si = info_nce(q["s"], k["i"], queues["i"], temperature)
    it, acc_it = info_nce(q["i"], k["t"], queues["t"], temperature)
    is_, acc_is = info_nce(q["i"], k["s"], queues["s"], temperature)
    return {"loss": ti + si + it + is_, "nce_ti": ti, "nce_si": si, "nce_it": it, "nce_is": is_,
            "acc": (acc_ti + acc_si + acc_it + acc_is) / 4}
