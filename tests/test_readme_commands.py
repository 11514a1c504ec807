"""The README's two commands, run in order on a fresh clone, leave every tracked file as it was.

The main command (``harness run`` on the built-in synthetic data) writes its rows to the user's own
store, ``<workdir>/results`` (``.harness/results``, git-ignored), never to the committed campaign store
``results/`` that ``harness reproduce`` fills and the committed tables read. The test command's own
guard (``tests/conftest.py``) fails the session when a test changed a tracked file under ``results/``.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from harness import config
from harness.cli import build_parser, main
from harness.commands.common import config_from_args
from harness.reproduce import Settings
from harness.results import load_results

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_thread")


def readme_commands() -> list[str]:
    """The commands of the README's first code block, comments stripped."""
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)
    assert block, "README.md has no bash block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_readme_opens_with_the_main_command_then_the_test_command():
    run, test = readme_commands()[:2]
    assert run.startswith("bash scripts/bootstrap.sh && ") and shlex.split(run.split("&&")[-1])[1] == "run"
    assert test.startswith("bash scripts/bootstrap.sh && ") and test.endswith("-m pytest -q")


@pytest.mark.e2e
@pytest.mark.slow
def test_the_readme_main_command_writes_the_users_store_and_no_committed_file(tmp_path, monkeypatch, capsys):
    """The README's ``harness run`` arguments exactly as written, in a fresh copy of the committed
    ``results/`` (so no committed file can change whatever happens). Only the cpu preset's budget is cut
    to a smoke run's (fewer clips and steps): that changes how long it trains, never where anything goes."""
    argv = shlex.split(readme_commands()[0].split("&&")[-1])
    assert Path(argv[0]).name == "harness" and argv[1] == "run", argv
    assert not any(a.startswith(("--results", "--workdir")) for a in argv)  # the defaults are what is tested
    shutil.copytree(REPO / "results", tmp_path / "results", ignore=shutil.ignore_patterns(".*"))
    before = _snapshot(tmp_path / "results")
    budget = {k: v for k, v in config.PRESETS["smoke"].items() if k.startswith(("data.", "train."))}
    monkeypatch.setitem(config.PRESETS, "cpu", {**config.PRESETS["cpu"], **budget})
    monkeypatch.chdir(tmp_path)
    assert main(argv[1:]) == 0
    out = capsys.readouterr().out
    assert _snapshot(tmp_path / "results") == before, "the README's main command changed the committed store"
    store = Path(".harness") / "results"
    rows = load_results(store)
    assert len(rows) and set(rows["method"]) == {"usdrl"} and set(rows["protocol"]) == {"linear"}
    assert f"appended {len(rows)} row(s) to {store / 'results.csv'} (your own store" in out


def test_each_command_s_default_store():
    """run / pretrain / tune / fuse --record: the user's <workdir>/results; reproduce, tables and results
    check / add: the committed campaign store results/; --results chooses for every one of them."""
    parse = build_parser().parse_args
    for command in (["run"], ["pretrain"], ["tune", "--trials", "1"]):
        assert config_from_args(parse(command)).results == str(Path(".harness") / "results")
        assert config_from_args(parse([*command, "--workdir", "/w"])).results == str(Path("/w") / "results")
        assert config_from_args(parse([*command, "--workdir", "/w", "--results", "r"])).results == "r"
    assert parse(["fuse", "a.npz"]).results == str(Path(".harness") / "results")
    assert Settings(preset="smoke").base().results == "results"
    assert Settings(preset="smoke", workdir="/w").base().results == "results"
    assert Settings(preset="smoke", results="r").base().results == "r"
    for command in (["tables"], ["results", "check"], ["results", "add", "rows.csv"]):
        assert parse(command).results == "results"
