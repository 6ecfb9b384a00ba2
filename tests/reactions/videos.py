"""Generated test videos and photo sets: drawn demo faces (fer_keras.data.demo) written with OpenCV.

The faces are the demo dataset's drawn faces, which OpenCV's Haar cascade detects and
the shipped model classifies as their emotion for ``angry`` and ``surprise`` (checked
by ``test_shipped_model_reads_the_drawn_faces``); the videos are a few seconds long.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fer_keras.data.demo import draw_face

SIZE = (640, 480)
FACE = 150
BACKGROUND = (160, 140, 120)  # BGR


def faces(emotion: str, n: int = 4, seed: int = 0, size: int = FACE) -> list[np.ndarray]:
    """``n`` drawn faces of ``emotion`` as BGR arrays (a video cycles through them: natural jitter)."""
    rng = np.random.default_rng(seed)
    return [cv2.cvtColor(np.asarray(draw_face(emotion, rng, size=size, rgb=True)), cv2.COLOR_RGB2BGR)
            for _ in range(n)]  # fmt: skip


def _writer(path: Path, fps: float, size=SIZE) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened(), path
    return writer


def segment_video(path: Path, segments: Sequence[tuple[str, float]], fps: float = 10.0) -> Path:
    """One face in the middle, showing each ``(emotion, seconds)`` in turn."""
    drawn = {emotion: faces(emotion) for emotion, _ in segments}
    writer = _writer(path, fps)
    i = 0
    for emotion, seconds in segments:
        for _ in range(round(seconds * fps)):
            frame = np.full((SIZE[1], SIZE[0], 3), BACKGROUND, np.uint8)
            face = drawn[emotion][i % len(drawn[emotion])]
            x, y = (SIZE[0] - FACE) // 2 + (i % 3) * 2, (SIZE[1] - FACE) // 2
            frame[y : y + FACE, x : x + FACE] = face
            writer.write(frame)
            i += 1
    writer.release()
    return path


def swap_video(path: Path, left: str, right: str, seconds: float = 4.0, fps: float = 10.0) -> Path:
    """Two faces that swap sides: ``left`` starts on the left (upper row) and moves right, ``right`` the reverse."""
    drawn = {left: faces(left, seed=1), right: faces(right, seed=2)}
    writer = _writer(path, fps)
    frames = round(seconds * fps)
    x0, x1 = 30, SIZE[0] - FACE - 30
    for i in range(frames):
        t = i / max(1, frames - 1)
        frame = np.full((SIZE[1], SIZE[0], 3), BACKGROUND, np.uint8)
        for emotion, x, y in ((left, x0 + t * (x1 - x0), 20), (right, x1 - t * (x1 - x0), SIZE[1] - FACE - 20)):
            x = round(x)
            frame[y : y + FACE, x : x + FACE] = drawn[emotion][i % 4]
        writer.write(frame)
    writer.release()
    return path


def blank_video(path: Path, seconds: float = 2.0, fps: float = 10.0) -> Path:
    """A video without a face."""
    writer = _writer(path, fps)
    for i in range(round(seconds * fps)):
        writer.write(np.full((SIZE[1], SIZE[0], 3), (i * 3 % 255, 90, 60), np.uint8))
    writer.release()
    return path


def photo(emotion: str, seed: int = 0) -> Image.Image:
    """A 640x480 RGB photo with one drawn face of ``emotion``."""
    img = Image.new("RGB", SIZE, BACKGROUND[::-1])
    img.paste(Image.fromarray(cv2.cvtColor(faces(emotion, 1, seed)[0], cv2.COLOR_BGR2RGB)), (240, 160))
    return img
