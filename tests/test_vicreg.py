"""VICReg (methods/vicreg.py; its loss is pinned in tests/test_loss_vicreg_objective.py): gradients, training, every registered
encoder, the DDP gather, and the plugin seams end to end: `harness list`, `harness run` under every
protocol, `harness tables` (extra rows of Tables 1, 3, 5) and `harness tune`."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from torch import nn

from harness.cli import main

from harness.contracts import DataInfo, build_method
from harness.data.topology import NTU25
from harness.errors import HarnessError
from harness.methods import vicreg as vicreg_module
from harness.methods.vicreg import VICReg, VICRegOptions
from harness.registry import ENCODERS
from vicreg_reference import Z, ZP, covariance as _covariance, invariance as _invariance, variance as _variance
from harness.config import load_config

FRAMES, B = 16, 8
INFO = DataInfo(topology=NTU25, num_classes=60, frames=FRAMES, persons=2)
ONE_THREAD = ["--set", "train.num_threads=1"]

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


def make(seed=0, encoder="", variant="default", **options):
    overrides = {"method.name": "vicreg", "method.variant": variant, "method.options": options}
    if encoder:
        overrides["encoder.name"] = encoder
    cfg = load_config("smoke", overrides=overrides)
    torch.manual_seed(seed)
    return build_method(cfg, INFO)


def views(b=B, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, 3, FRAMES, 25, 2, generator=g) for _ in range(2)]


# the loss itself (vicreg_loss) is pinned in tests/test_loss_vicreg_objective.py


def test_bad_expander_width_is_refused():
    with pytest.raises(HarnessError, match="proj_out"):
        make(proj_out=-1)


def test_gradient_reaches_every_parameter():
    m = make()
    m.train()
    z_a, z_b = m.project(views())
    z_a.retain_grad(), z_b.retain_grad()
    m.loss(z_a, z_b)["loss"].backward()
    assert z_a.grad.abs().sum() > 0 and z_b.grad.abs().sum() > 0
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert m.encoder.feature_dim == 64  # smoke DSTE: 2·d, d = 32


def test_expander_is_the_papers_shape_scaled_to_the_pooled_width():
    m = make()
    f = m.encoder.feature_dim
    layers = [type(layer) for layer in m.expander]
    assert layers == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    dims = [(layer.in_features, layer.out_features) for layer in m.expander if isinstance(layer, nn.Linear)]
    assert dims == [(f, 4 * f), (4 * f, 4 * f), (4 * f, 4 * f)]
    assert m.derived_settings() == {"proj_hidden": 4 * f, "proj_out": 4 * f}
    small = make(proj_hidden=48, proj_out=40)
    assert [(l.in_features, l.out_features) for l in small.expander if isinstance(l, nn.Linear)] == [
        (f, 48), (48, 48), (48, 40)]


def test_two_usdrl_views_and_batched_encoding():
    m = make()
    x = torch.randn(4, 3, 30, 25, 2)
    lengths = torch.tensor([30, 20, 25, 12])
    v = m.make_views(x, lengths, torch.Generator().manual_seed(0))
    assert len(v) == 2 and all(t.shape == (4, 3, FRAMES, 25, 2) for t in v)
    assert not torch.equal(v[0], v[1])
    m.eval()  # BatchNorm on running statistics: per-view and batched calls must agree exactly
    with torch.no_grad():
        z_a, z_b = m.project(v)
        assert torch.allclose(z_a, m.expander(m.net(v[0]).pooled), atol=1e-5)
        assert torch.allclose(z_b, m.expander(m.net(v[1]).pooled), atol=1e-5)
    with pytest.raises(HarnessError, match="exactly 2 views"):
        m.project(v + v[:1])


def test_adam_steps_lower_the_loss():
    m = make()
    m.train()
    v = views()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        out = m(v)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("encoder", sorted(ENCODERS.names()))
def test_every_registered_encoder(encoder):
    m = make(encoder=encoder)
    m.train()
    out = m(views(b=4))
    assert set(out) == {"loss", "invariance", "variance", "covariance"} and torch.isfinite(out["loss"])
    assert m.backbone()(views(b=2)[0]).pooled.shape == (2, m.encoder.feature_dim)


def test_projections_are_gathered_before_the_loss(monkeypatch):
    """Under DDP the loss sees every rank's rows: here a fake gather appends another 'rank'."""
    other = {}
    calls = []

    def fake_gather(z):
        calls.append(z)
        g = torch.Generator().manual_seed(len(calls))
        return torch.cat([z, other.setdefault(len(calls), torch.randn(3, z.shape[1], generator=g))])

    m = make()
    m.eval()
    v = views(b=4)
    monkeypatch.setattr(vicreg_module, "gather_with_grad", fake_gather)
    got = m(v)
    assert len(calls) == 2
    with torch.no_grad():
        z_a, z_b = m.project(v)
    want = m.loss(torch.cat([z_a, other[1]]), torch.cat([z_b, other[2]]))
    assert got["loss"].item() == pytest.approx(want["loss"].item(), rel=1e-5)


