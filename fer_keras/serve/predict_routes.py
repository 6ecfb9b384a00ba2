"""``/api/predict`` and ``/api/predict/batch``: the emotions of the faces in uploaded images.

Both run the app's :class:`~fer_keras.inference.recognizer.EmotionRecognizer`, the path
``fer-predict`` and the Python API take. The routes are plain ``def`` functions, which
FastAPI runs in its thread pool, so decoding, face detection and inference never block
the event loop.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from PIL import Image

from fer_keras.inference.predict import model_identity
from fer_keras.inference.recognizer import EmotionRecognizer, ImageResult
from fer_keras.serve.schemas import BatchItemOut, PredictionOut
from fer_keras.serve.uploads import ERROR_RESPONSES, UploadRejected, decode_upload, recognizer_of

router = APIRouter()


def describe(recognizer: EmotionRecognizer, result: ImageResult, started: float) -> dict:
    """The JSON answer for one image (:class:`~fer_keras.serve.schemas.PredictionOut`)."""
    return {
        "faces": [face.to_dict() for face in result.faces],
        "image": {"width": result.width, "height": result.height},
        "model": model_identity(recognizer.predictor),
        "time_ms": round((time.perf_counter() - started) * 1000, 1),
    }


@router.post(
    "/api/predict",
    response_model=PredictionOut,
    responses=ERROR_RESPONSES,
    summary="Emotions of the faces in one image",
)
def predict(
    request: Request, file: Annotated[UploadFile, File(description="a jpg/png/bmp/webp/gif/tiff image")]
) -> dict:
    recognizer = recognizer_of(request)
    started = time.perf_counter()
    image = decode_upload(request, file)
    return describe(recognizer, recognizer.analyze(image), started)


@router.post(
    "/api/predict/batch",
    response_model=list[BatchItemOut],
    responses=ERROR_RESPONSES,
    summary="Emotions of the faces in several images (an unusable file gets an 'error' instead)",
)
def predict_batch(request: Request, files: Annotated[list[UploadFile], File(description="image files")]) -> list[dict]:
    recognizer = recognizer_of(request)
    started = time.perf_counter()
    out: list[dict] = []
    decoded: list[tuple[dict, Image.Image]] = []
    for upload in files:
        out.append({"file": upload.filename or "upload"})
        try:
            decoded.append((out[-1], decode_upload(request, upload)))
        except UploadRejected as err:
            out[-1]["error"] = err.message
    # One model call for the faces of every file.
    results = recognizer.analyze([image for _, image in decoded]) if decoded else []
    for (item, _), result in zip(decoded, results):
        item.update(describe(recognizer, result, started))
    return out
