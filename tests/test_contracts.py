"""Contract tests for every registered plugin (as timm tests every registered model).

The parameter lists are read from the registries when this module is collected, so a new method,
encoder, protocol or dataset kind — built in or from an entry point — is tested here without writing
a test. Plugins that other test modules register for their own use (toy methods, tiny encoders) are
left out: they are not part of the harness.

Everything runs at the smoke preset on tiny synthetic tensors (NTU-25 skeletons, 16 frames).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import typing
from pathlib import Path

import pytest
import torch

from harness.config import PRESETS, DataConfig, TrainConfig, load_config
from harness.resolve import resolved
from harness.contracts import (Backbone, DataInfo, DatasetKind, Encoder, EncoderOutput, Method, Protocol, TableRow,
                               build_encoder, build_method)
from harness.data.prepared.format import open_prepared
from harness.data.topology import NTU25
from harness.engine.checkpoint import export_backbone, load_backbone
from harness.engine.optim import build_optimizer
from harness.errors import HarnessError, UnknownNameError
from harness.registry import DATASETS, ENCODERS, METHODS, PROTOCOLS, Registry

pytestmark = [pytest.mark.contract, pytest.mark.usefixtures("one_thread")]

FRAMES, B, CLASSES = 16, 8, 4
INFO = DataInfo(topology=NTU25, num_classes=CLASSES, frames=FRAMES, persons=2, train_samples=64, batch_size=B,
                total_steps=6)


def plugins(registry: Registry) -> list[str]:
    """Registered names, without the ones test modules add for themselves."""
    return [e.name for e in registry.entries()
            if e.source != "builtin" or getattr(e.obj, "__module__", "").startswith("harness.")]


METHOD_NAMES = plugins(METHODS)
ENCODER_NAMES = plugins(ENCODERS)
PROTOCOL_NAMES = plugins(PROTOCOLS)
DATASET_NAMES = plugins(DATASETS)


def method_encoder_pairs() -> list[tuple[str, str]]:
    """Each method with its default encoder and every encoder its table rows name; the floor method
    (whose rows stand beside every backbone) with every registered encoder."""
    pairs = []
    for name in METHOD_NAMES:
        cls = METHODS.get(name)
        encoders = {cls.default_encoder} | {r.encoder for r in cls.rows() if r.encoder is not None}
        if cls.is_floor:
            encoders |= set(ENCODER_NAMES)
        pairs += [(name, e) for e in sorted(encoders) if e in ENCODER_NAMES]
    return pairs


PAIRS = method_encoder_pairs()
PAIR_IDS = [f"{m}-{e}" for m, e in PAIRS]


def smoke_cfg(method: str, encoder: str = "", **sets):
    return load_config("smoke", overrides={"method.name": method, "encoder.name": encoder, "train.batch_size": B,
                                       **sets})


def raw_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw clips as ClipBatches yields them: (B, 3, T_max, V, M), zero after each clip's length."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, 3, FRAMES + 8, NTU25.num_joints, 2, generator=g)
    lengths = torch.randint(FRAMES // 2, FRAMES + 9, (B,), generator=g)
    for i, n in enumerate(lengths.tolist()):
        x[i, :, n:] = 0
    return x, lengths


def built(method: str, encoder: str, seed: int = 0) -> tuple[Method, object]:
    cfg = smoke_cfg(method, encoder)
    torch.manual_seed(seed)
    return build_method(cfg, INFO), cfg


def train_step_loss(m: Method, seed: int = 0) -> torch.Tensor:
    x, lengths = raw_batch(seed)
    views = m.make_views(x, lengths, torch.Generator().manual_seed(seed))
    labels = torch.arange(B) % CLASSES if m.needs_labels else None
    return m(views, labels)["loss"]


def option_types(cls: type) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls)


# --- methods: self-description --------------------------------------------------------------------
@pytest.mark.parametrize("name", METHOD_NAMES)
def test_method_describes_itself(name):
    cls = METHODS.get(name)
    assert issubclass(cls, Method) and cls.name == name
    assert cls.display_label().strip() and cls.label.strip(), "a label for the tables"
    assert isinstance(cls.paradigm, str) and cls.paradigm.strip()
    assert cls.encoders is None or (cls.encoders and set(cls.encoders) <= set(ENCODERS.names()))
    assert cls.default_encoder in ENCODERS and (cls.encoders is None or cls.default_encoder in cls.encoders)
    assert cls.default_modality in cls.modalities
    assert list(METHODS.entry(name).variants) == list(cls.variants) and "default" in cls.variants
    rows = cls.rows()
    assert rows and all(isinstance(r, TableRow) and r.label.strip() for r in rows)
    for r in rows:
        assert r.encoder is None or r.encoder in ENCODERS, r
        assert cls.encoders is None or r.encoder is None or r.encoder in cls.encoders, r
        assert r.variant in cls.variants, r
        if r.fuse:  # a 3-stream ensemble of single-modality runs of this method
            assert set(r.fuse) <= set(cls.modalities), r
        else:
            assert r.modality is None or r.modality in cls.modalities, r
        assert r.tables and {p[0] for p in r.paper} <= set(r.tables), r
    assert len({(r.label, r.encoder, r.variant, r.modality) for r in rows}) == len(rows)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_method_options_variants_and_tunable_weights(name):
    cls = METHODS.get(name)
    if cls.Options is None:
        assert not cls.tunable and set(cls.variants) == {"default"}
    else:
        assert dataclasses.is_dataclass(cls.Options)
        types = option_types(cls.Options)
        for alias, field in cls.tunable.items():
            assert types.get(field) is float, f"tunable {alias!r} → {field!r} is not a float option"
    for variant in cls.variants:
        options = cls.resolve_options(load_config("smoke", overrides={"method.name": name, "method.variant": variant}))
        assert options is None if cls.Options is None else isinstance(options, cls.Options)
    with pytest.raises(UnknownNameError):  # refused before anything is trained
        build_method(load_config("smoke", overrides={"method.name": name, "method.variant": "no_such_variant"}), INFO)
    for old, new in cls.moved_options.items():
        with pytest.raises(HarnessError, match=re.escape(new)):
            cls.resolve_options(load_config("smoke", overrides={"method.name": name, f"method.options.{old}": 1}))


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_method_config_resolves_at_every_preset(name):
    cls = METHODS.get(name)
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for preset, values in cls.train_defaults.items():
        assert preset == "*" or preset in PRESETS, preset
        assert set(values) <= train_fields, set(values) - train_fields
    for preset in PRESETS:
        r = resolved(load_config(preset, overrides={"method.name": name}))
        assert r.encoder.name == cls.default_encoder and r.method.modality in cls.modalities
        assert resolved(r) == r  # resolving twice changes nothing
        if cls.Options is not None:
            assert set(r.method.options) == {f.name for f in dataclasses.fields(cls.Options)}


# --- methods: build, train, export ----------------------------------------------------------------
@pytest.mark.parametrize("name,encoder", PAIRS, ids=PAIR_IDS)
def test_method_forward_gives_a_finite_loss_and_gradients(name, encoder):
    m, _ = built(name, encoder)
    assert m.derived_settings() is not None
    if not m.pretrains:
        pytest.skip(f"{name} pretrains nothing (pretrains = False)")
    m.train()
    loss = train_step_loss(m)
    assert loss.dim() == 0 and loss.requires_grad and math.isfinite(loss.item())
    loss.backward()
    if not getattr(m, "ddp_find_unused_parameters", False):  # DDP runs without unused-parameter search
        unused = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
        assert not unused, f"trainable parameters without a gradient: {unused[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


@pytest.mark.parametrize("name,encoder", PAIRS, ids=PAIR_IDS)
def test_method_optimizer_step_changes_parameters(name, encoder):
    m, cfg = built(name, encoder)
    if not m.pretrains:
        pytest.skip(f"{name} pretrains nothing (pretrains = False)")
    m.train()
    opt = build_optimizer(resolved(cfg), m, torch.device("cpu"))  # the engine's optimizer, method defaults
    before = {n: p.detach().clone() for n, p in m.named_parameters() if p.requires_grad}
    opt.zero_grad()
    train_step_loss(m).backward()
    opt.step()
    m.after_step()
    changed = [n for n, p in m.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert changed, "one optimizer step changed no parameter"
    assert math.isfinite(train_step_loss(m, seed=1).item())  # and the next step still works


@pytest.mark.parametrize("name,encoder", PAIRS, ids=PAIR_IDS)
def test_method_backbone_gives_pooled_features(name, encoder):
    m, _ = built(name, encoder)
    bb = m.backbone()
    assert isinstance(bb, Backbone) and bb.feature_dim > 0
    own = {id(p) for p in m.parameters()}
    assert all(id(p) in own for p in bb.parameters()), "the backbone shares the method's weights"
    x = torch.randn(3, 3, FRAMES, NTU25.num_joints, 2)  # joint coordinates; the backbone applies the modality
    bb.eval()
    with torch.no_grad():
        out = bb(x)
        assert isinstance(out, EncoderOutput) and out.pooled.shape == (3, bb.feature_dim)
        assert torch.isfinite(out.pooled).all()
        if getattr(bb, "frame_dim", 0):
            assert bb.frame_features(x).shape == (3, FRAMES, bb.frame_dim)


@pytest.mark.parametrize("name,encoder", PAIRS, ids=PAIR_IDS)
def test_method_backbone_round_trips_through_export(name, encoder, tmp_path):
    m, cfg = built(name, encoder)
    path = export_backbone(m, cfg, tmp_path / "backbone.pt", epochs=0, global_step=0)
    loaded, cfg2 = load_backbone(path)
    assert resolved(cfg2).pretrain_hash == resolved(cfg).pretrain_hash and cfg2.method.name == name
    assert cfg2.encoder.name == encoder
    want = m.backbone().state_dict()
    got = loaded.state_dict()
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)
    x = torch.randn(2, 3, FRAMES, NTU25.num_joints, 2)
    bb = m.backbone().eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).pooled, bb(x).pooled)


# --- encoders --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ENCODER_NAMES)
def test_encoder_options_at_every_preset(name):
    cls = ENCODERS.get(name)
    assert issubclass(cls, Encoder) and cls.name == name
    assert cls.Options is not None and dataclasses.is_dataclass(cls.Options)
    fields = {f.name for f in dataclasses.fields(cls.Options)}
    for preset, values in cls.preset_defaults.items():
        assert preset in PRESETS and set(values) <= fields, (preset, values)
    for preset in PRESETS:
        assert isinstance(cls.resolve_options(load_config(preset, overrides={"encoder.name": name})), cls.Options)
    longest = max(fields, key=len)
    with pytest.raises(UnknownNameError, match=f"Did you mean '{longest}'"):
        cls.resolve_options(load_config("smoke", overrides={"encoder.name": name,
                                                        f"encoder.options.{longest[:-1]}": 1}))


@pytest.mark.parametrize("name", ENCODER_NAMES)
def test_encoder_forward_shapes(name):
    torch.manual_seed(0)
    enc = build_encoder(load_config("smoke"), INFO, name=name)
    assert isinstance(enc.options, ENCODERS.get(name).Options)
    assert (enc.frames, enc.joints, enc.persons) == (FRAMES, NTU25.num_joints, 2)
    x = torch.randn(2, 3, FRAMES, NTU25.num_joints, 2)
    enc.train()
    out = enc(x)
    assert isinstance(out, EncoderOutput) and out.pooled.shape == (2, enc.feature_dim)
    if enc.dense:
        for tokens in (out.temporal, out.spatial):
            assert tokens is not None and tokens.dim() == 3 and tokens.shape[0] == 2
            if getattr(enc, "token_dim", 0):
                assert tokens.shape[2] == enc.token_dim
    else:
        assert out.temporal is None and out.spatial is None
    if enc.frame_dim:
        assert enc.frame_features(x).shape == (2, FRAMES, enc.frame_dim)
    if not list(enc.parameters()):  # the raw-joint baseline: nothing to train
        return
    out.pooled.square().mean().backward()
    unused = [n for n, p in enc.named_parameters() if p.grad is None]
    assert not unused, f"parameters the pooled feature does not use: {unused[:5]}"


@pytest.mark.parametrize("name", ENCODER_NAMES)
def test_encoder_init_weights(name):
    torch.manual_seed(0)
    enc = build_encoder(load_config("smoke"), INFO, name=name)
    if not callable(getattr(enc, "init_weights", None)):
        pytest.skip(f"{name} has no reference initialisation")
    before = {n: p.detach().clone() for n, p in enc.named_parameters()}
    enc.init_weights()
    assert any(not torch.equal(p, before[n]) for n, p in enc.named_parameters())
    assert all(torch.isfinite(p).all() for p in enc.parameters())
    torch.manual_seed(1)
    a = build_encoder(load_config("smoke"), INFO, name=name, reference_init=True)
    torch.manual_seed(1)
    b = build_encoder(load_config("smoke"), INFO, name=name, reference_init=True)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # seeded, reproducible


# --- protocols -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PROTOCOL_NAMES)
def test_protocol_options(name):
    cls = PROTOCOLS.get(name)
    assert issubclass(cls, Protocol) and cls.name == name and isinstance(cls.variants, tuple)
    for preset in cls.preset_defaults:
        assert preset in PRESETS, preset
    for preset in PRESETS:
        cfg = load_config(preset, overrides={"protocol.name": name})
        options = cls.resolve_options(cfg)
        if cls.Options is None:
            assert options is None
        else:
            assert dataclasses.is_dataclass(options) and isinstance(options, cls.Options)
        assert isinstance(cls(cfg).eval_data(cfg.data), DataConfig)
    if cls.Options is not None:
        longest = max((f.name for f in dataclasses.fields(cls.Options)), key=len)
        with pytest.raises(UnknownNameError, match=f"Did you mean '{longest}'"):
            cls.resolve_options(load_config("smoke", overrides={"protocol.name": name,
                                                            f"protocol.options.{longest[:-1]}": 1}))
    for old, new in cls.moved_options.items():
        with pytest.raises(HarnessError, match=re.escape(new)):
            cls.resolve_options(load_config("smoke", overrides={"protocol.name": name, f"protocol.options.{old}": 1}))


# --- dataset kinds ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DATASET_NAMES)
def test_dataset_kind_arguments(name):
    cls = DATASETS.get(name)
    assert issubclass(cls, DatasetKind) and cls.name == name
    assert cls.untrimmed_variant is None or isinstance(cls.untrimmed_variant, str)
    parser = argparse.ArgumentParser(prog=f"harness data prepare {name}")
    cls.add_arguments(parser)
    assert parser.format_help()


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_dataset_kind_auto_prepare(name, tmp_path, monkeypatch):
    """Without real files (an empty real-data folder) a kind builds itself or says what it needs."""
    monkeypatch.setenv("HARNESS_REAL_DATA", str(tmp_path / "no-real-data"))
    cls = DATASETS.get(name)
    out = tmp_path / "prepared"
    data = DataConfig(dataset=name, num_samples=24, seed=0)
    try:
        cls.auto_prepare(data, out)
    except HarnessError as exc:
        assert str(exc).strip(), "an error needs a message"
        assert not (out / "samples.csv").exists()
        return
    ds = open_prepared(out)  # it worked: a valid prepared folder
    assert len(ds.samples) > 0 and ds.topology.num_joints > 0
    assert isinstance(cls.cache_name(data, False), str) and cls.cache_name(data, False) != cls.cache_name(data, True)


@pytest.mark.parametrize("name", ENCODER_NAMES)
def test_a_declared_flops_formula_matches_the_counter(name):
    """Encoder.analytic_macs, where an encoder declares one (DSTE, STTR), is 1/2 of FlopCounterMode's count."""
    from harness.benchmarks.flops import encoder_flops

    enc = build_encoder(load_config("smoke"), INFO, name=name)
    macs = enc.analytic_macs()
    if macs is None:
        pytest.skip(f"{name} declares no closed-form count")
    assert encoder_flops(enc, batch=2) == 2 * macs