def test_self_description():
    assert VICReg.label == "VICReg" and VICReg.paradigm == "feature decorrelation"
    assert "default" in VICReg.variants and VICReg.num_views == 2
    floats = {f for f, t in VICRegOptions.__annotations__.items() if t == "float"}
    assert {"sim", "var", "cov"} <= set(VICReg.tunable) and set(VICReg.tunable.values()) <= floats
    assert VICReg.tunable["sim"] == "sim_weight" and VICReg.tunable["var"] == "variance_weight"
    assert VICReg.tunable["cov"] == "covariance_weight"
    rows = VICReg.rows()
    assert any({1, 3, 5} <= set(r.tables) for r in rows)
    # the released script's averaged variance hinges = μ 12.5 in the paper's equation
    official = make(variant="official_code")
    assert official.options.variance_weight == 12.5
    z_a, z_b = torch.tensor(Z), torch.tensor(ZP)
    ref = 25 * _invariance(Z, ZP) + 25 * (_variance(Z) / 2 + _variance(ZP) / 2) + _covariance(Z) + _covariance(ZP)
    assert official.loss(z_a, z_b)["loss"].item() == pytest.approx(ref, rel=1e-6)


# --- the CLI seams -----------------------------------------------------------------------------------
@pytest.mark.e2e
def test_harness_list_shows_vicreg(capsys):
    assert main(["list", "methods", "--json"]) == 0
    entry = next(e for e in json.loads(capsys.readouterr().out)["methods"] if e["name"] == "vicreg")
    assert {"default", "official_code"} <= set(entry["variants"]) and entry["source"] == "builtin"


def _cell_values(table_md: str, label: str) -> list[str]:
    line = next((ln for ln in table_md.splitlines() if ln.startswith(f"| {label}")), None)
    assert line is not None, f"no row {label!r} in the table"
    return [c.strip() for c in line.strip("|").split("|")]


@pytest.mark.slow
@pytest.mark.e2e
def test_smoke_run_under_every_protocol_and_the_tables(tmp_path, capsys):
    dirs = ["--workdir", str(tmp_path / "work"), "--results", str(tmp_path / "res"), "--no-progress"]
    common = ["run", "--method", "vicreg", "--preset", "smoke", *dirs, *ONE_THREAD, "--json"]
    expected = {"linear": {"top1", "top1_best", "top5"}, "knn": {"knn1", "knn20_weighted"},
                "semi": {"top1_best@0.1"}, "detection": {"mAP_a", "mAP_v"}}
    for protocol, metrics in expected.items():
        assert main([*common, "--protocol", protocol]) == 0, protocol
        rows = json.loads(capsys.readouterr().out)
        got = {r["metric"].split("@0.")[0] if protocol == "detection" else r["metric"] for r in rows}
        assert metrics <= got, (protocol, got)
        assert all(r["method"] == "vicreg" and r["encoder"] == "dste" and r["dataset"] == "synthetic"
                   for r in rows)
        assert all(0 <= r["value"] <= 1 for r in rows if not math.isnan(r["value"]))
    runs = list((tmp_path / "work" / "runs").iterdir())
    assert len(runs) == 1  # pretrained once, reused by the other protocols
    steps = [json.loads(l) for l in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    assert {"invariance", "variance", "covariance"} <= set(steps[0])

    out = tmp_path / "tables"
    assert main(["tables", "--results", str(tmp_path / "res"), "--preset", "smoke", "--out", str(out)]) == 0
    capsys.readouterr()
    measured = re.compile(r"\d+\.\d \(n=\d+\)")
    for n in (1, 3, 5):
        cells = _cell_values((out / f"table{n}.md").read_text(), "VICReg (harness)")
        assert any(measured.search(c) for c in cells), (n, cells)


@pytest.mark.slow
@pytest.mark.e2e
def test_tune_smoke(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["tune", "--preset", "smoke", "--method", "vicreg", "--params", "sim,var", "--trials", "2",
                 "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "best.yaml"), *ONE_THREAD])
    err = capsys.readouterr().err
    assert code == 0, err
    best = (tmp_path / "best.yaml").read_text()
    assert "name: vicreg" in best and "sim_weight:" in best and "variance_weight:" in best


@pytest.mark.e2e
def test_tune_reads_the_declared_aliases(tmp_path, capsys):
    code = main(["tune", "--preset", "smoke", "--method", "vicreg", "--params", "sim,covv", "--trials", "2",
                 "--workdir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "'covv'" in err and "'cov'" in err
    assert not (tmp_path / "studies").exists()
