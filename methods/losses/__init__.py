"""The losses of the built-in methods, one module per loss (``from harness.methods.losses import X``).

Shared terms (pure functions of projector outputs z ∈ R^{B×D}, all in full precision:
:mod:`._precision`; the D×D sums in their B×B Gram form when B < D: :mod:`._gram`):

- :mod:`.vicreg_terms` — :func:`mse`, :func:`variance_term`, :func:`covariance_term`, :func:`vac`;
- :mod:`.similarity_term` — USDRL's multi-view :func:`similarity`;
- :mod:`.cross_correlation_term` — :func:`cross_correlation` (XC, no epsilon);
- :mod:`.info_nce_term` — MoCo's :func:`info_nce` against a queue.

Objectives of one method each:

- :mod:`.multi_grained` — USDRL's :func:`multi_grained_loss` (5·SIM + 1·VAC + 1e-3·XC over domains);
- :mod:`.vicreg_objective` — :func:`vicreg_loss`; :mod:`.umurl_objective` — :func:`umurl_loss`;
- :mod:`.scdnet_objective` — :func:`scd_loss`; :mod:`.mamp_objective` — :func:`masked_mse`.

Each module is pinned by its own test file, ``tests/test_loss_<module>.py``. Module names differ from
the function names so that ``import harness.methods.losses.<module>`` always gives the module.
"""

from ._gram import _use_gram  # noqa: F401 (tests/test_speed_paths.py checks which form runs)
from .cross_correlation_term import cross_correlation, cross_correlation_pairs
from .info_nce_term import info_nce
from .mamp_objective import masked_mse
from .multi_grained import DOMAINS, multi_grained_loss
from .scdnet_objective import scd_loss
from .similarity_term import similarity
from .umurl_objective import umurl_loss
from .vicreg_objective import vicreg_loss
from .vicreg_terms import covariance_term, mse, vac, variance_term

__all__ = ["mse", "similarity", "variance_term", "covariance_term", "vac", "cross_correlation",
           "cross_correlation_pairs", "multi_grained_loss", "DOMAINS", "info_nce", "vicreg_loss", "umurl_loss",
           "scd_loss", "masked_mse"]
