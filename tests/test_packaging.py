"""The one import namespace survives a real wheel install, not only the editable one.

`methods/` and `protocols/` are top-level folders that install as `harness.methods` and
`harness.protocols` (setup.py). The editable install reaches them through setuptools' import finder;
this test builds the wheel, unpacks it and imports the plugins from the unpacked files alone.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    # --no-build-isolation: the venv's setuptools, no download; a private build folder
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(ROOT)], check=True, cwd=build, capture_output=True)
    (whl,) = out.glob("*.whl")
    return whl


def test_wheel_holds_one_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "harness/methods/usdrl.py" in names
    assert "harness/methods/encoders/dste.py" in names
    assert "harness/methods/checkpoint_formats/usdrl_checkpoint.py" in names
    assert "harness/protocols/linear.py" in names
    assert any(n.startswith("harness/data/readers/ntu/resources/") for n in names)  # package data travels too
    assert not [n for n in names if n.startswith(("methods/", "protocols/", "harness_methods", "harness_protocols"))]


def test_unpacked_wheel_imports_and_registers_every_plugin(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    # -S: no site module, so no .pth file and no editable finder; the venv's packages (torch, ...)
    # are added by path, the harness comes from the unpacked wheel alone
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import harness, harness.methods.usdrl, harness.protocols.linear\n"
        "assert harness.__file__.startswith(sys.argv[1]), harness.__file__\n"
        "from harness.registry import CHECKPOINT_FORMATS, METHODS, PROTOCOLS, ENCODERS\n"
        "print(' '.join(METHODS.names()), '|', ' '.join(PROTOCOLS.names()), '|', ' '.join(ENCODERS.names()), '|',\n"
        "      ' '.join(CHECKPOINT_FORMATS.names()))\n"
    )
    site = sysconfig.get_paths()["purelib"]
    res = subprocess.run([sys.executable, "-S", "-c", code, str(tmp_path / "site"), site],
                         cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    methods, protocols, encoders, formats = (part.split() for part in res.stdout.split("|"))
    assert {"usdrl", "mamp", "umurl", "contrastive", "scdnet", "random", "supervised"} <= set(methods)
    assert {"linear", "knn", "semi", "detection"} <= set(protocols)
    assert {"dste", "sttr"} <= set(encoders)
    assert {"harness-backbone", "harness-checkpoint", "usdrl", "umurl", "scdnet", "mamp"} <= set(formats)
