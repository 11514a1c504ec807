import numpy as np
import pytest
import torch

from harness.contracts import EncoderOutput
from harness.registry import PROTOCOLS
from harness.evaluation.nearest import knn_predict
from harness.evaluation.scores import load_scores
from harness.protocols.semi import stratified_subset, subset_indices

from protocol_helpers import MeanPoseBackbone, NoiseBackbone, context, toy_dataset

pytestmark = pytest.mark.unit


def test_knn_predict_matches_brute_force_cosine():
    gen = torch.Generator().manual_seed(0)
    g, q = torch.randn(50, 8, generator=gen), torch.randn(20, 8, generator=gen)
    gl = torch.randint(0, 5, (50,), generator=gen)
    pred = knn_predict(g, gl, q, k=1, num_classes=5, chunk=7).argmax(1)
    cos = torch.nn.functional.cosine_similarity(q[:, None], g[None], dim=2)
    assert torch.equal(pred, gl[cos.argmax(1)])
    w = knn_predict(g, gl, q, k=3, num_classes=5, temperature=0.1)
    top = cos.topk(3, dim=1)
    expect = torch.zeros(20, 5).scatter_add_(1, gl[top.indices], (top.values / 0.1).exp())
    torch.testing.assert_close(w, expect, rtol=1e-4, atol=1e-4)


def test_stratified_subset_keeps_every_class_and_is_seeded(tmp_path):
    labels = np.repeat(np.arange(10), [200] + [3] * 9)
    sub = stratified_subset(labels, 0.01, seed=0)
    assert set(labels[sub]) == set(range(10))  # the rare classes still appear once
    assert (labels[sub] == 0).sum() == 2
    assert np.array_equal(sub, stratified_subset(labels, 0.01, seed=0))
    assert not np.array_equal(stratified_subset(labels, 0.5, 0), stratified_subset(labels, 0.5, 1))
    ds = toy_dataset(tmp_path / "ds")
    first = subset_indices(ds, "xsub", 0.25, 3, tmp_path / "subsets")
    assert (tmp_path / "subsets").exists() and np.isin(first, ds.indices("xsub", "train")).all()
    assert np.array_equal(first, subset_indices(ds, "xsub", 0.25, 3, tmp_path / "subsets"))


@pytest.mark.parametrize("protocol", ["linear", "knn"])
def test_frozen_protocols_separate_informative_from_random_features(tmp_path, protocol):
    ds = toy_dataset(tmp_path / "ds")
    ctx = context(ds, tmp_path, MeanPoseBackbone, protocol=protocol,
                  overrides=["protocol.options.epochs=30", "protocol.options.standardize=false",
                             "protocol.options.lr=0.03"] if protocol == "linear" else [])
    rows = {r.metric: r.value for r in PROTOCOLS.get(protocol)(ctx.cfg).run(ctx)}
    headline = "top1_best" if protocol == "linear" else "knn1"
    assert rows[headline] > 0.9, rows
    torch.manual_seed(0)
    noise_ctx = context(ds, tmp_path / "noise", NoiseBackbone, protocol=protocol)
    noise = {r.metric: r.value for r in PROTOCOLS.get(protocol)(noise_ctx.cfg).run(noise_ctx)}
    assert noise[headline] < rows[headline]
    scores = list((tmp_path / "run" / "scores").glob("*.npz"))
    assert scores and load_scores(scores[0])["scores"].shape[1] == ds.num_classes


def test_linear_reports_final_and_best_of(tmp_path):
    ds = toy_dataset(tmp_path / "ds")
    ctx = context(ds, tmp_path, MeanPoseBackbone, overrides=["protocol.seeds=[0,1]"])
    rows = PROTOCOLS.get("linear")(ctx.cfg).run(ctx)
    metrics = {(r.metric, r.seed) for r in rows}
    assert {("top1", 0), ("top1_best", 0), ("top5", 1), ("top1_best", 1)} <= metrics
    by = {(r.metric, r.seed): r.value for r in rows}
    assert by[("top1_best", 0)] >= by[("top1", 0)]
    assert all(r.method == "toy" and r.split == "xsub" and r.preset == "smoke" for r in rows)


def test_semi_finetunes_over_three_subset_seeds(tmp_path):
    ds = toy_dataset(tmp_path / "ds")
    ctx = context(ds, tmp_path, lambda: MeanPoseBackbone(identity=True), protocol="semi",
                  overrides=["protocol.options.fractions=[0.5]", "protocol.options.epochs=4"])
    rows = PROTOCOLS.get("semi")(ctx.cfg).run(ctx)
    top1 = [r for r in rows if r.metric == "top1@0.5"]
    assert sorted(r.seed for r in top1) == [0, 1, 2]
    assert all(0.0 <= r.value <= 1.0 for r in top1)
    assert np.mean([r.value for r in top1]) > 1 / ds.num_classes
    assert len(list((tmp_path / "run" / "subsets").glob("*.npy"))) == 3


def test_standardize_uses_training_statistics_only():
    from harness.protocols.linear import standardize

    train = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    test = torch.tensor([[2.0, 7.0]])
    a, b = standardize(train, test)
    torch.testing.assert_close(a, torch.tensor([[-0.7071, 0.0], [0.7071, 0.0]]), atol=1e-4, rtol=0)
    torch.testing.assert_close(b, torch.tensor([[0.0, 2.0]]))  # constant feature: shifted, not scaled


@pytest.mark.parametrize("preset, on", [("cpu", True), ("smoke", True), ("paper", False)])
def test_semi_standardizes_the_head_input_at_the_small_presets_only(preset, on):
    from harness.config import load_config as resolve

    cfg = resolve(preset, overrides={"protocol.name": "semi"})
    assert PROTOCOLS.get("semi")(cfg).options.standardize is on  # paper: the reference's plain linear head


class OffsetPoseBackbone(MeanPoseBackbone):
    """DSTE-like pooled features: the informative pose on top of one large shared direction."""

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        out = super().forward(x)
        return EncoderOutput(pooled=out.pooled + 100.0, temporal=out.temporal)


@pytest.mark.parametrize("standardize", [True, False])
def test_semi_standardize_lets_the_head_see_past_a_shared_offset(tmp_path, standardize):
    ds = toy_dataset(tmp_path / "ds")
    # 60 one-batch epochs: the BatchNorm's running statistics (momentum 0.1) settle before the test pass
    ctx = context(ds, tmp_path, lambda: OffsetPoseBackbone(identity=True), protocol="semi",
                  overrides=["protocol.options.fractions=[0.5]", "protocol.options.epochs=60",
                             "protocol.options.subset_seeds=[0]", f"protocol.options.standardize={standardize}"])
    top1 = next(r.value for r in PROTOCOLS.get("semi")(ctx.cfg).run(ctx) if r.metric == "top1@0.5")
    if standardize:
        assert top1 > 0.9
    else:  # the plain head's inputs sit at 100: SGD at the reference's lr does not get past the offset
        assert top1 < 0.5
