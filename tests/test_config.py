import pytest

from harness.config import RunConfig, apply_overrides, from_dict, load_config, load_yaml, parse_options
from harness.resolve import resolve_config, resolved
from harness.errors import HarnessError, UnknownNameError

pytestmark = pytest.mark.unit


def test_presets_differ_and_paper_is_the_reference():
    paper, cpu, smoke = resolve_config("paper"), resolve_config("cpu"), resolve_config("smoke")
    hidden = {name: resolved(c).encoder.options["hidden"] for name, c in [("paper", paper), ("cpu", cpu)]}
    assert (hidden["paper"], paper.train.batch_size, paper.train.epochs, paper.train.steps) == (1024, 356, 451, 0)
    assert paper.train.milestones == [351 / 451] and paper.train.lr == 5e-4 and paper.train.weight_decay == 1e-5
    assert hidden["cpu"] < hidden["paper"] and 0 < smoke.train.steps < cpu.train.steps
    assert (cpu.train.steps, cpu.train.milestones, smoke.train.steps, smoke.train.milestones) == (320, [0.8], 6, [0.5])
    assert len({paper.pretrain_hash, cpu.pretrain_hash, smoke.pretrain_hash}) == 3


def test_set_overrides_parse_types_and_section_shorthand():
    cfg = load_config("cpu", overrides=["train.epochs=7", "encoder=sttr", "train.milestones=[0.3,0.5]",
                                    "train.compile=true", "method.options.xc_weight=0", "encoder.options.ffn=96"])
    assert cfg.train.epochs == 7 and cfg.encoder.name == "sttr"
    assert cfg.train.milestones == [0.3, 0.5] and cfg.train.compile is True
    assert cfg.method.options == {"xc_weight": 0} and cfg.encoder.options == {"ffn": 96}


def test_moved_encoder_keys_name_their_new_place():
    for key in ("hidden", "alpha", "drop_path"):
        with pytest.raises(HarnessError, match=rf"encoder\.options\.{key}"):
            resolve_config("cpu", overrides=[f"encoder.{key}=3"])


def test_resolved_fills_every_plugin_option_and_is_idempotent():
    cfg = load_config("smoke", overrides=["encoder.options.heads=2"])
    r = resolved(cfg)
    assert cfg.encoder.name == "" and cfg.encoder.options == {"heads": 2}  # the input is not mutated
    assert r.encoder.name == "dste" and r.method.modality == "joint"
    assert r.encoder.options["heads"] == 2 and r.encoder.options["hidden"] == 32  # the smoke size
    assert r.method.options["sim_weight"] == 5.0 and "epochs" in r.protocol.options
    assert resolved(r) is r and not hasattr(cfg, "pretrain_hash")  # only a resolved config has hashes
    # stating a default explicitly is the same configuration
    assert resolve_config("smoke", overrides=["encoder=dste", "encoder.options.hidden=32", "encoder.options.heads=2"]
                   ).pretrain_hash == r.pretrain_hash
    with pytest.raises(UnknownNameError, match="hidden"):
        resolved(resolve_config("smoke", overrides=["encoder.options.hiden=3"]))


def test_resolved_checks_training_settings():
    for bad, match in [("train.lr=0", "train.lr"), ("train.lr=.nan", "train.lr"),
                       ("train.milestones=[351]", "fractions"), ("train.milestones=[0.8,0.5]", "increasing"),
                       ("train.warmup=1.5", "train.warmup"), ("train.betas=[0.9]", "train.betas"),
                       ("train.batch_size=0", "train.batch_size")]:
        with pytest.raises(HarnessError, match=match):
            resolved(resolve_config("smoke", overrides=[bad]))
    with pytest.raises(UnknownNameError, match="cosine"):
        resolved(resolve_config("smoke", overrides=["train.schedule=cosin"]))
    with pytest.raises(HarnessError, match="no training at all"):
        resolved(resolve_config("smoke", overrides=["train.steps=0", "train.epochs=0"]))
    resolved(resolve_config("smoke", overrides=["method.name=random", "train.steps=0", "train.epochs=0"]))  # no budget needed


def test_seed_is_in_the_pretrain_hash_but_not_the_config_hash():
    a, b = resolve_config("smoke"), resolve_config("smoke", overrides=["train.seed=1"])
    assert a.pretrain_hash != b.pretrain_hash and a.config_hash == b.config_hash


def test_unknown_key_suggests_close_match():
    with pytest.raises(UnknownNameError, match="train.epochs"):
        resolve_config("cpu", overrides=["train.epoch=3"])
    with pytest.raises(UnknownNameError, match="cpu"):
        resolve_config("cpuu")


def test_bad_value_is_a_clear_error():
    with pytest.raises(HarnessError, match="train.epochs"):
        resolve_config("cpu", overrides=["train.epochs=abc"])
    with pytest.raises(HarnessError, match="key=value"):
        resolve_config("cpu", overrides=["train.epochs"])


def test_yaml_file_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  epochs: 9\n  lr: 0.01\nmethod:\n  options:\n    sim_weight: 2\n")
    cfg = load_config("smoke", f, ["train.lr=0.5"])
    assert cfg.train.epochs == 9 and cfg.train.lr == 0.5 and cfg.method.options == {"sim_weight": 2}
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(HarnessError, match="bad.yaml"):
        load_yaml(bad)


def test_hash_is_stable_and_roundtrips():
    cfg = resolve_config("smoke", overrides=["train.epochs=3"])
    again = resolved(from_dict(cfg.to_dict()))  # read back: resolved again
    assert again == cfg and again.pretrain_hash == cfg.pretrain_hash and again.config_hash == cfg.config_hash
    proto = resolve_config("smoke", overrides=["train.epochs=3", "protocol.name=knn"])
    assert proto.pretrain_hash == cfg.pretrain_hash and proto.config_hash != cfg.config_hash
    assert resolve_config("smoke", overrides=["train.epochs=4"]).pretrain_hash != cfg.pretrain_hash


def test_parse_options_checks_keys():
    from dataclasses import dataclass

    @dataclass
    class Opts:
        lr: float = 0.1
        epochs: int = 3

    assert parse_options(Opts, {"lr": "0.5"}, "x").lr == 0.5
    with pytest.raises(UnknownNameError, match="epochs"):
        parse_options(Opts, {"epoch": 2}, "x")


def test_apply_overrides_on_fresh_config_is_not_shared():
    a, b = RunConfig(), RunConfig()
    apply_overrides(a, {"train.milestones": [1]})
    assert b.train.milestones == [351 / 451]


def test_thread_count_and_logging_do_not_change_the_hashes():
    a = resolve_config("smoke")
    b = resolve_config("smoke", overrides=["train.num_threads=1", "train.log_every=50"])
    assert (a.pretrain_hash, a.config_hash) == (b.pretrain_hash, b.config_hash)
