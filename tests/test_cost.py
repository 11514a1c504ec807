"""The cost of a pretraining: run.json ``cost`` (harness.engine.cost), the rows' ``extra.cost`` and Table 7
(harness.tables.cost_table)."""

from __future__ import annotations

import contextlib
import copy
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from harness.cli import main
from harness.contracts import DataInfo, build_method
from harness.data.topology import NTU25
from harness.engine import cost as C
from harness.engine import pretrain
from harness.registry import METHODS
from harness.resolve import resolved
from harness.results import ResultRow, append_rows, load_results

from test_contracts import PAIR_IDS, PAIRS, raw_batch, smoke_cfg  # noqa: E402
from test_contracts import INFO as SMOKE_INFO  # noqa: E402
from test_engine import TOY, FloorMethod, _toy_methods, make_dataset, toy_cfg  # noqa: E402,F401  (the toy methods)

pytestmark = pytest.mark.usefixtures("one_thread")

FLOOR = FloorMethod.name


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("cost-data"))


def toy_info(cfg, ds_root: Path) -> DataInfo:
    from harness.data.prepared.format import open_prepared

    ds = open_prepared(ds_root)
    t = resolved(cfg).train
    return DataInfo(topology=ds.topology, num_classes=ds.num_classes, frames=cfg.data.frames, persons=ds.num_persons,
                    train_samples=32, batch_size=t.batch_size, total_steps=12)


def independent_step_flops(method, views) -> tuple[int, int]:
    """(forward, forward + backward) FLOPs of one step, counted here with a plain FlopCounterMode."""
    with FlopCounterMode(display=False) as counter:
        out = method(views, None)
        fwd = counter.get_total_flops()
        out["loss"].backward()
        total = counter.get_total_flops()
    return fwd, total


# --- run.json ---------------------------------------------------------------------------------------
@pytest.mark.e2e
def test_pretraining_records_its_cost_in_run_json(dataset, tmp_path):
    cfg = toy_cfg(dataset, tmp_path)
    info = pretrain(cfg, progress=False)
    meta = json.loads((info.run_dir / "run.json").read_text())
    cost = meta["cost"]
    hw = cost["hardware"]
    assert hw["device"] == "cpu" and hw["name"] and hw["threads"] == 1 and hw["world_size"] == 1
    assert hw["devices"] == 1 and hw["unit"] == "CPU thread" and cost["device_hour_unit"] == "CPU-thread-hours"
    assert cost["wall_s"] > 0 and cost["wall_s"] == pytest.approx(info.train_s, abs=1e-3)
    assert cost["device_hours"] == pytest.approx(info.train_s / 3600, rel=1e-3)
    assert cost["steps"] == info.global_step == 12 and cost["clips"] == 12 * 8  # 3 epochs of 32 clips
    assert cost["clips_per_s"] == pytest.approx(cost["clips"] / info.train_s, rel=1e-3)
    assert cost["peak_memory"]["peak_rss_mib"] > 0 and cost["peak_memory"]["peak_rss_mib"] == meta["peak_rss_mib"]
    assert cost["pretrain_hash"] == resolved(cfg).pretrain_hash and cost["pretrain_config"]
    # parameters: the model's own count
    m = build_method(resolved(cfg), toy_info(cfg, dataset))
    assert cost["params"]["method"] == sum(p.numel() for p in m.parameters() if p.requires_grad)
    assert cost["params"]["backbone"] == sum(p.numel() for p in m.backbone().parameters())
    # FLOPs per clip: an independent FlopCounterMode count of one step on a batch of the training size
    views = [torch.randn(8, 3, 6, 25, 2) for _ in range(2)]
    fwd, total = independent_step_flops(m, views)
    flops = cost["flops"]
    assert flops["batch"] == 8 and "error" not in flops and flops["count_s"] >= 0
    assert flops["forward_per_clip"] == pytest.approx(fwd / 8) and flops["train_per_clip"] == pytest.approx(total / 8)
    assert flops["train_per_clip"] > flops["forward_per_clip"] > 0  # the backward is counted


