"""Whether the augmentations may read values back to the host.

On the CPU a few data-dependent shortcuts pay (skip the selected-joint pass when no clip selected a
joint; group clips by the kind of map so most need a 2-entry instead of a 6-entry gather): reading
a count is free there. On a GPU each read is a host synchronisation that stalls the queue of
kernels, so the same computation runs without them (every clip through the general gather; the
extra terms are exact zeros, so the result is the same). ``SYNC_FREE`` forces one path (tests run
the GPU path on the CPU); None picks by the data's device.
"""

from __future__ import annotations

import torch

SYNC_FREE: bool | None = None


def sync_free(x: torch.Tensor) -> bool:
    return x.device.type != "cpu" if SYNC_FREE is None else SYNC_FREE
