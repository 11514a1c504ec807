"""`harness config show`: the resolved configuration as YAML that `--config` reads back to the same
hashes; the paper's USDRL values; derived settings with --dataset; the committed paper-configs page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harness.resolve import resolved
from harness.cli import main
from harness.commands.config_cmd import builtin_methods, paper_page
from harness.config import load_config


PAGE = Path(__file__).resolve().parents[1] / "docs" / "paper-configs.md"


def _show(capsys, *argv: str) -> tuple[str, dict, dict[str, str]]:
    assert main(["config", "show", *argv]) == 0
    text = capsys.readouterr().out
    hashes = dict(re.findall(r"^# (pretrain_hash|config_hash): (\w+)$", text, flags=re.M))
    return text, yaml.safe_load(text), hashes


def test_paper_usdrl_prints_the_papers_values(capsys):
    text, cfg, hashes = _show(capsys, "--preset", "paper", "--method", "usdrl")
    assert cfg["encoder"] == {"name": "dste", "options": {"hidden": 1024, "heads": 1, "layers": 2, "mlp_hidden": 2048,
                                                         "alpha": 0.5, "gap": 4, "kernel": 1, "drop_path": 0.1}}
    t = cfg["train"]
    assert (t["batch_size"], t["epochs"], t["steps"], t["lr"], t["weight_decay"], t["optimizer"]) == (
        356, 451, 0, 5e-4, 1e-5, "adam")
    assert t["milestones"] == [351 / 451] and t["gamma"] == 0.1
    assert "lr × 0.1 after epochs [351]" in text
    assert cfg["data"]["frames"] == 64 and cfg["method"]["options"]["num_views"] == 4
    assert cfg["method"]["options"]["xc_weight"] == 1e-3 and cfg["method"]["options"]["sim_weight"] == 5.0
    expected = load_config("paper", overrides={"method.name": "usdrl"})
    assert hashes == {"pretrain_hash": resolved(expected).pretrain_hash, "config_hash": resolved(expected).config_hash}


@pytest.mark.parametrize("argv", [
    ("--preset", "paper", "--method", "usdrl"),
    ("--preset", "paper", "--method", "mamp", "--variant", "ntu120"),
    ("--preset", "cpu", "--method", "scdnet", "--set", "encoder=sttr", "--set", "train.lr=0.01"),
    ("--preset", "smoke", "--method", "umurl", "--protocol", "knn", "--set", "protocol.options.k=5"),
])
def test_the_output_reads_back_to_the_same_hashes(tmp_path, capsys, argv):
    text, cfg, hashes = _show(capsys, *argv)
    f = tmp_path / "shown.yaml"
    f.write_text(text)
    preset = argv[1]
    again, cfg2, hashes2 = _show(capsys, "--preset", preset, "--config", str(f))
    assert hashes2 == hashes and cfg2 == cfg
    assert again.split("\n", 1)[1] == text.split("\n", 1)[1]  # all but the command line
    loaded = resolved(load_config(preset, f))
    assert (loaded.pretrain_hash, loaded.config_hash) == (hashes["pretrain_hash"], hashes["config_hash"])


def test_dataset_shows_the_settings_the_method_derives(tmp_path, capsys):
    text, cfg, _ = _show(capsys, "--preset", "smoke", "--method", "contrastive", "--dataset", "synthetic",
                         "--workdir", str(tmp_path / "work"))
    derived = re.search(r"^# derived by method contrastive from dataset synthetic .*?(\d+) training clips", text, re.M)
    assert derived, text
    queue = re.search(r"^#   queue_size: (\d+)$", text, re.M)
    assert queue and 0 < int(queue.group(1)) <= int(derived.group(1))
    text, _, _ = _show(capsys, "--preset", "smoke", "--method", "usdrl", "--dataset", "synthetic",
                       "--workdir", str(tmp_path / "work"))
    assert "# method usdrl derives no settings from the data" in text


def test_markdown_section_and_the_committed_paper_page(tmp_path, capsys):
    assert main(["config", "show", "--preset", "paper", "--method", "usdrl", "--markdown"]) == 0
    section = capsys.readouterr().out
    assert section.startswith("## `usdrl`: USDRL") and "```yaml\npreset: paper\n" in section
    assert section in paper_page()
    assert PAGE.read_text(encoding="utf-8") == paper_page(), "run `harness config paper-docs`"
    assert all(f"--method {m}`" in PAGE.read_text(encoding="utf-8") for m in builtin_methods())
    assert main(["config", "paper-docs", "--check", "--out", str(PAGE)]) == 0
    stale = tmp_path / "page.md"
    stale.write_text("old\n")
    assert main(["config", "paper-docs", "--check", "--out", str(stale)]) == 1
    assert main(["config", "paper-docs", "--out", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == paper_page()
