import json
import subprocess
import sys
import textwrap

import pytest

from harness.errors import UnknownNameError
from harness.registry import Registry

pytestmark = pytest.mark.unit


def test_register_get_and_suggestions():
    reg = Registry("widget", "harness.test-widgets")

    @reg.register("spinner", variants=["fast", "slow"])
    class Spinner:
        """Spins."""

    assert reg.get("spinner") is Spinner
    assert reg.entry("spinner").variants == ("fast", "slow")
    assert reg.entry("spinner").description == "Spins."
    with pytest.raises(UnknownNameError) as err:
        reg.get("spiner")
    assert "Did you mean 'spinner'" in str(err.value)


def _make_plugin_dist(tmp_path):
    """A third-party distribution, installed into its own folder (never into this repo or venv)."""
    src = tmp_path / "src"
    (src / "thirdparty_widgets").mkdir(parents=True)
    (src / "thirdparty_widgets" / "__init__.py").write_text(textwrap.dedent('''
        class FancyEncoder:
            """A third-party encoder found through its entry point."""
            variants = ("tiny",)
    '''))
    (src / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "thirdparty-widgets"
        version = "0.0.1"
        [project.entry-points."harness.encoders"]
        fancy = "thirdparty_widgets:FancyEncoder"
        [tool.setuptools]
        packages = ["thirdparty_widgets"]
    '''))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(src)], check=True, capture_output=True)
    return site


@pytest.mark.slow
@pytest.mark.e2e
def test_entry_point_plugin_appears_in_harness_list(tmp_path):
    site = _make_plugin_dist(tmp_path)
    env = {"PYTHONPATH": str(site), "PATH": ""}
    out = subprocess.run([sys.executable, "-m", "harness.cli", "list", "--json"], env=env,
                         capture_output=True, text=True, check=True).stdout
    listing = json.loads(out)
    assert set(listing) == {"methods", "encoders", "protocols", "datasets"}
    fancy = [e for e in listing["encoders"] if e["name"] == "fancy"]
    assert fancy and fancy[0]["source"] == "thirdparty-widgets" and fancy[0]["variants"] == ["tiny"]
    # without the distribution on the path it is gone again
    out = subprocess.run([sys.executable, "-m", "harness.cli", "list", "--json"], capture_output=True,
                         text=True, check=True).stdout
    assert "fancy" not in [e["name"] for e in json.loads(out)["encoders"]]
