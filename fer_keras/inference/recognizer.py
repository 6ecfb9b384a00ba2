"""The one-line Python API, and the one path from an image to the emotions of its faces.

``EmotionRecognizer().analyze("photo.jpg")`` finds the faces, crops each by the model's
crop rule, runs the model once for all of them and returns, per face, its box, the
class probabilities and the top emotion. ``fer-predict`` and ``fer-serve`` run through
the same object, so a photo gets the same answer from all three.

Nothing happens in the constructor beyond checking the arguments (the scikit-learn
rule): the model loads on first use, once, even when many threads ask at once, or
on an explicit :meth:`EmotionRecognizer.load`. With the ``onnx`` runtime (what ``auto``
picks when the model folder has ``model.onnx`` and onnxruntime is installed) TensorFlow
is never imported.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from fer_keras.errors import FerError
from fer_keras.inference.faces import DEFAULT_DETECTOR, DETECTORS, Box, Face, crop_faces, find_faces
from fer_keras.inference.inputs import CHANNELS, as_image
from fer_keras.inference.predictor import RUNTIME_CHOICES, Predictor
from fer_keras.model.crop import CropRule
from fer_keras.model.model_folder import TTA_CHOICES
from fer_keras.model.shipped import default_model_dir
from fer_keras.validation import check_bool, check_choice, check_float, must

# Face detection of a batch runs in threads (OpenCV releases the GIL).
MAX_DETECT_THREADS = 8


@dataclass(frozen=True)
class FaceResult:
    """One face (or, when none was found or detection is off, the whole image).

    Attributes:
        box: ``x, y, w, h`` in pixels of the image as given (for files: EXIF-rotated).
        detected: ``False`` when no face was found (or ``detect=False``) and the whole image was classified.
        label: the top emotion, the most probable class.
        probabilities: class name -> probability, in the model's class order.
    """

    box: Box
    detected: bool
    label: str
    probabilities: dict[str, float]

    @property
    def score(self) -> float:
        """The probability of :attr:`label`."""
        return self.probabilities[self.label]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the shape of a face in ``fer-predict --json`` and the web API."""
        return {
            "box": self.box.as_list(),
            "detected": self.detected,
            "label": self.label,
            "probabilities": self.probabilities,
        }


@dataclass(frozen=True)
class ImageResult:
    """All faces of one input, largest first; iterating over it iterates over the faces.

    Attributes:
        faces: one :class:`FaceResult` per face (at least one: the whole image when none was found).
        width, height: the image's size in pixels.
        source: the file path for a path input, else ``None``.
    """

    faces: list[FaceResult]
    width: int
    height: int
    source: str | None = None

    def __iter__(self) -> Iterator[FaceResult]:
        return iter(self.faces)

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, index: int) -> FaceResult:
        return self.faces[index]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "faces": [face.to_dict() for face in self.faces],
        }


