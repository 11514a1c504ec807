"""The items the PKU-MMD scorers work on and the fixed order they are pooled in.

Proposals and ground truths are the inputs of docs/reference/protocols.md §6. Input order matters
only for ties, so it is fixed here: videos in sorted name order, then the lines of each file.
Pooled (all-class) lists are class-major (label 1..C, then video, then line), as in the official
script.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

PKU_NUM_CLASSES = 51


class Det(NamedTuple):
    """A proposal / detection: PKU label (1..C), start, end, score, video name."""

    label: int
    start: float
    end: float
    score: float
    video: str = ""


class GT(NamedTuple):
    """A ground-truth instance: PKU label (1..C), start, end, video; the confidence is ignored."""

    label: int
    start: float
    end: float
    video: str = ""


Props = Mapping[str, Sequence[Det]]
GTs = Mapping[str, Sequence[GT]]


def by_class(props: Props, gts: GTs, videos: Sequence[str]) -> dict[int, tuple[list[Det], list[GT]]]:
    """{label: (proposals, GTs)} of ``videos``, each list in video order, then line order.

    Items are re-tagged with the video key they are stored under.
    """
    out: dict[int, tuple[list[Det], list[GT]]] = {}
    for v in videos:
        for d in props.get(v, ()):
            out.setdefault(int(d.label), ([], []))[0].append(d._replace(video=v))
        for g in gts.get(v, ()):
            out.setdefault(int(g.label), ([], []))[1].append(g._replace(video=v))
    return out


def pooled(props: Props, gts: GTs, videos: Sequence[str], num_classes: int,
           label: int | None = None) -> tuple[list[Det], list[GT]]:
    """Proposals and GTs of ``videos`` (class-major: label, video, line), optionally one label only."""
    groups = by_class(props, gts, videos)
    labels = [label] if label is not None else range(1, num_classes + 1)
    p_out: list[Det] = []
    g_out: list[GT] = []
    for c in labels:
        p, g = groups.get(c, ([], []))
        p_out += p
        g_out += g
    return p_out, g_out
