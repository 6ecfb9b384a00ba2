"""The crop rule: how a detected face becomes a model input, as recorded in a model folder.

A model is only as good as the match between its training crops and what inference
feeds it. FER2013's faces are tight crops; on 1,500 of its train faces (upscaled and
edge-padded, as inference pads) OpenCV's Haar box is centred on the crop and 0.98 of
its side (``benchmarks/bench_crop.py``), so the rule for models trained on it is a
square around the Haar box with a margin of 1% per side, completed by repeating edge pixels
where it leaves the photo. Each exported ``metadata.json`` records its rule under
``crop``; :mod:`fer_keras.inference.faces` applies it. It lives in the model stage, beside
:mod:`fer_keras.model.model_folder`, because it is part of a model folder's metadata. No
OpenCV here, so reading a model folder stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

from fer_keras.errors import FerError, problem
from fer_keras.validation import check_float, must

CASCADE_FILE = "haarcascade_frontalface_default.xml"
# Margin per side of the measured FER2013 framing (see the module docstring).
DEFAULT_MARGIN = 0.01
# The rule of model folders exported before crop rules were recorded.
LEGACY_MARGIN = 0.2
CROP_FILLS = ("edge", "clip")


@dataclass(frozen=True)
class CropRule:
    """How a detected face becomes a model input; stored as ``crop`` in ``metadata.json``.

    Attributes:
        margin: widening of the detection box per side, as a fraction of its size.
        square: crop a square of the box's larger side, centred on the box.
        fill: ``edge`` repeats the border pixels where the crop leaves the photo;
            ``clip`` cuts the crop at the photo's edge instead.
    """

    margin: float = DEFAULT_MARGIN
    square: bool = True
    fill: str = "edge"

    def __post_init__(self) -> None:
        check_float("margin", self.margin, low=0.0, high=2.0, where="crop")
        if not isinstance(self.square, bool):
            raise FerError(f"crop: 'square' must be true or false; got {self.square!r}")
        if self.fill not in CROP_FILLS:
            raise FerError(f"crop: 'fill' must be one of {', '.join(CROP_FILLS)}; got {self.fill!r}")

    def to_dict(self) -> dict:
        return {
            "detector": f"opencv-haar {CASCADE_FILE}",
            "margin": self.margin,
            "square": self.square,
            "fill": self.fill,
        }

    @classmethod
    def from_metadata(cls, value: dict | None, where: str = "") -> CropRule:
        """The rule a model folder records; folders without one get the legacy rule.

        Raises:
            FerError: ``value`` is not an object or holds an invalid field (prefixed with ``where``).
        """
        if value is None:
            return cls(margin=LEGACY_MARGIN, square=False, fill="clip")
        if not isinstance(value, dict):
            raise FerError(problem(where, must("crop", "an object", value)))
        try:
            return cls(
                margin=value.get("margin", DEFAULT_MARGIN),
                square=value.get("square", True),
                fill=value.get("fill", "edge"),
            )
        except FerError as err:
            raise FerError(problem(where, p) for p in err.problems) from None
