"""`harness run --checkpoint`: the harness's own files and the references' checkpoint layouts
(docs/reference/checkpoints.md) load strictly and evaluate; tampered files are refused with the
message a user needs; nothing in a file is ever run."""

from __future__ import annotations

import argparse
import json
import types
from pathlib import Path

import pytest
import torch

from harness.checkpoints import formats, read_checkpoint
from harness.checkpoints.file_source import backbone_factory
from harness.checkpoints.loading import sha256_of
from harness.cli import main

from harness.contracts import DataInfo, build_method
from harness.data.topology import NTU25
from harness.errors import HarnessError
from harness.results import load_results
from harness.tables import build_table, load_store
from harness.config import load_config
from harness.resolve import resolved

pytestmark = pytest.mark.usefixtures("one_thread")

# the small USDRL configuration: hidden 64, 1 head, 2 layers (MLP 2·64), 64 frames
USDRL_SETS = ["encoder.options.hidden=64", "encoder.options.mlp_hidden=128", "data.frames=64"]
MAMP_SETS = ["encoder.options.hidden=64", "encoder.options.heads=2", "encoder.options.layers=2", "data.frames=64"]
NTU_DS = types.SimpleNamespace(topology=NTU25, num_classes=60, num_persons=2, num_joints=25, root="stub")


def _method(preset: str, sets: list[str], **over):
    cfg = load_config(preset, overrides=sets + [f"{k}={v}" for k, v in over.items()])
    torch.manual_seed(0)
    return build_method(cfg, DataInfo(topology=NTU25, num_classes=60, frames=cfg.data.frames, persons=2))


def usdrl_file(path: Path, encoder: str = "dste") -> Path:
    """A USDRL-format checkpoint as the reference's pretrain.py writes it: our USDRL module's state
    dict under the reference's names (backbone.* for the encoder, t/s/i_proj.* kept), DataParallel's
    module. prefix, and Adam's state."""
    sets = USDRL_SETS if encoder == "dste" else ["encoder.options.hidden=64", "encoder.options.ffn=64", "data.frames=64"]
    m = _method("cpu", sets, **{"method.name": "usdrl", "encoder.name": encoder})
    state = {"module." + ("backbone." + k[len("net.encoder."):] if k.startswith("net.encoder.") else k): v
             for k, v in m.state_dict().items()}
    assert {k.split(".")[1] for k in state} == {"backbone", "t_proj", "s_proj", "i_proj"}
    opt = torch.optim.Adam(m.parameters(), 5e-4, weight_decay=1e-5)
    torch.save({"epoch": 451, "state_dict": state, "optimizer": opt.state_dict()}, path)
    return path


