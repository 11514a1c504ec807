"""The PKU-MMD scorers (docs/reference/protocols.md §6–§9) against literal transcriptions and the spec's test vectors.

The frames → intervals rules (§9.3, §5.2) are tested in test_pku_intervals.py.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from harness.errors import DataError
from harness.evaluation import pku_scorer as S
from harness.evaluation.pku_scorer import GT, Det


# --- literal, slow transcriptions of the spec ------------------------------------------------------
def literal_official_ap(P, G, theta):
    """§6 word for word. P: (label, s, e, score, video); G: (label, s, e, conf, video)."""

    def overlap(p, g):
        if p[0] != g[0] or p[4] != g[4]:  # "0 if the labels or the videos differ"
            return 0
        return (min(p[2], g[2]) - max(p[1], g[1])) / (max(p[2], g[2]) - min(p[1], g[1]))

    # 1. sort by score ascending, stable
    props = sorted(P, key=lambda p: p[3])
    # 2. each proposal independently takes the best GT with IoU >= theta, same label and video;
    #    on equal IoU the later GT wins
    taken = []
    for p in props:
        chosen, chosen_iou = None, None
        for gi, g in enumerate(G):
            if g[0] != p[0] or g[4] != p[4]:
                continue
            o = overlap(p, g)
            if o >= theta and (chosen is None or o >= chosen_iou):
                chosen, chosen_iou = gi, o
        taken.append(chosen)
    # 3. count[g], positive
    count = [0] * len(G)
    for t in taken:
        if t is not None:
            count[t] += 1
    positive = sum(1 for c in count if c > 0)

    def set_pr(pos, n):
        if n == 0 or len(G) == 0:
            return 0.0, 0.0
        return pos / n, pos / len(G)

    # sweep
    n = len(props)
    best, r_prev = set_pr(positive, n)
    ap = 0.0
    for t in taken:
        n = n - 1
        if t is None:
            continue
        count[t] -= 1
        if count[t] == 0:
            positive -= 1
        p, r = set_pr(positive, n)
        best = max(best, p)
        ap = ap + best * (r_prev - r)
        r_prev = r
    return ap


def literal_voc_class_ap(D, G, theta):
    """§7 for one class. D: (s, e, score, video); G: (s, e, video)."""
    order = sorted(range(len(D)), key=lambda i: -D[i][2])
    taken = [False] * len(G)
    tp, fp = [], []
    for i in order:
        s, e, _, v = D[i]
        best, best_j = 0.0, None
        for j, (gs, ge, gv) in enumerate(G):
            if gv != v:
                continue
            iw = min(e, ge) - max(s, gs) + 1
            ov = iw / ((e - s + 1) + (ge - gs + 1) - iw) if iw > 0 else 0
            if ov > best:  # the first one wins on ties
                best, best_j = ov, j
        if best_j is not None and best >= theta and not taken[best_j]:
            taken[best_j] = True
            tp.append(1), fp.append(0)
        else:
            tp.append(0), fp.append(1)
    ctp, cfp, rec, prec = 0, 0, [], []
    for a, b in zip(tp, fp):
        ctp, cfp = ctp + a, cfp + b
        rec.append(ctp / len(G))
        prec.append(ctp / (ctp + cfp))
    mrec = np.array([0.0] + rec + [1.0], dtype=np.float32)
    mprec = np.array([0.0] + prec + [0.0], dtype=np.float32)
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    total = np.float32(0)
    for i in range(1, len(mrec)):
        if mrec[i] != mrec[i - 1]:
            total = np.float32(total + (mrec[i] - mrec[i - 1]) * mprec[i])
    return float(total)


# --- builders -------------------------------------------------------------------------------------
def ranking(codes: str, n_gt: int):
    """A single-class single-video case from a ranking string (descending score) as in §9.1."""
    gts = [GT(1, 100 * k, 100 * k + 50, "v") for k in range(n_gt)]
    dets, hit, last = [], 0, None
    n = len(codes)
    for r, c in enumerate(codes):
        score = float(n - r)
        if c == "T":
            g = gts[hit]
            hit, last = hit + 1, g
        elif c == "D":
            g = last
        else:
            dets.append(Det(1, 10_000 + 100 * r, 10_050 + 100 * r, score, "v"))
            continue
        dets.append(Det(1, g.start, g.end, score, "v"))
    return dets, gts


def as_tuples(dets, gts):
    return ([(d.label, d.start, d.end, d.score, d.video) for d in dets],
            [(g.label, g.start, g.end, 1, g.video) for g in gts])


def random_case(rng: random.Random):
    videos = ["a", "b", "c"][: rng.randint(1, 3)]
    labels = list(range(1, rng.randint(1, 3) + 1))
    gts = []
    for v in videos:
        for _ in range(rng.randint(0, 5)):
            s = rng.randint(0, 60)
            gts.append(GT(rng.choice(labels), s, s + rng.randint(1, 30), v))
    dets = []
    scores = [0.1, 0.2, 0.3, 0.4, 0.5]  # few values: many ties
    for g in gts:
        for _ in range(rng.randint(0, 3)):  # duplicates and near-misses around each GT
            ds, de = rng.randint(-6, 6), rng.randint(-6, 6)
            s, e = g.start + ds, max(g.start + ds + 1, g.end + de)
            lab = g.label if rng.random() < 0.85 else rng.choice(labels)
            dets.append(Det(lab, s, e, rng.choice(scores), g.video))
    for _ in range(rng.randint(0, 4)):  # background false positives
        s = rng.randint(0, 90)
        dets.append(Det(rng.choice(labels), s, s + rng.randint(1, 20), rng.choice(scores), rng.choice(videos)))
    rng.shuffle(dets)
    return dets, gts, videos, labels


# --- §6: implementation vs the literal transcription -------------------------------------------------
def test_official_ap_matches_literal_transcription_on_random_sets():
    rng = random.Random(1234)
    nontrivial = 0
    for _ in range(400):
        dets, gts, _, _ = random_case(rng)
        P, G = as_tuples(dets, gts)
        for theta in (0.1, 0.3, 0.5, 0.7, 0.95):
            got = S.official_ap(dets, gts, theta)
            want = literal_official_ap(P, G, theta)
            assert got == want, (dets, gts, theta)
            nontrivial += 0.0 < want < 1.0
    assert nontrivial > 200  # the random sets exercise the interesting cases


def test_official_aggregates_match_literal_pooling():
    rng = random.Random(99)
    for _ in range(60):
        dets, gts, videos, labels = random_case(rng)
        nc = 3
        props = {v: [d for d in dets if d.video == v] for v in videos}
        gt_by_video = {v: [g for g in gts if g.video == v] for v in videos}
        got = S.evaluate_official(props, gt_by_video, 0.5, num_classes=nc)
        # class-major pooling, videos in sorted order, lines in file order
        P, G = as_tuples(sorted(dets, key=lambda d: (d.label, d.video)), sorted(gts, key=lambda g: (g.label, g.video)))
        per_class = [literal_official_ap([p for p in P if p[0] == c], [g for g in G if g[0] == c], 0.5)
                     for c in range(1, nc + 1)]
        assert got["mAP_a"] == pytest.approx(sum(per_class) / nc, abs=1e-15)
        per_video = [literal_official_ap([p for p in P if p[4] == v], [g for g in G if g[4] == v], 0.5)
                     for v in sorted(videos)]
        assert got["mAP_v"] == pytest.approx(sum(per_video) / len(videos), abs=1e-15)
        assert got["AP"] == literal_official_ap(P, G, 0.5)
        two_d = sum(literal_official_ap(P, G, (i + 1) * 0.05) for i in range(20)) / 20
        assert got["2DAP"] == pytest.approx(two_d, abs=1e-15)


def test_voc_matches_literal_transcription_on_random_sets():
    rng = random.Random(7)
    for _ in range(300):
        dets, gts, videos, labels = random_case(rng)
        # distinct scores: the reference's tie order is unspecified
        dets = [d._replace(score=float(i) + 0.5) for i, d in enumerate(dets)]
        props = {v: [d for d in dets if d.video == v] for v in videos}
        gt_by_video = {v: [g for g in gts if g.video == v] for v in videos}
        for theta in (0.3, 0.5, 0.7):
            got, per_class = S.map_voc(props, gt_by_video, theta)
            present = sorted({g.label for g in gts})
            want = {c: literal_voc_class_ap([(d.start, d.end, d.score, d.video) for d in dets if d.label == c],
                                            [(g.start, g.end, g.video) for g in gts if g.label == c], theta)
                    for c in present}
            assert set(per_class) == set(present)
            for c in present:
                assert per_class[c] == pytest.approx(want[c], abs=2e-7)
            if present:
                assert got == pytest.approx(np.mean([want[c] for c in present]), abs=1e-6)
            else:
                assert got == 0.0


def closed_form(codes: str, n_gt: int) -> float:
    t = [i + 1 for i, c in enumerate(codes) if c == "T"]
    m_total, n = len(t), len(codes)
    total = 0.0
    for m in range(1, m_total + 1):
        inner = max(((j - 1) / (t[j - 1] - 1) if t[j - 1] > 1 else 0.0) for j in range(m, m_total + 1))
        total += max(m_total / n, inner)
    return total / n_gt


def voc_all_point(codes: str, n_gt: int) -> float:
    t = [i + 1 for i, c in enumerate(codes) if c == "T"]
    return sum(max(j / t[j - 1] for j in range(m, len(t) + 1)) for m in range(1, len(t) + 1)) / n_gt


def test_closed_form_on_random_duplicate_free_rankings():
    rng = random.Random(5)
    for _ in range(500):
        n = rng.randint(1, 12)
        codes = "".join(rng.choice("TF") for _ in range(n))
        g = codes.count("T") + rng.randint(0, 3)
        if g == 0:
            continue
        dets, gts = ranking(codes, g)
        ap = S.official_ap(dets, gts, 0.5)
        assert ap == pytest.approx(closed_form(codes, g), abs=1e-12), codes
        assert ap <= voc_all_point(codes, g) + 1e-12  # never above VOC without duplicates
        assert float(S.voc_class_ap(dets, gts, 0.5)) == pytest.approx(voc_all_point(codes, g), abs=1e-6)


# --- §9.1 --------------------------------------------------------------------------------------
TABLE_9_1 = [
    ("T", 1, 1.0, 1.0), ("TF", 1, 0.5, 1.0), ("FT", 1, 0.5, 0.5), ("TFF", 1, 0.3333, 1.0),
    ("TD", 1, 1.0, 1.0), ("TDF", 1, 1.0, 1.0), ("TFD", 1, 0.5, 1.0), ("FF", 1, 0.0, 0.0),
    ("", 1, 0.0, 0.0), ("T", 2, 0.5, 0.5), ("TFT", 2, 0.6667, 0.8333), ("TTF", 2, 1.0, 1.0),
    ("TTFF", 2, 1.0, 1.0), ("FTT", 2, 0.6667, 0.6667), ("TFTF", 2, 0.5, 0.8333),
    ("FTFT", 2, 0.5, 0.5), ("TFFT", 2, 0.5, 0.75),
]


@pytest.mark.parametrize("codes,n_gt,official,voc", TABLE_9_1)
def test_table_9_1(codes, n_gt, official, voc):
    dets, gts = ranking(codes, n_gt)
    assert S.official_ap(dets, gts, 0.5) == pytest.approx(official, abs=5e-5)
    assert float(S.voc_class_ap(dets, gts, 0.5)) == pytest.approx(voc, abs=5e-5)
    m_voc, _ = S.map_voc({"v": dets}, {"v": gts}, 0.5)
    assert m_voc == pytest.approx(voc, abs=5e-5)


def test_score_ties_keep_input_order_ascending():
    # equal scores: the stable ascending sort removes the earlier-listed proposal first
    gts = [GT(1, 0, 10, "v"), GT(1, 100, 110, "v")]
    f = Det(1, 500, 510, 1.0, "v")
    t1, t2 = Det(1, 0, 10, 1.0, "v"), Det(1, 100, 110, 1.0, "v")
    # [F, T1, T2]: remove F (skip), T1 → (1/1, 1/2), T2 → (0, 0): AP = max(2/3, 1)·1/2 + 1·1/2 = 1
    assert S.official_ap([f, t1, t2], gts) == pytest.approx(1.0)
    # [T1, F, T2]: T1 → (1/2, 1/2), F skipped, T2 → (0,0): AP = 2/3·1/2 + 2/3·1/2 = 2/3
    assert S.official_ap([t1, f, t2], gts) == pytest.approx(2 / 3)
    assert literal_official_ap(*as_tuples([t1, f, t2], gts), 0.5) == pytest.approx(2 / 3)


def test_later_gt_wins_equal_iou_and_matching_is_not_one_to_one():
    gts = [GT(1, 0, 10, "v"), GT(1, 0, 10, "v")]  # identical GTs: the later one takes both proposals
    dets = [Det(1, 0, 10, 0.9, "v"), Det(1, 0, 10, 0.8, "v")]
    assert S.official_match(dets, gts, 0.5) == [1, 1]
    # one GT covered by 2 proposals: P = 1/2, R = 1/2, removing the first leaves (1, 1/2), then (0, 0)
    assert S.official_ap(dets, gts, 0.5) == pytest.approx(0.5)
    # other labels and videos never match
    assert S.official_match([Det(2, 0, 10, 1, "v"), Det(1, 0, 10, 1, "w")], gts, 0.5) == [-1, -1]


# --- §9.2 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("a,b,official,inclusive", [
    ((10, 20), (15, 25), 0.3333, 0.375), ((0, 9), (0, 19), 0.4737, 0.5), ((0, 10), (0, 20), 0.5, 0.5238),
    ((0, 9), (5, 14), 0.2857, 0.3333), ((0, 5), (5, 10), 0.0, 0.0909), ((0, 4), (5, 10), -0.1, 0.0),
])
def test_table_9_2_iou_conventions(a, b, official, inclusive):
    assert S.iou_official(*a, *b) == pytest.approx(official, abs=5e-5)
    assert S.iou_inclusive(*a, *b) == pytest.approx(inclusive, abs=5e-5)


def test_9_2_match_at_half_differs_between_conventions():
    gts = [GT(1, 0, 19, "v")]
    det = Det(1, 0, 9, 1.0, "v")
    assert S.official_match([det], gts, 0.5) == [-1]  # 0.4737: not a match
    assert float(S.voc_class_ap([det], gts, 0.5)) == 1.0  # 0.5 inclusive: a match


# --- §9.4 --------------------------------------------------------------------------------------
GT_9_4 = {"A": [GT(1, 0, 50, "A"), GT(2, 100, 150, "A")], "B": [GT(1, 10, 60, "B")], "C": [GT(2, 0, 30, "C")]}
PROPS_9_4 = {"A": [Det(1, 0, 48, 0.9, "A"), Det(1, 5, 50, 0.8, "A"), Det(2, 300, 350, 0.7, "A"),
                   Det(2, 100, 149, 0.6, "A")],
             "B": [Det(1, 200, 260, 0.95, "B")]}


def test_9_4_end_to_end():
    off = S.evaluate_official(PROPS_9_4, GT_9_4, 0.5, num_classes=51)
    assert off["per_class"][0] == pytest.approx(0.25) and off["per_class"][1] == pytest.approx(0.5)
    assert sum(off["per_class"][2:]) == 0
    assert off["mAP_a"] == pytest.approx(0.75 / 51) and round(off["mAP_a"], 6) == 0.014706
    assert off["per_video"] == {"A": pytest.approx(0.75), "B": 0.0}
    assert off["mAP_v"] == pytest.approx(0.375)
    assert off["AP"] == pytest.approx(0.3)
    assert off["num_gt"] == 3  # C is ignored entirely: no proposal file
    m_voc, per = S.map_voc(PROPS_9_4, GT_9_4, 0.5)
    assert per == {1: pytest.approx(0.25), 2: pytest.approx(0.25)} and m_voc == pytest.approx(0.25)
    m_v_all, per_video = S.map_video(PROPS_9_4, GT_9_4, 0.5, videos=sorted(GT_9_4))
    assert m_v_all == pytest.approx(0.25) and per_video["C"] == 0.0
    everything = S.evaluate_all(PROPS_9_4, GT_9_4, 0.5, num_classes=51)
    assert everything["mAP_a"] == off["mAP_a"] and everything["mAP_v"] == off["mAP_v"]
    assert everything["mAP_a_voc"] == pytest.approx(0.25) and everything["mAP_v_all"] == pytest.approx(0.25)
    sweep = {r["theta"]: r for r in everything["sweep"]}
    assert sweep[0.5]["mAP_a"] == off["mAP_a"] and sweep[0.5]["AP"] == off["AP"]
    assert everything["2DAP"] == pytest.approx(
        sum(S.official_ap(*S.pooled(PROPS_9_4, GT_9_4, ["A", "B"], 51), t) for t in S.TWO_D_THETAS) / 20)


def test_f1_and_num_classes_parameter():
    off = S.evaluate_official(PROPS_9_4, GT_9_4, 0.5, num_classes=2)
    assert off["mAP_a"] == pytest.approx(0.75 / 2)
    # pooled: 5 proposals cover 2 distinct GTs out of 3
    assert (off["precision"], off["recall"]) == (pytest.approx(0.4), pytest.approx(2 / 3))
    assert off["F1"] == pytest.approx(2 * 0.4 * (2 / 3) / (0.4 + 2 / 3))
    assert S.official_f1([], [GT(1, 0, 1, "v")]) == 0.0
    assert S.official_ap([], []) == 0.0 and S.official_ap([Det(1, 0, 1, 1, "v")], []) == 0.0


def test_two_d_thetas():
    assert len(S.TWO_D_THETAS) == 20
    assert S.TWO_D_THETAS[0] == pytest.approx(0.05) and S.TWO_D_THETAS[-1] == 1.0


# --- files -------------------------------------------------------------------------------------
def test_read_files_commas_spaces_and_errors(tmp_path):
    p = tmp_path / "0291-L.txt"
    p.write_text("1,10,20,0.5\n\n2 30 40 0.25\r\n3,\t1,2,1e-3\n")
    dets = S.read_interval_file(p)
    assert dets == [Det(1, 10, 20, 0.5, "0291-L.txt"), Det(2, 30, 40, 0.25, "0291-L.txt"),
                    Det(3, 1, 2, 1e-3, "0291-L.txt")]
    g = tmp_path / "gt.txt"
    g.write_text("51,0,10,2\n1,5,6\n")
    assert S.read_interval_file(g, kind="gt") == [GT(51, 0, 10, "gt.txt"), GT(1, 5, 6, "gt.txt")]
    cases = {
        "1,10,20\n": "line 1|fields",
        "1,10,20,0.5\n52,1,2,0.1\n": ":2: label 52 outside 1..51",
        "0,1,2,0.5\n": "label 0 outside",
        "1.5,1,2,0.5\n": "not an integer",
        "1,a,2,0.5\n": "not a number",
        "1,5,2,0.5\n": "before start",
        "1,1,2,nan\n": "non-finite",
    }
    for text, msg in cases.items():
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(DataError) as err:
            S.read_interval_file(bad)
        assert str(bad) in str(err.value)
        assert any(part in str(err.value) for part in msg.split("|")), str(err.value)
    assert "bad.txt:1:" in str(pytest.raises(DataError, S.read_interval_file, bad).value)


def test_format_round_trips(tmp_path):
    items = [(3, 10, 25, 0.1 + 0.2), (1, 0, 7, 1 / 3)]
    p = tmp_path / "v"
    p.write_text(S.format_intervals(items))
    assert [tuple(d[:4]) for d in S.read_interval_file(p)] == [tuple(map(float, x)) for x in items]
