"""Finding faces in a photo and cropping them as the model was trained.

The expression models are trained on tight face crops (FER2013 style), so a photo
is classified face by face: detect, then crop the way the training faces were framed.
That framing is a :class:`~fer_keras.model.crop.CropRule` recorded in each model
folder's ``metadata.json`` (``crop``) and applied by every inference path (fer-predict,
fer-serve, fer-eval, fer-reactions). Faces near the photo's edge are completed by repeating the edge
pixels rather than clipped (clipping would shift and squeeze the face). Small
or tight photos are padded and upscaled for detection, since a detector's smallest
window cannot find a face that fills the whole image. A photo without a detectable face is
classified whole, and says so (``detected=False``).

The detector is chosen by name (:data:`DETECTORS`, ``detector=``): ``ssd``, OpenCV's
ResNet-10 SSD (the default: finds more faces than Haar, turned ones too, and is faster),
or ``haar``, OpenCV's Haar cascade (the light fallback). Both report boxes in the Haar
frame the crop rules were measured on, and each is loaded once per thread
(:mod:`fer_keras.inference.detectors`), so ``find_faces`` is safe in several threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2  # imported here, not lazily: a first import racing in worker threads sees a half-built module
import numpy as np
from PIL import Image

from fer_keras.errors import FerError
from fer_keras.inference.detectors import DEFAULT_DETECTOR, DETECTORS, check_detector, get_detector
from fer_keras.model.crop import CropRule
from fer_keras.validation import check_float, check_int

# Detection pads the photo by this fraction of its longer side and upscales it to at
# least DETECT_MIN_SIDE pixels, so a face filling a small or tight photo is found.
DETECT_PAD = 0.25
DETECT_MIN_SIDE = 256
# Haar's cost grows with the pixel count; faces stay detectable at this size.
DEFAULT_MAX_SIDE = 1024

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "Box",
    "Face",
    "crop_box",
    "crop_faces",
    "detect_faces",
    "expand_box",
    "find_faces",
]


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
    """A region to classify: a detected face, or the whole image when none was found.

    ``box`` is clipped to the image (what users see); ``detection`` is the detector's
    box as found, which may reach past the edge, and is what crops are built from.
    """

    box: Box
    detected: bool
    detection: Box | None = None


def detect_faces(
    image: np.ndarray,
    *,
    min_size: int = 24,
    max_side: int = DEFAULT_MAX_SIDE,
    scale_factor: float = 1.1,
    min_neighbors: int = 5,
    detector: str = DEFAULT_DETECTOR,
) -> list[Box]:
    """Face boxes in a grayscale ``(H, W)`` or RGB ``(H, W, 3)`` uint8 image, largest first.

    Images larger than ``max_side`` are searched at a reduced size (boxes are
    reported in original pixels). ``scale_factor`` and ``min_neighbors`` tune the
    Haar cascade; other detectors ignore them. Boxes are in the Haar frame
    (see :mod:`fer_keras.inference.detectors`), whichever detector found them.

    Example:
        >>> from fer_keras.data.demo import draw_face
        >>> face = np.asarray(draw_face("happy", np.random.default_rng(0), size=128))
        >>> photo = np.pad(face, 64, constant_values=60)
        >>> len(detect_faces(photo))
        1
    """
    check_int("min_size", min_size, minimum=1)
    check_int("max_side", max_side, minimum=32)
    check_float("scale_factor", scale_factor, low=1.0, low_inclusive=False)
    check_int("min_neighbors", min_neighbors, minimum=0)
    found_by = get_detector(detector)
    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise FerError(
            f"'image' must be a 2-D (gray) or (H, W, 3) (RGB) uint8 array; got shape {image.shape} and dtype {image.dtype}"
        )
    if found_by.color and image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif not found_by.color and image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)

    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    small = image
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if min(small.shape[:2]) < min_size:
        return []
    if found_by.color:
        found = found_by.detect(small, min_size=min_size)
    else:
        found = found_by.detect(small, min_size=min_size, scale_factor=scale_factor, min_neighbors=min_neighbors)
    boxes = []
    for x, y, w, h in found:
        # Side rounded once, so a square box stays square; clipped to the image.
        bx, by, bw, bh = round(x / scale), round(y / scale), round(w / scale), round(h / scale)
        x0, y0, x1, y1 = max(0, bx), max(0, by), min(width, bx + bw), min(height, by + bh)
        if x1 > x0 and y1 > y0:
            boxes.append(Box(int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
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


def find_faces(image: Image.Image, detect: bool = True, detector: str = DEFAULT_DETECTOR) -> list[Face]:
    """The regions of ``image`` to classify, largest face first.

    With ``detect=False``, or when no face is found, the whole image is one region
    with ``detected=False``. ``detector`` is one of :data:`DETECTORS`; its boxes are
    in the Haar frame, so the model folder's crop rule applies to every detector.
    Safe to call from several threads at once (each thread has its own detector).

    Raises:
        FerError: ``detector`` is unknown or its package is not installed.

    Example:
        >>> img = Image.new("L", (64, 48), 128)
        >>> find_faces(img)
        [Face(box=Box(x=0, y=0, w=64, h=48), detected=False, detection=None)]
    """
    check_detector(detector)
    width, height = image.size
    if detect:
        color = get_detector(detector).color
        mode = "RGB" if color else "L"
        gray = np.asarray(image if image.mode == mode else image.convert(mode), dtype=np.uint8)
        # Pad with the edge pixels and upscale small photos: a face that fills a tight
        # crop has no room around it for Haar's windows otherwise. The photo is brought to
        # the search size (at most DEFAULT_MAX_SIDE once padded, at least DETECT_MIN_SIDE)
        # in ONE resize before padding, so a large photo is never padded at full size.
        padded_side = max(width, height) * (1 + 2 * DETECT_PAD)
        scale = min(DEFAULT_MAX_SIDE / padded_side, max(1.0, DETECT_MIN_SIDE / padded_side))
        if scale != 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        pad = round(DETECT_PAD * max(gray.shape[:2]))
        pads = ((pad, pad), (pad, pad)) + (((0, 0),) if color else ())
        faces = []
        for found in detect_faces(np.pad(gray, pads, mode="edge"), detector=detector):
            x, y = round((found.x - pad) / scale), round((found.y - pad) / scale)
            detection = Box(x, y, max(1, round(found.w / scale)), max(1, round(found.h / scale)))
            faces.append(Face(expand_box(detection, 0.0, width, height), True, detection))
        if faces:
            return faces
    return [Face(Box(0, 0, width, height), False)]


def crop_box(face: Face, rule: CropRule, width: int, height: int) -> Box:
    """The box of ``image`` that ``rule`` crops for ``face`` (may reach past the edge with ``fill='edge'``)."""
    if not face.detected:
        return face.box
    box = face.detection or face.box
    if rule.square:
        side = max(box.w, box.h) * (1 + 2 * rule.margin)
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        grown = Box(round(cx - side / 2), round(cy - side / 2), max(1, round(side)), max(1, round(side)))
    else:
        dx, dy = round(box.w * rule.margin), round(box.h * rule.margin)
        grown = Box(box.x - dx, box.y - dy, box.w + 2 * dx, box.h + 2 * dy)
    return grown if rule.fill == "edge" else expand_box(grown, 0.0, width, height)


def crop_faces(image: Image.Image, faces: list[Face], rule: CropRule | None = None) -> list[Image.Image]:
    """Crop each detected face by ``rule`` (default: :class:`CropRule`); undetected regions as they are."""
    rule = CropRule() if rule is None else rule
    crops = []
    for face in faces:
        box = crop_box(face, rule, *image.size)
        crops.append(_crop(image, box))
    return crops


def _crop(image: Image.Image, box: Box) -> Image.Image:
    """``image`` cropped to ``box``; parts outside the image repeat its edge pixels."""
    width, height = image.size
    x0, y0, x1, y1 = box.x, box.y, box.x + box.w, box.y + box.h
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        return image.crop((x0, y0, x1, y1))
    inside = image.crop((max(0, x0), max(0, y0), min(width, x1), min(height, y1)))
    if inside.mode not in ("L", "RGB", "RGBA"):  # palette, 16-bit, CMYK...: pad real colours, not indices
        inside = inside.convert("RGBA" if "A" in inside.getbands() or "transparency" in inside.info else "RGB")
    pixels = np.asarray(inside)
    pads = [(max(0, -y0), max(0, y1 - height)), (max(0, -x0), max(0, x1 - width))]
    pads += [(0, 0)] * (pixels.ndim - 2)
    return Image.fromarray(np.pad(pixels, pads, mode="edge"))
