"""``--annotate-video``: an MP4 of the sampled frames with each face boxed, labelled and given a probability bar.

The video has the sampling rate (``--fps``), not the source's: it shows exactly the
frames that were analysed, each with the smoothed probabilities the timeline records.
It is encoded as MPEG-4 Part 2 (``mp4v``), the MP4 codec OpenCV's bundled FFmpeg can
always write (H.264 encoders are not in the wheels); desktop players open it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np

from fer_keras.errors import FerError, problem
from fer_keras.inference.faces import Box
from fer_keras.inference.predict import PALETTE

FOURCC = "mp4v"
_OTHER = "#e377c2"


def _bgr(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return b, g, r


class AnnotatedVideo:
    """Writes annotated frames to an MP4 file; opened on the first frame (its size decides the video's).

    Args:
        path: the ``.mp4`` file to write.
        fps: frames per second of the written video (the sampling rate).
        class_names: the model's classes, in the order of the probabilities given to :meth:`write`.

    Example:
        >>> with AnnotatedVideo("out.annotated.mp4", 5, CLASS_NAMES) as video:  # doctest: +SKIP
        ...     video.write(frame_bgr, [Box(10, 10, 80, 80)], [1], [probs])
    """

    def __init__(self, path: str | os.PathLike, fps: float, class_names: Sequence[str]):
        self.path = os.fspath(path)
        self.fps = fps
        self.class_names = list(class_names)
        self.colours = [_bgr(PALETTE.get(name, _OTHER)) for name in self.class_names]
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0

    def __enter__(self) -> AnnotatedVideo:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write(
        self, bgr: np.ndarray, boxes: Sequence[Box], track_ids: Sequence[int], probs: Sequence[np.ndarray]
    ) -> None:
        """Draw the faces of one frame on a copy of ``bgr`` and append it to the video."""
        height, width = bgr.shape[:2]
        if self._writer is None:
            self._writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*FOURCC), self.fps, (width, height))
            if not self._writer.isOpened():
                raise FerError(problem(self.path, f"OpenCV cannot write an {FOURCC} MP4 video here"))
        frame = bgr.copy()
        for box, track, p in zip(boxes, track_ids, probs):
            self._draw(frame, box, track, np.asarray(p))
        self._writer.write(frame)
        self.frames += 1

    def _draw(self, frame: np.ndarray, box: Box, track: int, p: np.ndarray) -> None:
        height, width = frame.shape[:2]
        top = int(p.argmax())
        colour = self.colours[top]
        thick = max(2, round(min(width, height) / 240))
        cv2.rectangle(frame, (box.x, box.y), (box.x + box.w - 1, box.y + box.h - 1), colour, thick)
        text = f"#{track} {self.class_names[top]} {p[top]:.2f}"
        scale = max(0.4, min(width, height) / 900)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = box.y - 4 if box.y - th - base - 4 >= 0 else box.y + th + base + 4
        cv2.rectangle(frame, (box.x, ty - th - base), (box.x + tw + 4, ty + 2), colour, -1)
        cv2.putText(frame, text, (box.x + 2, ty - base + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)  # fmt: skip
        # The probability bar: one segment per class, as wide as its probability, under the box.
        bar_h = max(6, box.h // 12)
        y0 = min(height - bar_h, box.y + box.h + 2)
        x = float(box.x)
        for value, c in zip(p, self.colours):
            x1 = x + float(value) * box.w
            if round(x1) > round(x):
                cv2.rectangle(frame, (round(x), y0), (round(x1) - 1, y0 + bar_h - 1), c, -1)
            x = x1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