@pytest.mark.e2e
def test_the_flop_count_leaves_training_as_it_was(dataset, tmp_path, monkeypatch):
    """The count runs on a copy with the RNG restored: the weights are those of a run without it."""
    cfg = toy_cfg(dataset, tmp_path / "a")
    with_count = pretrain(cfg, progress=False)
    monkeypatch.setattr(C, "training_step_flops", lambda *a, **k: {"count_s": 0.0, "error": "skipped"})
    without = pretrain(toy_cfg(dataset, tmp_path / "b"), progress=False)
    a = torch.load(with_count.backbone, weights_only=True)["state_dict"]
    b = torch.load(without.backbone, weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((without.run_dir / "run.json").read_text())["cost"]["flops"] == {"count_s": 0.0,
                                                                                        "error": "skipped"}


@pytest.mark.e2e
def test_a_method_that_does_not_pretrain_records_zero_cost_and_its_parameters(dataset, tmp_path):
    cfg = toy_cfg(dataset, tmp_path, **{"method.name": FLOOR})
    info = pretrain(cfg, progress=False)
    cost = json.loads((info.run_dir / "run.json").read_text())["cost"]
    assert cost["wall_s"] == 0 and cost["device_hours"] == 0 and cost["steps"] == 0 and cost["clips"] == 0
    assert cost["flops"]["train_per_clip"] == 0 and cost["params"]["backbone"] > 0


@pytest.mark.unit
@pytest.mark.parametrize("name, encoder", [p for p in PAIRS if METHODS.get(p[0]).pretrains],
                         ids=[i for i, p in zip(PAIR_IDS, PAIRS) if METHODS.get(p[0]).pretrains])
def test_every_method_step_is_counted_without_touching_the_method(name, encoder):
    torch.manual_seed(0)
    m = build_method(smoke_cfg(name, encoder), SMOKE_INFO)
    before = copy.deepcopy(m.state_dict())
    x, lengths = raw_batch()
    labels = torch.arange(x.shape[0]) % SMOKE_INFO.num_classes
    rng = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    out = C.training_step_flops(m, x, lengths, labels, torch.Generator().manual_seed(0), contextlib.nullcontext)
    assert "error" not in out, out.get("error")
    assert out["train_per_clip"] > out["forward_per_clip"] > 0 and out["batch"] == x.shape[0]
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # buffers, queues, weights untouched
    assert all(p.grad is None for p in m.parameters())
    assert random.getstate() == rng[0] and np.array_equal(np.random.get_state()[1], rng[1])
    assert torch.equal(torch.get_rng_state(), rng[2])


@pytest.mark.unit
def test_row_cost_keys_are_compact_and_complete():
    cost = C.run_cost(hardware_info={"device": "cuda", "name": "NVIDIA H100", "devices": 4, "unit": "GPU",
                                     "threads": 16, "world_size": 4},
                      wall_s=7200.0, steps=1000, clips=1000 * 4 * 128, params={"method": 10, "method_all": 12,
                                                                                "backbone": 8},
                      flops={"train_per_clip": 3.2e9, "forward_per_clip": 1.1e9}, peak={"peak_rss_mib": 1.0,
                                                                                        "cuda_max_allocated_mib": 2.0},
                      pretrain_hash="ph", pretrain_config="pc")
    assert cost["device_hours"] == 8.0 and cost["device_hour_unit"] == "GPU-hours"
    assert C.row_cost(cost) == {"hw": "NVIDIA H100", "dev": "cuda", "n": 4, "unit": "GPU", "threads": 16, "world": 4,
                                "wall_s": 7200.0, "dev_h": 8.0, "steps": 1000, "clips": 512000,
                                "clips_s": pytest.approx(512000 / 7200, rel=1e-4), "params": 10, "bb_params": 8,
                                "flops": 3_200_000_000, "fwd_flops": 1_100_000_000, "rss_mib": 1.0, "gpu_mib": 2.0,
                                "ph": "ph", "pcfg": "pc"}
    assert C.row_cost(None) is None


# --- rows ------------------------------------------------------------------------------------------
def run_args(dataset: Path, tmp: Path, method: str) -> list[str]:
    return ["run", "--method", method, "--protocol", "knn", "--dataset", str(dataset), "--preset", "smoke",
            "--workdir", str(tmp / "work"), "--results", str(tmp / "res"), "--no-progress",
            "--set", "data.frames=6", "--set", "train.batch_size=8", "--set", "train.device=cpu",
            "--set", "train.num_threads=1"]


@pytest.mark.e2e
def test_harness_run_rows_carry_the_pretraining_cost(dataset, tmp_path, capsys):
    for method in (TOY, FLOOR):
        assert main(run_args(dataset, tmp_path, method)) == 0
    capsys.readouterr()
    store = load_results(tmp_path / "res")
    assert set(store["method"]) == {TOY, FLOOR}
    runs = {p.name.rsplit("-", 1)[0]: json.loads((p / "run.json").read_text())["cost"]
            for p in (tmp_path / "work" / "runs").iterdir() if p.is_dir() and not p.name.startswith(".")}
    for _, r in store.iterrows():
        cost = json.loads(r["extra"])["cost"]
        assert cost == C.row_cost(runs[r["method"]])
        assert cost["params"] > 0 and cost["bb_params"] > 0 and cost["hw"] and cost["steps"] == r["steps"]
        if r["method"] == TOY:
            assert cost["wall_s"] > 0 and cost["clips_s"] > 0 and cost["flops"] > cost["fwd_flops"] > 0
        else:  # the untrained floor: no training cost, its parameters
            assert cost["wall_s"] == 0 and cost["dev_h"] == 0 and cost["flops"] == 0 and cost["steps"] == 0
    # Table 7 from that store alone
    out = tmp_path / "tables"
    assert main(["tables", "--results", str(tmp_path / "res"), "--dataset", "toy", "--preset", "smoke",
                 "--out", str(out), "--table", "7"]) == 0
    assert "table 7: " + str(out / "table7.md") in capsys.readouterr().out
    text = (out / "table7.md").read_text()
    assert text.startswith("<!-- harness tables: table=7 dataset=toy preset=smoke -->")
    assert "not recorded" not in text.split("**Legend**")[0]


# --- Table 7 -----------------------------------------------------------------------------------------
def cost_of(seed: int, wall: float, *, pcfg: str = "c1", steps: int = 320, gpu: bool = False) -> dict:
    c = {"hw": "NVIDIA H100 80GB HBM3" if gpu else "AMD EPYC", "dev": "cuda" if gpu else "cpu", "n": 1,
         "unit": "GPU" if gpu else "CPU thread", "threads": 1, "world": 1, "wall_s": wall, "dev_h": wall / 3600,
         "steps": steps, "clips": steps * 64, "clips_s": steps * 64 / wall if wall else 0, "params": 2_500_000,
         "bb_params": 2_000_000, "flops": 123_000_000 if steps else 0, "fwd_flops": 41_000_000 if steps else 0,
         "rss_mib": 900.0, "ph": f"{pcfg}-{seed}", "pcfg": pcfg}
    if gpu:
        c["gpu_mib"] = 1234.0
    return c


def store_row(method="usdrl", seed=0, cost=None, *, steps=320, date="2026-01-01T00:00:00Z", protocol="linear",
              metric="top1_best", **kw) -> ResultRow:
    r = ResultRow(method, "synthetic", protocol, metric, 0.5, encoder=kw.pop("encoder", "dste"), split="xsub",
                  preset="cpu", config_hash=kw.pop("config_hash", "h1"), pretrain_seed=seed, steps=steps, date=date,
                  **kw)
    return r.add_extra(cost=cost) if cost else r


def md_table(text: str) -> dict[str, dict[str, str]]:
    lines = [l for l in text.splitlines() if l.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in l.strip("|").split("|")] for l in lines[2:]]
    return {f"{r[0]}/{r[2]}": dict(zip(head, r)) for r in rows}


