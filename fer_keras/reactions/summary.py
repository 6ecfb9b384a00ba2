"""The output folder of fer-reactions and its ``summary.json``: the contract the report and the API read.

Output folder ``DIR`` (built in a temporary folder beside it and swapped in whole at the
end, so it is never half-written; see :func:`fer_keras.reactions.analyze.run_reactions`):

- ``timeline.csv`` (:data:`fer_keras.constants.TIMELINE_FILE`): one row per face per
  sampled frame (videos) or per photo (photo sets), plus one row per sampled frame or
  photo in which no face was found. Columns, in this order (:data:`TIMELINE_COLUMNS`):

  ``source`` (the source's ``name`` in summary.json), ``kind`` (``video`` | ``photo``),
  ``time_s`` (seconds from the video's start, 3 decimals; empty for photos), ``frame``
  (the video frame index, or the photo's file name relative to its photo set),
  ``track_id`` (videos: the viewer's track, stable across frames; photos: the face's
  number in that photo, 1 = largest; empty when no face), ``x, y, w, h`` (the face box in
  frame/photo pixels; empty when no face), ``detected`` (``yes``, or ``no`` on a row
  without a face), the 7 probabilities ``angry, disgust, fear, happy, neutral, sad,
  surprise`` (the model's class order; smoothed per track for videos, raw for photos;
  6 decimals; empty when no face) and ``top_emotion`` (the most probable one; empty when
  no face).

- ``summary.json`` (:data:`fer_keras.constants.REACTIONS_SUMMARY_FILE`), format version 1::

    {"format_version": 1,
     "model": {"name", "version", "runtime"},
     "settings": {"fps", "smooth", "smooth_method", "detector", "align",   # align: the CSV's path or null
                  "segments": [{"name", "start_s", "end_s"}]},             # as read from --align ([] without)
     "sources": [{
        "name",            # unique in this summary; the timeline's `source` column
        "kind",            # "video" | "photo" (a photo set: one folder or sub-folder of photos)
        "path",            # the video file or the photo folder, as given/found
        "group",           # first sub-folder under a FOLDER argument (e.g. one per ad), else null
        "duration_s",      # video length in seconds (null for photos)
        "frames_sampled",  # sampled frames (videos) or photos read (photo sets)
        "frames_without_face",
        "faces",           # face samples in total (rows of the timeline with a face)
        "tracks": [{"track_id", "first_s", "last_s", "samples",
                    "share": {emotion: fraction of the track's samples where it is the top emotion},
                    "mean": {emotion: mean (smoothed) probability},
                    "peaks": {emotion: [PEAK, ...]}}],              # videos only; [] for photo sets
        "overall": {"share", "mean", "peaks"},    # over every face sample of the source (sample-weighted)
        "segments": [{"name", "start_s", "end_s", "samples", "share", "mean"}],  # videos with --align
        "warnings": ["..."]}],
     "groups": [{"name", "sources": [source names], "samples", "share", "mean"}],  # one per non-null group
     "warnings": ["..."]}        # run-level: skipped inputs, segment file notes

  ``PEAK`` is ``{"time_s" (null for photos), "frame", "track_id", "probability",
  "thumbnail"}``: one of the strongest moments of an emotion (highest smoothed
  probability; moments of one track at least :data:`PEAK_GAP_S` apart), at most
  :data:`PEAKS_PER_EMOTION` per emotion, strongest first; ``thumbnail`` is the path,
  relative to DIR, of a JPEG of the face at that moment under ``peaks/``. An emotion
  that is never the most probable anywhere still has peaks (its highest values).
  ``share`` and ``mean`` map every class name to a float; they are all zeros when a
  source has no face sample. A segment's ``samples`` counts face samples with
  ``start_s <= time_s < end_s``, so the segments' samples plus those outside every
  segment add up to the source's ``faces``.

- ``peaks/``: the thumbnails above (``s<source>-t<track>-<emotion>-<rank>.jpg``).
- ``<video-stem>.annotated.mp4`` (``--annotate-video``): the sampled frames with boxes, labels
  and a probability bar per face, at the sampling rate (suffix
  :data:`fer_keras.constants.ANNOTATED_SUFFIX`).
- ``report.html``: written last by :func:`fer_keras.reactions.report.write_reaction_report`
  from the files above, when that module is present.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT_VERSION = 1
# Strongest moments kept per emotion (per track and per source), and how far apart
# two moments of one track must be: adjacent frames of one smile are one moment.
PEAKS_PER_EMOTION = 3
PEAK_GAP_S = 2.0
TIMELINE_FIXED = ("source", "kind", "time_s", "frame", "track_id", "x", "y", "w", "h", "detected")


def timeline_columns(class_names: Sequence[str]) -> list[str]:
    """The columns of ``timeline.csv`` for a model with ``class_names``."""
    return [*TIMELINE_FIXED, *class_names, "top_emotion"]


@dataclass
class Peak:
    """One strong moment of an emotion: where it was, and the face crop its thumbnail is made from."""

    probability: float
    time_s: float | None
    frame: int | str
    track_id: int
    emotion: str
    image: Any = None
    thumbnail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "time_s": None if self.time_s is None else round(self.time_s, 3),
            "frame": self.frame,
            "track_id": self.track_id,
            "probability": round(self.probability, 6),
            "thumbnail": self.thumbnail,
        }


@dataclass
class PeakKeeper:
    """The strongest moments of one emotion for one track, kept online (the video is never held in memory).

    A new moment closer than ``gap`` seconds to a kept one replaces it only when stronger;
    otherwise it competes for one of ``keep`` places. Photos (``time_s`` None) are never "close".
    """

    keep: int = PEAKS_PER_EMOTION
    gap: float = PEAK_GAP_S
    peaks: list[Peak] = field(default_factory=list)

    def offer(self, probability: float, time_s: float | None, make: Any) -> None:
        """Consider a moment; ``make()`` builds its :class:`Peak` (with thumbnail) only when it is kept."""
        near = [
            p for p in self.peaks if time_s is not None and p.time_s is not None and abs(p.time_s - time_s) < self.gap
        ]
        if near:
            if probability <= max(p.probability for p in near):
                return
            self.peaks = [p for p in self.peaks if p not in near]
        elif len(self.peaks) >= self.keep and probability <= self.peaks[-1].probability:
            return
        self.peaks.append(make())
        self.peaks.sort(key=lambda p: -p.probability)
        del self.peaks[self.keep :]


def distribution(probs: np.ndarray, class_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """``share`` (fraction of rows where each class is the top one) and ``mean`` of ``(N, C)`` probabilities."""
    n = len(probs)
    if n == 0:
        zeros = {name: 0.0 for name in class_names}
        return {"share": dict(zeros), "mean": dict(zeros)}
    top = np.bincount(np.asarray(probs).argmax(axis=1), minlength=len(class_names)) / n
    mean = np.asarray(probs, dtype=np.float64).mean(axis=0)
    return {
        "share": {name: round(float(v), 6) for name, v in zip(class_names, top)},
        "mean": {name: round(float(v), 6) for name, v in zip(class_names, mean)},
    }


def merge_peaks(groups: Iterable[dict[str, list[Peak]]], class_names: Sequence[str]) -> dict[str, list[Peak]]:
    """The strongest :data:`PEAKS_PER_EMOTION` moments per emotion over several tracks' peaks."""
    merged: dict[str, list[Peak]] = {name: [] for name in class_names}
    for peaks in groups:
        for name, items in peaks.items():
            merged.setdefault(name, []).extend(items)
    return {name: sorted(items, key=lambda p: -p.probability)[:PEAKS_PER_EMOTION] for name, items in merged.items()}


