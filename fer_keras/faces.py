"""Finding faces in a photo (OpenCV Haar cascade) and cropping them with a margin.

The expression models are trained on tight face crops (FER2013 style), so a photo
is classified face by face: detect, widen each box by a margin (the crops in the
training data include some forehead and chin), clip to the image, crop. A photo
without a detectable face is classified whole, and says so (``detected=False``).

The cascade ships inside opencv-python-headless 4.x (no download). It is loaded once
per thread: ``CascadeClassifier`` is not documented as thread-safe, and the server
detects in several worker threads at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2  # imported here, not lazily: a first import racing in worker threads sees a half-built module
import numpy as np
from PIL import Image

from fer_keras.errors import FerError
from fer_keras.validation import check_float, check_int

CASCADE_FILE = "haarcascade_frontalface_default.xml"
DEFAULT_MARGIN = 0.2
# Haar's cost grows with the pixel count; faces stay detectable at this size.
DEFAULT_MAX_SIDE = 1024

_local = threading.local()


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: top-left corner ``(x, y)``, width, height."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


@dataclass(frozen=True)
class Face:
    """A region to classify: a detected face, or the whole image when none was found."""

    box: Box
    detected: bool


def _cascade():
    cascade = getattr(_local, "cascade", None)
    if cascade is None:
        path = cv2.data.haarcascades + CASCADE_FILE
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise FerError(f"{path}: cannot load the OpenCV face cascade (is opencv-python-headless 4.x installed?)")
        _local.cascade = cascade
    return cascade


def detect_faces(
    gray: np.ndarray,
    *,
    min_size: int = 24,
    max_side: int = DEFAULT_MAX_SIDE,
    scale_factor: float = 1.1,
    min_neighbors: int = 5,
) -> list[Box]:
    """Face boxes in a grayscale ``(H, W)`` uint8 image, largest first.

    Images larger than ``max_side`` are searched at a reduced size (boxes are
    reported in original pixels).

    Example:
        >>> from fer_keras.demo import draw_face
        >>> face = np.asarray(draw_face("happy", np.random.default_rng(0), size=128))
        >>> photo = np.pad(face, 64, constant_values=60)
        >>> len(detect_faces(photo))
        1
    """
    check_int("min_size", min_size, minimum=1)
    check_int("max_side", max_side, minimum=32)
    check_float("scale_factor", scale_factor, low=1.0, low_inclusive=False)
    check_int("min_neighbors", min_neighbors, minimum=0)
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise FerError(f"'gray' must be a 2-D uint8 array; got shape {gray.shape} and dtype {gray.dtype}")

    height, width = gray.shape
    scale = min(1.0, max_side / max(height, width))
    small = gray
    if scale < 1.0:
        small = cv2.resize(
            gray, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
    if min(small.shape) < min_size:
        return []
    # Equalising the histogram makes the cascade robust to dim or washed-out photos.
    found = _cascade().detectMultiScale(
        cv2.equalizeHist(small), scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_size, min_size)
    )
    boxes = []
    for x, y, w, h in np.asarray(found, dtype=np.int64).reshape(-1, 4):
        bx, by = round(x / scale), round(y / scale)
        bw, bh = min(round(w / scale), width - bx), min(round(h / scale), height - by)
        boxes.append(Box(int(bx), int(by), int(bw), int(bh)))
    return sorted(boxes, key=lambda b: (-b.area, b.x, b.y))


def expand_box(box: Box, margin: float, width: int, height: int) -> Box:
    """Widen ``box`` by ``margin`` of its size on every side, clipped to a ``width`` x ``height`` image.

    Example:
        >>> expand_box(Box(10, 10, 50, 50), 0.2, 100, 100)
        Box(x=0, y=0, w=70, h=70)
    """
    check_float("margin", margin, low=0.0)
    dx, dy = round(box.w * margin), round(box.h * margin)
    x0, y0 = max(0, box.x - dx), max(0, box.y - dy)
    x1, y1 = min(width, box.x + box.w + dx), min(height, box.y + box.h + dy)
    return Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def find_faces(image: Image.Image, detect: bool = True) -> list[Face]:
    """The regions of ``image`` to classify, largest face first.

    With ``detect=False``, or when no face is found, the whole image is one region
    with ``detected=False``.

    Example:
        >>> img = Image.new("L", (64, 48), 128)
        >>> find_faces(img)
        [Face(box=Box(x=0, y=0, w=64, h=48), detected=False)]
    """
    width, height = image.size
    if detect:
        gray = np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.uint8)
        boxes = detect_faces(gray)
        if boxes:
            return [Face(box, True) for box in boxes]
    return [Face(Box(0, 0, width, height), False)]


def crop_faces(image: Image.Image, faces: list[Face], margin: float = DEFAULT_MARGIN) -> list[Image.Image]:
    """Crop each detected face with ``margin`` (clipped to the image); undetected regions as they are."""
    check_float("margin", margin, low=0.0)
    crops = []
    for face in faces:
        box = expand_box(face.box, margin, *image.size) if face.detected else face.box
        crops.append(image.crop((box.x, box.y, box.x + box.w, box.y + box.h)))
    return crops
