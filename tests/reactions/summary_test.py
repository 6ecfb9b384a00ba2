"""Summary statistics: distributions, strongest moments, segment breakdown, groups."""

import numpy as np

from fer_keras.reactions.segments import Segment
from fer_keras.reactions.summary import (
    Peak,
    PeakKeeper,
    distribution,
    group_summaries,
    merge_peaks,
    segment_breakdown,
    timeline_columns,
)

NAMES = ("a", "b", "c")


def _peak(p, t, track=1):
    return lambda: Peak(p, t, 0, track, "a")


def test_distribution_share_and_mean():
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.9, 0.05, 0.05]])
    d = distribution(probs, NAMES)
    assert d["share"] == {"a": 0.75, "b": 0.25, "c": 0.0}
    assert abs(d["mean"]["a"] - 0.55) < 1e-6 and abs(sum(d["mean"].values()) - 1) < 1e-5
    assert distribution(np.zeros((0, 3)), NAMES)["share"] == {"a": 0.0, "b": 0.0, "c": 0.0}


def test_peaks_are_strongest_first_and_apart_in_time():
    keeper = PeakKeeper(keep=2, gap=2.0)
    for t, p in [(0.0, 0.5), (0.2, 0.6), (0.4, 0.55), (5.0, 0.4), (9.0, 0.45), (9.2, 0.3)]:
        keeper.offer(p, t, _peak(p, t))
    assert [(p.time_s, p.probability) for p in keeper.peaks] == [(0.2, 0.6), (9.0, 0.45)]


def test_photo_peaks_are_never_close():
    keeper = PeakKeeper(keep=3)
    for p in (0.2, 0.9, 0.5, 0.7):
        keeper.offer(p, None, _peak(p, None))
    assert [p.probability for p in keeper.peaks] == [0.9, 0.7, 0.5]


def test_merge_peaks_across_tracks():
    merged = merge_peaks(
        [{"a": [Peak(0.9, 1, 0, 1, "a")]}, {"a": [Peak(0.95, 2, 0, 2, "a"), Peak(0.1, 3, 0, 2, "a")]}], NAMES
    )
    assert [p.track_id for p in merged["a"]] == [2, 1, 2] and merged["b"] == []


def test_segment_samples_add_up():
    times = np.arange(0, 10, 0.2)
    probs = np.tile([0.2, 0.7, 0.1], (len(times), 1))
    segments = [Segment("x", 0, 3), Segment("y", 3, 4.5), Segment("z", 8, 20)]
    out = segment_breakdown(segments, times, probs, NAMES)
    assert [s["samples"] for s in out] == [15, 8, 10]
    outside = sum(1 for t in times if 4.5 <= t < 8)
    assert sum(s["samples"] for s in out) + outside == len(times)
    assert out[0]["share"]["b"] == 1.0


def test_groups_pool_their_sources():
    sources = [{"name": "s1", "group": "ad1"}, {"name": "s2", "group": "ad2"}, {"name": "s3", "group": "ad1"},
               {"name": "s4", "group": None}]  # fmt: skip
    pooled = {"s1": np.array([[1.0, 0, 0]]), "s2": np.array([[0, 1.0, 0]]), "s3": np.array([[0, 0, 1.0]] * 3)}
    groups = group_summaries(sources, pooled, NAMES)
    assert [(g["name"], g["sources"], g["samples"]) for g in groups] == [("ad1", ["s1", "s3"], 4), ("ad2", ["s2"], 1)]
    assert groups[0]["share"] == {"a": 0.25, "b": 0.0, "c": 0.75}


def test_timeline_columns():
    assert timeline_columns(NAMES)[:5] == ["source", "kind", "time_s", "frame", "track_id"]
    assert timeline_columns(NAMES)[-4:] == ["a", "b", "c", "top_emotion"]