def mamp_file(path: Path) -> Path:
    """A MAMP-format checkpoint (util/misc.py save_model): the model's own keys (joints_embed.proj.*,
    blocks.*, decoder_*, ...), no prefix, AdamW and scaler state, and the script's Namespace."""
    m = _method("cpu", MAMP_SETS, **{"method.name": "mamp"})
    state = {}
    for k, v in m.state_dict().items():
        if k.startswith("net.encoder."):
            k = k[len("net.encoder."):]
            k = "joints_embed.proj." + k[len("joints_embed."):] if k.startswith("joints_embed.") else k
        state[k] = v
    args = argparse.Namespace(model_args={"dim_feat": 64, "depth": 2, "num_heads": 2, "num_frames": 64,
                                          "num_joints": 25, "t_patch_size": 4}, seed=3, lr=1e-3,
                              train_feeder_args={"p_interval": [0.5, 1]}, output_dir="./output_dir")
    opt = torch.optim.AdamW(m.parameters(), 1e-3, betas=(0.9, 0.95))
    torch.save({"model": state, "optimizer": opt.state_dict(), "epoch": 399,
                "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                           "_growth_tracker": 0}, "args": args}, path)
    return path


def umurl_file(path: Path) -> Path:
    """UmURL's layout: backbone.* with the fusion Linears inside one-element Sequentials."""
    m = _method("cpu", ["data.frames=64"], **{"method.name": "umurl"})
    state = {}
    for k, v in m.state_dict().items():
        if k.startswith("net.encoder."):
            k = "backbone." + k[len("net.encoder."):]
            k = k.replace("mm_fusion.t_fusion.", "mm_fusion.t_fusion.0.").replace("mm_fusion.s_fusion.",
                                                                                "mm_fusion.s_fusion.0.")
        state["module." + k] = v
    torch.save({"epoch": 401, "state_dict": state, "optimizer": {}}, path)
    return path


def _load(path: Path, preset: str, sets: list[str], **over):
    ckpt = read_checkpoint(path)
    cfg = load_config(preset, overrides=sets + [f"method.name={ckpt.method}"] + [f"{k}={v}" for k, v in over.items()])
    cfg, _ = ckpt.format.configure(cfg, ckpt)
    return ckpt, backbone_factory(ckpt, cfg, NTU_DS, torch.device("cpu"))()


# --- loading, strictly -----------------------------------------------------------------------------
def test_usdrl_dste_file_loads_every_backbone_tensor(tmp_path):
    f = usdrl_file(tmp_path / "checkpoint_0450.pth.tar")
    ckpt, bb = _load(f, "smoke", USDRL_SETS)
    assert ckpt.format.name == "usdrl" and ckpt.encoder == "dste" and ckpt.sha256 == sha256_of(f)
    state = torch.load(f, weights_only=True)["state_dict"]
    backbone_keys = [k for k in state if k.startswith("module.backbone.")]
    assert len(backbone_keys) == 134 == len(bb.state_dict())  # the reference's DSTE count at any width
    for k in backbone_keys:
        assert torch.equal(bb.state_dict()["encoder." + k[len("module.backbone."):]], state[k]), k


def test_usdrl_sttr_and_umurl_files_load(tmp_path):
    sttr = usdrl_file(tmp_path / "sttr.pth.tar", "sttr")
    ckpt, bb = _load(sttr, "smoke", ["encoder.options.hidden=64", "encoder.options.ffn=64", "data.frames=64"])
    assert ckpt.encoder == "sttr" and len(bb.state_dict()) == 62
    ckpt, bb = _load(umurl_file(tmp_path / "umurl.pth.tar"), "smoke", ["encoder.options.hidden=64",
                                                                    "encoder.options.ffn=64", "data.frames=64"])
    assert ckpt.format.name == "umurl" and ckpt.method == "umurl" and len(bb.state_dict()) == 63
    state = torch.load(tmp_path / "umurl.pth.tar", weights_only=True)["state_dict"]
    assert torch.equal(bb.state_dict()["encoder.mm_fusion.t_fusion.weight"],
                       state["module.backbone.mm_fusion.t_fusion.0.weight"])


def test_mamp_file_admits_its_namespace_and_checks_the_heads(tmp_path):
    f = mamp_file(tmp_path / "checkpoint-399.pth")
    ckpt, bb = _load(f, "smoke", MAMP_SETS)
    assert ckpt.format.name == "mamp" and isinstance(ckpt.obj["args"], argparse.Namespace)
    model = ckpt.obj["model"]
    assert torch.equal(bb.state_dict()["encoder.joints_embed.weight"], model["joints_embed.proj.weight"])
    assert len(bb.state_dict()) == sum(not k.startswith(("decoder_", "mask_token")) for k in model)
    assert ckpt.format.identity(ckpt) == {"epochs": 400, "steps": 0, "pretrain_seed": 3}
    one_head = load_config("smoke", overrides=[s for s in MAMP_SETS if "heads" not in s] + ["method.name=mamp"])
    with pytest.raises(HarnessError, match=r"2 attention heads .*--set encoder.options.heads=2"):
        ckpt.format.check_config(ckpt, resolved(one_head))  # no shape shows the heads: the args do


# --- refusals ----------------------------------------------------------------------------------------
def _tamper(src: Path, dst: Path, edit) -> Path:
    obj = torch.load(src, weights_only=True)
    edit(obj)
    torch.save(obj, dst)
    return dst


def test_missing_unexpected_and_wrong_shape_are_listed(tmp_path):
    f = usdrl_file(tmp_path / "ok.pth.tar")
    key = "module.backbone.t_tr.CA.conv1.bias"
    missing = _tamper(f, tmp_path / "missing.pth.tar", lambda o: o["state_dict"].pop(key))
    with pytest.raises(HarnessError, match=rf"missing from the file \(1\): {key}"):
        _load(missing, "smoke", USDRL_SETS)
    extra = _tamper(f, tmp_path / "extra.pth.tar",
                    lambda o: o["state_dict"].update({"module.backbone.t_tr2.CA.conv1.bias": torch.zeros(64)}))
    with pytest.raises(HarnessError, match=r"unexpected in the file \(1\): module.backbone.t_tr2.CA.conv1.bias"):
        _load(extra, "smoke", USDRL_SETS)
    wrong = _tamper(f, tmp_path / "wrong.pth.tar",
                    lambda o: o["state_dict"].update({"module.backbone.spe": torch.zeros(1, 50, 63)}))
    with pytest.raises(HarnessError, match=r"wrong shape \(1\): module.backbone.spe file \(1, 50, 63\) ≠ model \(1, 50, 64\)"):
        _load(wrong, "smoke", USDRL_SETS)
    stray = _tamper(f, tmp_path / "stray.pth.tar", lambda o: o.update(best_acc=0.5))
    with pytest.raises(HarnessError, match=r"unexpected top-level key\(s\) 'best_acc'"):
        read_checkpoint(stray)


def test_a_wrong_width_names_the_set_values_that_fit(tmp_path):
    f = usdrl_file(tmp_path / "ok.pth.tar")
    with pytest.raises(HarnessError) as err:
        _load(f, "smoke", [])  # the smoke DSTE is 32 wide, 16 frames
    msg = str(err.value)
    assert "wrong shape (" in msg and "module.backbone.spe file (1, 50, 64) ≠ model (1, 50, 32)" in msg
    assert "--set encoder.options.hidden=64 --set data.frames=64 --set encoder.options.mlp_hidden=128" in msg


def test_shared_attention_must_hold_one_value(tmp_path):
    f = usdrl_file(tmp_path / "ok.pth.tar")
    key = "module.backbone.t_tr.DSA.attn.in_proj_bias"
    # torch.save keeps the two names on one storage, as in the reference's files: give one its own
    bad = _tamper(f, tmp_path / "split.pth.tar", lambda o: o["state_dict"].update({key: o["state_dict"][key] + 1.0}))
    with pytest.raises(HarnessError, match="one shared tensor"):
        _load(bad, "smoke", USDRL_SETS)


class _Payload:
    """Unpickling this creates a file: proof that the pickle ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_payload_is_refused_without_running(tmp_path):
    marker = tmp_path / "payload-ran"
    f = tmp_path / "evil.pth.tar"
    torch.save({"epoch": 1, "state_dict": {"module.backbone.spe": torch.zeros(1)}, "optimizer": _Payload(marker)}, f)
    with pytest.raises(HarnessError, match=r"refused: .*beyond tensors, dicts, lists and numbers.*'io.open'"):
        read_checkpoint(f)
    assert not marker.exists()
    torch.load(f, weights_only=False)  # the payload is live: a free unpickle runs it
    assert marker.exists()


def test_a_namespace_outside_mamp_args_is_refused(tmp_path):
    f = usdrl_file(tmp_path / "ok.pth.tar")
    bad = _tamper(f, tmp_path / "ns.pth.tar", lambda o: o.update(optimizer=argparse.Namespace(lr=1.0)))
    with pytest.raises(HarnessError, match=r"argparse.Namespace at \['optimizer'\]"):
        read_checkpoint(bad)


def test_unknown_and_unsupported_formats_say_what_was_tried(tmp_path):
    f = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, f)
    with pytest.raises(HarnessError) as err:
        read_checkpoint(f)
    assert "not a checkpoint format the harness reads" in str(err.value)
    tried = [f.name for f in formats()]
    assert tried[:6] == ["harness-backbone", "harness-checkpoint", "usdrl", "umurl", "scdnet", "mamp"]
    assert all(f"{name}: " in str(err.value) for name in tried)  # every format, in the order tried
    assert [str(err.value).index(f"{name}: ") for name in tried] == sorted(str(err.value).index(f"{name}: ")
                                                                           for name in tried)
    scd = tmp_path / "checkpoint.pth.tar"
    torch.save({"epoch": 51, "state_dict": {"encoder_q.encoder.gcn_t.data_bn.weight": torch.ones(150)},
                "optimizer": {}}, scd)
    with pytest.raises(HarnessError, match="SCD-Net pretraining checkpoint.*CTR-GCN"):
        read_checkpoint(scd)
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(HarnessError, match="cannot read checkpoint"):
        read_checkpoint(tmp_path / "junk.pth")


# --- end to end -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("ckpt-work")


def _run(work: Path, res: Path, *args: str) -> list[str]:
    return ["run", "--preset", "smoke", "--workdir", str(work), "--results", str(res), "--no-progress", "--json",
            "--set", "train.num_threads=1", *args]


def _sets(sets: list[str]) -> list[str]:
    return [x for s in sets for x in ("--set", s)]


def test_usdrl_and_mamp_files_evaluate_under_linear_and_knn(work, tmp_path, capsys):
    res = tmp_path / "res"
    f = usdrl_file(tmp_path / "checkpoint_0450.pth.tar")
    m = mamp_file(tmp_path / "checkpoint-399.pth")
    rows = []
    for path, sets in ((f, USDRL_SETS), (m, MAMP_SETS)):
        for protocol in ("linear", "knn"):
            assert main(_run(work, res, "--checkpoint", str(path), "--protocol", protocol, *_sets(sets))) == 0
            rows += json.loads(capsys.readouterr().out)
    assert not (work / "runs").exists()  # nothing was pretrained
    usdrl = [r for r in rows if r["method"] == "usdrl"]
    mamp = [r for r in rows if r["method"] == "mamp"]
    assert {r["metric"] for r in usdrl} >= {"top1_best", "knn1"} and {r["metric"] for r in mamp} >= {"top1_best", "knn1"}
    assert {r["encoder"] for r in usdrl} == {"dste"} and {r["encoder"] for r in mamp} == {"mamp-vit"}
    assert {json.loads(r["extra"])["checkpoint_sha256"] for r in usdrl} == {sha256_of(f)}
    assert {json.loads(r["extra"])["checkpoint_format"] for r in mamp} == {"mamp"}
    assert {r["epochs"] for r in usdrl} == {451} and {r["epochs"] for r in mamp} == {400}
    assert all(0.0 <= r["value"] <= 1.0 for r in rows if r["metric"] in ("top1_best", "knn1"))
    assert len(load_results(res)) == len(rows)
    # the tables show them as rows of their own, never inside the harness's USDRL cell
    t = build_table(3, load_store(res), "synthetic", "smoke")
    labels = list(t.frame.iloc[:, 0])
    assert "USDRL (DSTE), released weights" in labels and "MAMP, released weights" in labels
    knn1 = next(r["value"] for r in usdrl if r["metric"] == "knn1")
    assert t.cell("USDRL (DSTE), released weights", "retrieval").values == [pytest.approx(knn1)]
    assert not t.cell("USDRL (DSTE)", "retrieval").measured  # the paper row the harness fills


def test_tampered_file_fails_on_the_command_line(work, tmp_path, capsys):
    f = usdrl_file(tmp_path / "ok.pth.tar")
    bad = _tamper(f, tmp_path / "missing.pth.tar", lambda o: o["state_dict"].pop("module.backbone.spe"))
    assert main(_run(work, tmp_path / "res", "--checkpoint", str(bad), "--protocol", "knn", *_sets(USDRL_SETS))) == 2
    err = capsys.readouterr().err
    assert "missing from the file (1): module.backbone.spe" in err
    assert main(_run(work, tmp_path / "res", "--checkpoint", str(f), "--method", "mamp", "--protocol", "knn")) == 2
    assert "not method 'mamp'" in capsys.readouterr().err
    assert not (tmp_path / "res" / "results.csv").exists()


def test_harness_backbone_and_training_checkpoint_evaluate_as_the_run_does(work, tmp_path, capsys):
    res = tmp_path / "res"
    assert main(_run(work, res, "--method", "usdrl", "--protocol", "knn")) == 0
    own = {r["metric"]: r for r in json.loads(capsys.readouterr().out)}
    (run,) = [p for p in (work / "runs").iterdir() if p.name.startswith("usdrl-")]
    for path in (run / "backbone.pt", run / "checkpoints" / "last.pt"):
        assert main(_run(work, res, "--checkpoint", str(path), "--protocol", "knn", "--set",
                         "encoder.options.hidden=48")) == 0  # the file's own configuration wins, with a note
        out = capsys.readouterr()
        assert "encoder.options.hidden=32 from the file (not 48)" in out.err
        rows = {r["metric"]: r for r in json.loads(out.out)}
        assert rows["knn1"]["value"] == pytest.approx(own["knn1"]["value"])
        assert rows["knn1"]["config_hash"] != own["knn1"]["config_hash"]
        assert rows["knn1"]["epochs"] == own["knn1"]["epochs"]
        assert json.loads(rows["knn1"]["extra"])["checkpoint_format"] == read_checkpoint(path).format.name
