"""NTU names, the one split rule, missing-skeleton lists and the CTR-GCN statistics files."""

from __future__ import annotations

import numpy as np
import pytest

from harness.data.readers.ntu import ntu_splits as ns
from harness.errors import DataError, UnknownNameError

pytestmark = pytest.mark.unit


def test_parse_name():
    n = ns.parse_name("some/dir/S018C002P045R001A120.skeleton")
    assert (n.name, n.setup, n.camera, n.performer, n.replication, n.action, n.label) == \
        ("S018C002P045R001A120", 18, 2, 45, 1, 120, 119)
    with pytest.raises(DataError, match="not an NTU sample name"):
        ns.parse_name("S01C002P045R001A120.skeleton")


def test_training_mask_by_performer_camera_setup():
    performer = np.array([1, 3, 38, 40, 45, 103, 106])
    camera = np.array([1, 2, 3, 1, 2, 3, 1])
    setup = np.array([1, 2, 17, 18, 31, 32, 4])
    kw = dict(performer=performer, camera=camera, setup=setup)
    assert ns.training_mask("ntu60", "xsub", **kw).tolist() == [1, 0, 1, 0, 0, 0, 0]
    assert ns.training_mask("ntu120", "xsub", **kw).tolist() == [1, 0, 1, 0, 1, 1, 0]
    assert ns.training_mask("ntu60", "xview", **kw).tolist() == [0, 1, 1, 0, 1, 1, 0]
    assert ns.training_mask("ntu120", "xset", **kw).tolist() == [0, 1, 0, 1, 0, 1, 1]
    assert ns.training_mask("ntu120", "xsetup", **kw).tolist() == [0, 1, 0, 1, 0, 1, 1]
    parts = ns.split_indices("ntu60", "xview", **kw)
    assert parts["train"].tolist() == [1, 2, 4, 5] and parts["test"].tolist() == [0, 3, 6]
    assert len(ns.NTU120_TRAIN_PERFORMERS) == 53 and len(ns.TRAIN_SETUPS) == 16


def test_unknown_split_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean 'xview'"):
        ns.canonical_split("ntu60", "xveiw")
    with pytest.raises(UnknownNameError):
        ns.canonical_split("ntu60", "xset")  # NTU-60 has no cross-setup benchmark


def test_missing_list_formats(tmp_path):
    official = tmp_path / "official.txt"
    official.write_text("2 of the captured samples have missing skeletons.\r\nPlease ignore them.\r\n\r\n"
                        "S001C002P005R002A008\r\nS001C002P006R001A008\r\n")
    assert ns.read_missing_list(official) == ["S001C002P005R002A008", "S001C002P006R001A008"]
    plain = tmp_path / "plain.txt"
    plain.write_text("S001C002P005R002A008.skeleton\nS001C002P006R001A008")  # no final newline
    assert ns.read_missing_list(plain) == ["S001C002P005R002A008", "S001C002P006R001A008"]
    wrong_count = tmp_path / "count.txt"
    wrong_count.write_text("3 of the captured samples\nignore\n\nS001C002P005R002A008\n")
    with pytest.raises(DataError, match="header says 3 samples but the list has 1"):
        ns.read_missing_list(wrong_count)
    junk = tmp_path / "junk.txt"
    junk.write_text("S001C002P005R002A008\nS001C002P006R001A008\nnot a name\n")
    with pytest.raises(DataError, match=r"junk.txt:3: 'not a name' is not an NTU sample name"):
        ns.read_missing_list(junk)


def _write_stats(folder, names, **overrides):
    folder.mkdir()
    (folder / "skes_available_name.txt").write_text("\n".join(names))
    parsed = [ns.parse_name(n) for n in names]
    cols = {"setup": [p.setup for p in parsed], "camera": [p.camera for p in parsed],
            "performer": [p.performer for p in parsed], "replication": [p.replication for p in parsed],
            "label": [p.action for p in parsed]}
    cols.update(overrides)
    for key, values in cols.items():
        (folder / f"{key}.txt").write_text("\n".join(str(v) for v in values))


def test_statistics_reader_cross_checks(tmp_path):
    names = ["S001C001P001R001A001", "S001C002P003R001A002", "S002C001P002R002A060"]
    _write_stats(tmp_path / "ok", names)
    st = ns.read_statistics(tmp_path / "ok")
    assert st.label.tolist() == [0, 1, 59]
    assert ns.split_counts(st.splits("ntu60")) == {"xsub": (2, 1), "xview": (1, 2)}
    _write_stats(tmp_path / "short", names, camera=[1, 2])
    with pytest.raises(DataError, match="camera.txt: has 2 lines but skes_available_name.txt has 3"):
        ns.read_statistics(tmp_path / "short")
    _write_stats(tmp_path / "disagree", names, performer=[1, 3, 9])
    with pytest.raises(DataError, match=r"performer.txt:3: says 9 for S002C001P002R002A060"):
        ns.read_statistics(tmp_path / "disagree")


# --- real statistics files ---------------------------------------------------------------------

EXPECTED = {"ntu60": {"xsub": (40091, 16487), "xview": (37646, 18932)},
            "ntu120": {"xsub": (63026, 50919), "xset": (54468, 59477)}}
AVAILABLE = {"ntu60": 56578, "ntu120": 113945}
MISSING = {"ntu60": 302, "ntu120": 535}
OFFICIAL_FILE = {"ntu60": "NTU_RGBD_samples_with_missing_skeletons.txt",
                 "ntu120": "NTU_RGBD120_samples_with_missing_skeletons.txt"}


@pytest.fixture(scope="module")
def stats(real_data):
    return {d: ns.read_statistics(real_data / "ntu" / "statistics" / d) for d in ("ntu60", "ntu120")}


@pytest.mark.real
@pytest.mark.parametrize("dataset", ["ntu60", "ntu120"])
def test_split_sizes_are_exact(stats, dataset):
    st = stats[dataset]
    assert len(st.names) == AVAILABLE[dataset]
    assert ns.split_counts(st.splits(dataset)) == EXPECTED[dataset]
    assert set(st.label.tolist()) == set(range(60 if dataset == "ntu60" else 120))


@pytest.mark.real
@pytest.mark.parametrize("dataset", ["ntu60", "ntu120"])
def test_missing_lists(real_data, stats, dataset):
    official = ns.read_missing_list(real_data / "ntu" / "official" / OFFICIAL_FILE[dataset])
    shipped = ns.official_missing(dataset)
    assert len(official) == MISSING[dataset] and shipped == official
    assert not set(shipped) & set(stats[dataset].names)  # available and missing are disjoint
    assert len(shipped) + AVAILABLE[dataset] == {"ntu60": 56880, "ntu120": 114480}[dataset]


@pytest.mark.real
def test_ntu60_is_ntu120_setups_1_to_17(stats):
    # `prepare ntu60` on an NTU-120 folder relies on this: it keeps setups <= 17
    st120 = stats["ntu120"]
    keep = st120.setup <= ns.LIMITS["ntu60"]["setup"]
    assert [n for n, k in zip(st120.names, keep) if k] == stats["ntu60"].names
    assert set(ns.official_missing("ntu60")) <= set(ns.official_missing("ntu120"))