def peaks_json(peaks: dict[str, list[Peak]]) -> dict[str, list[dict[str, Any]]]:
    return {name: [p.to_dict() for p in items] for name, items in peaks.items()}


def segment_breakdown(
    segments: Sequence[Any], times: np.ndarray, probs: np.ndarray, class_names: Sequence[str]
) -> list[dict[str, Any]]:
    """Per segment (``name``, ``start_s``, ``end_s``): the face samples with ``start_s <= t < end_s``."""
    times = np.asarray(times, dtype=np.float64)
    out = []
    for seg in segments:
        inside = (times >= seg.start_s) & (times < seg.end_s)
        entry = {"name": seg.name, "start_s": seg.start_s, "end_s": seg.end_s, "samples": int(inside.sum())}
        out.append(entry | distribution(probs[inside], class_names))
    return out


def group_summaries(sources: Sequence[dict[str, Any]], pooled: dict[str, np.ndarray], class_names: Sequence[str]):
    """One entry per non-null ``group``, in first-seen order, pooling its sources' face samples.

    Args:
        sources: the summary's source entries.
        pooled: source name -> its ``(N, C)`` face-sample probabilities.
        class_names: the model's classes.
    """
    order: dict[str, list[str]] = {}
    for source in sources:
        if source.get("group") is not None:
            order.setdefault(source["group"], []).append(source["name"])
    groups = []
    for name, members in order.items():
        arrays = [pooled[m] for m in members if len(pooled.get(m, ())) > 0]
        probs = np.concatenate(arrays) if arrays else np.zeros((0, len(class_names)))
        groups.append({"name": name, "sources": members, "samples": len(probs)} | distribution(probs, class_names))
    return groups
