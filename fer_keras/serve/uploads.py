"""What every route of the web service shares: the loaded recognizer, upload reading and errors.

Routes live in modules of this package as FastAPI ``APIRouter`` objects (``/api/predict``
in :mod:`fer_keras.serve.predict_routes`) and are registered in
:func:`fer_keras.serve.app.create_app` with one ``app.include_router`` line each. They reach
the model and the service's limits through the request (:func:`recognizer_of`,
:func:`decode_upload`), never through globals, so several apps can live in one process.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, UploadFile
from PIL import Image

from fer_keras.inference.inputs import UnreadableImage, open_image
from fer_keras.inference.recognizer import EmotionRecognizer
from fer_keras.serve.schemas import ErrorOut

# UnreadableImage.reason -> HTTP status.
STATUS_FOR_REASON = {"empty": 400, "unsupported": 415, "too_large": 413, "corrupt": 422}

# The 4xx answers of an upload route, for the OpenAPI document (``responses=ERROR_RESPONSES``).
ERROR_RESPONSES = {
    status: {"model": ErrorOut, "description": text}
    for status, text in {
        400: "empty upload or malformed request",
        408: "the request body stalled (nothing received for the body timeout)",
        413: "upload or image too large",
        415: "not an image in a supported format",
        422: "corrupt or truncated image, or a missing field",
    }.items()
}


class UploadRejected(Exception):
    """A request the service refuses, with its HTTP status (answered as ``{"error": message}``)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """The service's limits, kept in ``app.state.limits``."""

    max_upload_bytes: int
    max_batch_files: int

    @property
    def text(self) -> str:
        """The upload limit as people read it, e.g. ``10 MB``."""
        return f"{self.max_upload_bytes / 2**20:.3g} MB"


def recognizer_of(request: Request) -> EmotionRecognizer:
    """The app's recognizer once its model is loaded (503 while the app is still starting)."""
    if not request.app.state.ready:
        raise UploadRejected(503, "the model is not loaded yet")
    return request.app.state.recognizer


def read_upload(request: Request, upload: UploadFile) -> bytes:
    """The bytes of one uploaded file (413 past the upload limit, read no further)."""
    limits: Limits = request.app.state.limits
    data = upload.file.read(limits.max_upload_bytes + 1)
    if len(data) > limits.max_upload_bytes:
        raise UploadRejected(413, f"{upload.filename or 'upload'}: larger than the {limits.text} upload limit")
    return data


def decode_upload(request: Request, upload: UploadFile) -> Image.Image:
    """One uploaded image, decoded (4xx with one line for anything that is not a usable image)."""
    data = read_upload(request, upload)
    try:
        return open_image(data, where=upload.filename or "upload")
    except UnreadableImage as err:
        raise UploadRejected(STATUS_FOR_REASON[err.reason], str(err)) from None
