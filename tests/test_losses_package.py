"""The loss package's layout (methods/losses/): one loss per module, each pinned by its own test file
``tests/test_loss_<module>.py``, and the package re-exporting every public name."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import harness.methods.losses as losses

pytestmark = pytest.mark.unit

MODULES = sorted(m.name for m in pkgutil.iter_modules(losses.__path__) if not m.name.startswith("_"))


def test_every_loss_module_has_its_own_test_file():
    here = Path(__file__).parent
    assert MODULES and [m for m in MODULES if not (here / f"test_loss_{m}.py").is_file()] == []


@pytest.mark.parametrize("module", MODULES)
def test_the_package_reexports_the_module(module):
    mod = importlib.import_module(f"harness.methods.losses.{module}")
    assert mod.__all__
    for name in mod.__all__:
        assert name in losses.__all__ and getattr(losses, name) is getattr(mod, name)
    # a module never shares its name with a function, so `import ...losses.<module>` is the module
    assert module not in losses.__all__
