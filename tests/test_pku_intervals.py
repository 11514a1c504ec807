"""The frames → intervals rules of harness.evaluation.intervals (docs/reference/protocols.md §5.1, §5.2) against a
literal mean filter and the spec's test vectors (§9.3)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.evaluation import intervals
from harness.evaluation.intervals import (class_threshold_segments, frames_to_intervals, get_segments,
                                         pad_background, smooth_posteriors)


def literal_smooth(x, k):
    """§5.1 step 1 word for word: frame i averages x[max(i − k, 0) : min(i + k, L − 1)]."""
    n = len(x)
    return np.stack([np.mean(x[max(i - k, 0):min(i + k, n - 1)], axis=0) for i in range(n)])


# --- §9.3 --------------------------------------------------------------------------------------
def test_9_3_smoothing_k2():
    x = np.array([0, 0, 1, 1, 1, 1], dtype=np.float64)
    np.testing.assert_allclose(smooth_posteriors(x, 2), [0, 1 / 3, 0.5, 0.75, 1, 1], atol=1e-15)


def test_smoothing_equals_literal_mean_filter():
    rng = np.random.default_rng(0)
    for n, k in [(2, 1), (7, 3), (30, 10), (25, 10), (100, 10), (5, 10)]:
        x = rng.random((n, 4))
        np.testing.assert_array_equal(smooth_posteriors(x, k), literal_smooth(x, k))
    # the last frame never contributes; the window is k before, the frame and k - 1 after
    x = np.zeros((30, 2))
    x[-1] = 1000.0
    assert smooth_posteriors(x, 10)[:, 0].max() == 0
    x = np.zeros((30, 2))
    x[15, 0] = 20.0
    y = smooth_posteriors(x, 10)[:, 0]
    assert np.flatnonzero(y).tolist() == list(range(6, 26))  # 20-frame window: i-10 <= 15 < i+10


POST_9_3 = np.array([[.9, .05, .05], [.5, .4, .1], [.3, .6, .1], [.6, .1, .3],
                     [.7, .1, .2], [.2, .1, .7], [.1, .3, .6], [.9, .05, .05]])


def test_9_3_get_segments():
    np.testing.assert_allclose(1 - POST_9_3[:, 0], [.1, .5, .7, .4, .3, .8, .9, .1], atol=1e-12)
    segs = get_segments(POST_9_3, 0.4)
    assert [(c, s, e) for c, s, e, _ in segs] == [(1, 1, 4), (2, 5, 7)]
    assert segs[0][3] == pytest.approx(0.3667, abs=5e-5)
    assert segs[1][3] == pytest.approx(0.65, abs=1e-12)
    # no smoothing (k = 0) and no padding: frames_to_intervals is get_segments
    assert frames_to_intervals(POST_9_3, k=0, threshold=0.4) == segs


def test_padding_pulls_the_last_frames_to_background():
    post = np.zeros((40, 3))
    post[:, 0] = 1.0
    post[25:, 0], post[25:, 2] = 0.0, 1.0  # class 2 active until the very end
    unpadded = frames_to_intervals(post, k=10, threshold=0.4)
    padded = frames_to_intervals(post, k=10, threshold=0.4, pad_to=9000)
    assert pad_background(post, 9000).shape == (9000, 3)
    assert pad_background(post, 9000)[40:, 0].min() == 1.0
    # frame i is active when >= 8 of its 20 window frames [i - 10, i + 10) are class frames:
    # the run starts at 23 (window [13, 33) holds 25..32). Without padding it lasts to the end.
    assert unpadded == [(2, 23, 40, pytest.approx(smooth_posteriors(post, 10)[23:40, 2].mean()))]
    # with P(bg) = 1 padding, frame i >= 40 sees 50 - i class frames: active up to 42, past the video
    assert padded == [(2, 23, 43, pytest.approx(
        smooth_posteriors(pad_background(post, 9000), 10)[23:43, 2].mean()))]


def test_5_2_class_threshold_runs():
    post = np.array([[.9, .05, .05], [.5, .01, .49], [.3, .6, .1], [.97, .01, .02], [.5, .03, .47]])
    segs = class_threshold_segments(post, 0.02)
    # class 1 > 0.02 on frames 0, 2, 4; class 2 > 0.02 on 0..2 and 4 (0.02 is not > 0.02)
    assert [(c, s, e) for c, s, e, _ in segs] == [(1, 0, 1), (1, 2, 3), (1, 4, 5), (2, 0, 3), (2, 4, 5)]
    assert segs[3][3] == pytest.approx((.05 + .49 + .1) / 3)


def test_split_rule_cuts_a_bridged_pair_of_actions_and_keeps_flickers():
    # class 1 for 30 frames, a 3-frame gap the filter bridges, class 2 for 30 frames; a 4-frame
    # flicker of class 2 inside the first action must not start an interval
    x = np.zeros((80, 3))
    x[:, 0] = 1.0
    x[5:35] = [0.1, 0.9, 0.0]
    x[15:19] = [0.1, 0.0, 0.9]
    x[38:68] = [0.1, 0.0, 0.9]
    (merged,) = intervals.frames_to_intervals(x, k=3)  # §5.1: one interval over both actions
    assert merged[1] <= 5 and merged[2] >= 67
    got = intervals.split_segments(x, k=3, min_len=10)
    assert [c for c, *_ in got] == [1, 2] and got[0][1] == merged[1] and got[1][2] == merged[2]
    assert got[0][2] == got[1][1] and 34 <= got[0][2] <= 39
    assert all(0 < score <= 1 for *_, score in got)
    assert intervals.split_segments(x, k=3, min_len=100) == intervals.frames_to_intervals(x, k=3)


def test_split_rule_gives_a_short_first_stretch_to_the_one_after_it():
    y = np.zeros((30, 3))
    y[:, 0] = 0.1
    y[:3] = [0.1, 0.0, 0.9]  # 3 frames of class 2, then 27 of class 1
    y[3:, 1] = 0.9
    assert [(c, s, e) for c, s, e, _ in intervals.split_run(y, 0, 30, min_len=10)] == [(1, 0, 30)]