class EmotionRecognizer:
    """Facial expressions of the faces in images, with a model folder.

    Args:
        model: the model folder (default: :func:`fer_keras.model.shipped.default_model_dir`,
            the shipped model, or ``$FER_KERAS_MODEL``).
        runtime: ``auto`` (onnx when the folder has ``model.onnx`` and onnxruntime is
            installed, else keras), ``onnx`` or ``keras``.
        detect: find faces; ``False`` classifies each whole image (inputs already face crops).
        detector: the face detector, one of ``fer_keras.inference.faces.DETECTORS`` (default ``ssd``; ``haar`` is the light fallback).
        tta: test-time augmentation, overriding the model folder's (``[]`` turns it off;
            ``["flip"]`` averages each face with its mirror image).
        class_prior: apply the model folder's class-prior correction (``inference.class_bias``);
            ``False`` shows the model as trained.
        margin: widen each detected face by this fraction per side (default: the model's crop rule).

    Raises:
        FerError: an invalid argument, naming it and the value received.

    Example:
        >>> from fer_keras import EmotionRecognizer
        >>> result = EmotionRecognizer().analyze("photo.jpg")  # doctest: +SKIP
        >>> [(face.label, face.box.as_list()) for face in result]  # doctest: +SKIP
        [('happy', [212, 80, 160, 160])]
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        runtime: str = "auto",
        detect: bool = True,
        detector: str = DEFAULT_DETECTOR,
        tta: Sequence[str] | None = None,
        class_prior: bool = True,
        margin: float | None = None,
    ):
        if model is not None and not isinstance(model, (str, os.PathLike)):
            raise FerError(must("model", "a model folder path or None", model))
        check_choice("runtime", runtime, RUNTIME_CHOICES)
        check_bool("detect", detect)
        check_choice("detector", detector, DETECTORS)
        if tta is not None:
            if isinstance(tta, str) or not isinstance(tta, Sequence):
                raise FerError(must("tta", "a list of names (e.g. ['flip'] or [])", tta))
            for item in tta:
                check_choice("tta", item, TTA_CHOICES)
        check_bool("class_prior", class_prior)
        if margin is not None:
            check_float("margin", margin, low=0.0)
        self.model = model
        self.runtime = runtime
        self.detect = detect
        self.detector = detector
        self.tta = None if tta is None else tuple(tta)
        self.class_prior = class_prior
        self.margin = margin
        self._predictor: Predictor | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_predictor(
        cls, predictor: Predictor, *, detect: bool = True, detector: str = DEFAULT_DETECTOR, margin: float | None = None
    ) -> EmotionRecognizer:
        """A recognizer around an already loaded :class:`Predictor` (any model, e.g. the ``fer`` peer).

        Raises:
            FerError: an invalid argument.
        """
        if not isinstance(predictor, Predictor):
            raise FerError(must("predictor", "a Predictor", type(predictor).__name__))
        recognizer = cls(predictor.info.path, detect=detect, detector=detector, margin=margin)
        recognizer.runtime = predictor.runtime
        recognizer.tta = predictor.tta
        recognizer.class_prior = predictor.class_bias == predictor.info.class_bias  # whether it applies the folder's
        recognizer._predictor = predictor
        return recognizer

    def __repr__(self) -> str:
        return (
            f"EmotionRecognizer(model={self.model!r}, runtime={self.runtime!r}, detect={self.detect}, "
            f"detector={self.detector!r}, loaded={self._predictor is not None})"
        )

    @property
    def model_dir(self) -> Path:
        """The model folder used (the default is resolved when asked, e.g. after ``FER_KERAS_MODEL`` changes)."""
        return default_model_dir() if self.model is None else Path(self.model)

    def load(self) -> EmotionRecognizer:
        """Load the model now (otherwise the first :meth:`analyze` does); safe from many threads.

        Returns:
            ``self``, so ``EmotionRecognizer().load()`` fails at once on a bad model folder.

        Raises:
            FerError: a missing or invalid model folder, or a runtime that is not installed.
        """
        if self._predictor is None:
            with self._lock:
                if self._predictor is None:
                    self._predictor = Predictor.load(
                        self.model_dir, runtime=self.runtime, tta=self.tta, class_prior=self.class_prior
                    )
        return self

    @property
    def predictor(self) -> Predictor:
        """The loaded model (loading it if needed): its ``info``, ``runtime`` and ``predict``."""
        return self.load()._predictor

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.predictor.class_names

    def analyze(self, inputs: Any, *, channels: str = "rgb") -> ImageResult | list[ImageResult]:
        """The emotion of every face in one image, or in each image of a list (one model call for all).

        Args:
            inputs: an image or a list of images. An image is a file path, the bytes of an
                image file, a PIL image (used as given) or a uint8 numpy array: ``(H, W)``
                grayscale, or ``(H, W, 3|4)`` in the ``channels`` order.
            channels: the channel order of colour arrays: ``rgb`` (PIL, imageio) or ``bgr``
                (OpenCV frames, ``cv2.imread``). Ignored for other inputs.

        Returns:
            An :class:`ImageResult` for one image; a list of them, in input order, for a list.

        Raises:
            FerError: an unreadable file or unusable input (one line naming it), or a bad model folder.

        Example:
            >>> import cv2  # doctest: +SKIP
            >>> EmotionRecognizer().analyze(cv2.imread("photo.jpg"), channels="bgr")[0].label  # doctest: +SKIP
            'happy'
        """
        check_choice("channels", channels, CHANNELS)
        batch = isinstance(inputs, (list, tuple))
        items = list(inputs) if batch else [inputs]
        images, sources = [], []
        for i, item in enumerate(items):
            path = isinstance(item, (str, os.PathLike))
            where = None if path else (f"inputs[{i}]" if batch else "image")
            images.append(as_image(item, channels, where))
            sources.append(str(item) if path else None)
        self.load()  # a bad model folder fails before any face is searched for
        results = self.classify(images, self.find_faces(images))
        out = [ImageResult(faces, img.width, img.height, src) for img, faces, src in zip(images, results, sources)]
        return out if batch else out[0]

    def find_faces(self, images: Sequence[Image.Image]) -> list[list[Face]]:
        """The regions to classify in each image (largest face first; the whole image when none).

        Several images are searched in parallel threads. No model is needed or loaded.
        """
        if len(images) < 2:
            return [self._find(img) for img in images]
        with ThreadPoolExecutor(max_workers=min(MAX_DETECT_THREADS, len(images), 2 * (os.cpu_count() or 1))) as pool:
            return list(pool.map(self._find, images))

    def classify(self, images: Sequence[Image.Image], regions: Sequence[Sequence[Face]]) -> list[list[FaceResult]]:
        """Crop every region of every image by the crop rule and classify them all in ONE model call
        (:meth:`Predictor.predict`, which hands the runtime at most ``batch_size``, 64, faces at a time)."""
        predictor = self.predictor
        rule = crop_rule(predictor, self.margin)
        crops = [crop for img, faces in zip(images, regions) for crop in crop_faces(img, list(faces), rule)]
        probs = predictor.predict_images(crops)
        names = predictor.class_names
        out: list[list[FaceResult]] = []
        row = 0
        for faces in regions:
            results = []
            for face in faces:
                p = probs[row]
                row += 1
                scores = {name: round(float(v), 6) for name, v in zip(names, p)}
                results.append(FaceResult(face.box, face.detected, names[int(p.argmax())], scores))
            out.append(results)
        return out

    def _find(self, image: Image.Image) -> list[Face]:
        return find_faces(image, detect=self.detect, detector=self.detector)


def crop_rule(predictor: Predictor, margin: float | None = None) -> CropRule:
    """The model's recorded crop rule, with ``margin`` overriding its margin when given."""
    rule = predictor.info.crop
    if margin is None:
        return rule
    check_float("margin", margin, low=0.0)
    return CropRule(margin=margin, square=rule.square, fill=rule.fill)