@pytest.mark.unit
def test_table7_from_a_small_store(tmp_path):
    from harness.tables.cost_table import write_cost_table

    store = tmp_path / "res"
    rows = [store_row(seed=s, cost=cost_of(s, 100 + 10 * s)) for s in range(3)]  # three seeds of one config
    rows += [store_row(seed=s, cost=cost_of(s, 999, pcfg="old"), date="2025-01-01T00:00:00Z") for s in range(2)]
    rows += [store_row(seed=0, cost=cost_of(0, 120), protocol="knn", metric="knn1")]  # seed 0 again, newer
    rows += [store_row("vicreg")]  # an older run: no cost recorded
    rows += [store_row("random", cost=cost_of(0, 0, steps=0, pcfg="r"), steps=0)]
    rows += [store_row("usdrl", encoder="sttr", cost=cost_of(0, 3600, gpu=True))]
    rows += [store_row("usdrl", cost=cost_of(5, 1)).add_extra(overrides={"encoder.options.alpha": 0.1})]  # a sweep
    append_rows(store, rows)
    report = write_cost_table(store, tmp_path / "t", dataset="synthetic", preset="cpu")
    text = report.path.read_text()
    assert report.path.name == "table7.md" and text.startswith(
        "<!-- harness tables: table=7 dataset=synthetic preset=cpu -->")
    t = md_table(text)
    usdrl = t["USDRL/DSTE"]
    assert usdrl["params (backbone / method)"] == "2 M / 2.5 M"
    assert usdrl["train GFLOPs / clip (fwd)"] == "0.123 (0.041)" and usdrl["pretraining steps"] == "320"
    assert usdrl["wall-clock (mean ± std)"] == "117 ± 5.8 s"  # seeds 120, 110, 120 (the newest row of seed 0)
    assert usdrl["n (seeds)"] == "3" and usdrl["hardware"] == "AMD EPYC, 1 CPU thread"
    assert usdrl["device-hours (mean)"] == f"{(120 + 110 + 120) / 3 / 3600:.3g} CPU-thread-h"
    assert usdrl["peak memory (max)"] == "RSS 900 MiB"
    assert usdrl["clips/s (mean)"] == f"{np.mean([320 * 64 / w for w in (120, 110, 120)]):.0f}"
    assert "1 older configuration(s) were superseded" in text
    gpu = t["USDRL/STTR"]
    assert gpu["wall-clock (mean ± std)"] == "60 min" and gpu["device-hours (mean)"] == "1 GPU-h"
    assert gpu["peak memory (max)"] == "GPU 1,234 MiB" and gpu["hardware"] == "NVIDIA H100 80GB HBM3, 1 GPU"
    old = t["VICReg/DSTE"]
    assert old["wall-clock (mean ± std)"] == old["params (backbone / method)"] == "not recorded"
    assert old["pretraining steps"] == "320"  # the rows' own steps column
    floor = t["Random init/DSTE"]
    assert floor["wall-clock (mean ± std)"] == "0 s" and floor["train GFLOPs / clip (fwd)"] == "0"
    assert floor["device-hours (mean)"] == "0 CPU-thread-h" and floor["clips/s (mean)"] == "·"
    assert floor["params (backbone / method)"] == "2 M / 2.5 M"
    assert set(t) == {"VICReg/DSTE", "USDRL/DSTE", "USDRL/STTR", "Random init/DSTE"}
    assert list(t)[-1] == "Random init/DSTE"  # by the methods' table_order: the references last


