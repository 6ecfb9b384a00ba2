"""Keeping each viewer's identity across video frames, with the ``norfair`` tracker.

Each sampled frame's face boxes go to a norfair ``Tracker`` (Kalman-filtered box
corners, matched by IoU), which gives every face a track id that stays with the same
person while they move, and through a few frames where the detector misses them
(:data:`TRACK_MEMORY_S`). The library is ``norfair-enough``, the maintained fork of
norfair that runs on NumPy 2 (the import name is ``norfair`` for both); it belongs to
the ``video`` extra and is imported only when a video is analysed.

Every detection gets an id at once (no initialisation delay, so a viewer's first
frames are not lost); a stray false detection becomes a track of one or two samples,
which :func:`fer_keras.reactions.analyze.analyze_video` drops (:data:`MIN_TRACK_SAMPLES`).
A track gains credit with each matched sample (norfair's hit counter, capped at
:data:`TRACK_MEMORY_S`), so a face seen for a second survives that long unseen, while a
face missed right after its first sample starts a new track (the short one is dropped).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fer_keras.extras import require
from fer_keras.inference.faces import Box
from fer_keras.validation import check_float

# How long a track survives without a matching face (turned away, missed by the detector).
TRACK_MEMORY_S = 2.0
# The IoU distance (1 - IoU) above which a face and a track's predicted box never match.
MAX_IOU_DISTANCE = 0.8
# Tracks with fewer samples are dropped as detector noise (unless the video has fewer frames).
MIN_TRACK_SAMPLES = 3
VIDEO_EXTRA = "video"


def require_tracker():
    """The ``norfair`` module, or a :class:`FerError` naming the ``video`` extra when it is not installed."""
    return require("norfair", VIDEO_EXTRA, who="tracking faces in videos")


class FaceTracker:
    """Track ids for the faces of successive sampled frames of one video.

    Args:
        fps: samples per second (the tracker counts in samples, the settings in seconds).
        memory_s: how long a track survives unmatched.

    Example:
        >>> tracker = FaceTracker(fps=5)  # doctest: +SKIP
        >>> tracker.update([Box(10, 10, 100, 100)])  # doctest: +SKIP
        [1]
    """

    def __init__(self, fps: float, memory_s: float = TRACK_MEMORY_S):
        check_float("fps", fps, low=0.0, low_inclusive=False)
        check_float("memory_s", memory_s, low=0.0, low_inclusive=False)
        norfair = require_tracker()
        self._detection = norfair.Detection
        self._tracker = norfair.Tracker(
            distance_function="iou",
            distance_threshold=MAX_IOU_DISTANCE,
            hit_counter_max=max(2, round(memory_s * fps)),
            initialization_delay=0,
        )
        self._frame = 0

    def update(self, boxes: Sequence[Box]) -> list[int]:
        """The track id of each box of the next sampled frame (same order as ``boxes``).

        Call it once per sampled frame, also with ``[]`` for a frame without a face, so
        that tracks age.
        """
        self._frame += 1
        detections = [
            self._detection(np.array([[b.x, b.y], [b.x + b.w, b.y + b.h]], dtype=np.float64), data=(self._frame, i))
            for i, b in enumerate(boxes)
        ]
        self._tracker.update(detections)
        ids: list[int | None] = [None] * len(boxes)
        for obj in self._tracker.tracked_objects:
            frame, i = obj.last_detection.data
            if frame == self._frame and obj.id is not None:
                ids[i] = int(obj.id)
        # norfair assigns every detection of a frame to an object (a new one when unmatched).
        missing = [i for i, v in enumerate(ids) if v is None]
        if missing:
            raise RuntimeError(f"the tracker left detections {missing} of sample {self._frame} without a track")
        return ids  # type: ignore[return-value]