@pytest.mark.unit
def test_table7_is_not_written_without_a_recorded_cost(tmp_path, capsys):
    from harness.tables.cost_table import write_cost_table

    store = tmp_path / "res"
    append_rows(store, [store_row("usdrl"), store_row("vicreg")])
    out = tmp_path / "t"
    out.mkdir()
    (out / "table7.md").write_text("<!-- harness tables: table=7 dataset=synthetic preset=cpu -->\nold\n")
    report = write_cost_table(store, out, dataset="synthetic", preset="cpu")
    assert report.path is None and report.removed == out / "table7.md" and not (out / "table7.md").exists()
    assert report.table.recorded == 0 and len(report.table.rows) == 2
    assert main(["tables", "--results", str(store), "--dataset", "synthetic", "--preset", "cpu", "--out", str(out),
                 "--table", "7"]) == 0
    assert "table 7: not written: no row of synthetic/cpu records its pretraining cost" in capsys.readouterr().out
    assert not list(out.glob("table*.md"))


@pytest.mark.unit
def test_the_index_lists_table7_and_what_records_no_cost(tmp_path):
    from harness.tables import index
    from harness.tables.cost_table import write_cost_table

    root = tmp_path / "results"
    append_rows(root, [store_row(seed=s, cost=cost_of(s, 100)) for s in range(2)] + [store_row("vicreg")])
    append_rows(root / "old", [store_row("vicreg")])
    write_cost_table(root, root / "tables" / "synthetic-cpu", dataset="synthetic", preset="cpu")
    text = index.index_markdown(root)
    line = next(l for l in text.splitlines() if "synthetic-cpu/table7.md" in l)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1:7] == ["7", "synthetic", "cpu", "1 of 2 rows", "2", "2"]
    not_run = text.split("## Not run")[1]
    top = next(l for l in not_run.splitlines() if l.startswith("| `results.csv`") and "| synthetic" in l)
    assert ", 7" not in top and "cost not recorded" not in top
    old = next(l for l in not_run.splitlines() if l.startswith("| `old/results.csv`"))
    assert "7 (7: cost not recorded)" in old
    paper = next(l for l in not_run.splitlines() if "| NTU-60" in l and "| paper" in l)
    assert "1, 2, 3, 4, 5, 6, 7 " in paper and "cost not recorded" not in paper
