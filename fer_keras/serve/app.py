"""The fer-serve FastAPI application: a page, a prediction API and a health check.

The model is loaded once, at start-up (lifespan). Endpoints are plain ``def``
functions, which FastAPI runs in its thread pool, so decoding, face detection and
inference never block the event loop; the Keras runtime serialises model calls
itself (see :class:`fer_keras.inference.predictor.Predictor`).

Untrusted uploads are checked before any expensive work: the request body size
(Content-Length and counted while reading), the file format, and the pixel count
from the image header; a body that stalls mid-upload times out (408). Every
rejection is a 4xx with ``{"error": "<one line>"}``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

import fer_keras
from fer_keras.constants import BEST_MODEL_DIR
from fer_keras.inference.predict import UnreadableImage, classify, model_identity, open_image
from fer_keras.inference.predictor import RUNTIMES, Predictor, load_model_info
from fer_keras.serve.schemas import BatchItemOut, ErrorOut, HealthOut, PredictionOut
from fer_keras.validation import check_choice, check_float, check_int

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_UPLOAD_BYTES = 10 * 2**20
DEFAULT_MAX_BATCH_FILES = 16
DEFAULT_BODY_TIMEOUT_S = 30.0
# Multipart boundaries and part headers ride on top of the file bytes.
MULTIPART_SLACK_BYTES = 64 * 2**10

# UnreadableImage.reason -> HTTP status.
STATUS_FOR_REASON = {"empty": 400, "unsupported": 415, "too_large": 413, "corrupt": 422}

log = logging.getLogger("fer_keras.serve")

_ERRORS = {
    status: {"model": ErrorOut, "description": text}
    for status, text in {
        400: "empty upload or malformed request",
        408: "the request body stalled (nothing received for the body timeout)",
        413: "upload or image too large",
        415: "not an image in a supported format",
        422: "corrupt or truncated image, or a missing field",
    }.items()
}


class BodyLimit:
    """Refuse request bodies over ``max_bytes``: up front from Content-Length, else while reading.

    Starlette's own limiter (FastAPI ``max_body_size``) answers in plain text; this
    one keeps the API's JSON error shape. A chunked upload is cut off as soon as the
    count passes the limit, so an oversized body is never buffered whole.
    """

    def __init__(self, app, max_bytes: int, limit_text: str):
        self.app = app
        self.max_bytes = max_bytes
        self.message = f"request body larger than the {limit_text} upload limit"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            return await _error(413, self.message)(scope, receive, send)
        total = 0

        async def counted_receive():
            nonlocal total
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > self.max_bytes:
                    # Raised inside the form parser; FastAPI passes HTTPException through to _http below.
                    raise HTTPException(413, self.message)
            return message

        await self.app(scope, counted_receive, send)


class BodyTimeout:
    """Answer 408 (and close the connection) when a request body stalls for ``seconds``.

    uvicorn's ``timeout_keep_alive`` only covers the idle time *between* requests: a
    client that sends headers and part of a body, then nothing, would keep its
    connection and the request's form-parsing task forever. So every ``receive`` of the
    body is bounded by ``seconds`` (an idle timeout: a slow but steady upload is fine).
    Once the body is complete, ``receive`` passes through untimed, because Starlette
    then uses it to wait for a client disconnect for as long as the response takes.
    """

    def __init__(self, app, seconds: float):
        self.app = app
        self.seconds = seconds
        self.message = f"request body stalled: nothing received for {seconds:g} s"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        body_done = False

        async def timed_receive():
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.seconds)
            except TimeoutError:
                # Raised inside the form parser like BodyLimit's 413; "close" makes uvicorn drop the
                # connection after the answer instead of waiting for the rest of a body that never comes.
                raise HTTPException(408, self.message, headers={"Connection": "close"}) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)


class UploadRejected(Exception):
    """A request the service refuses, with its HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def create_app(
    model_dir: str | os.PathLike = BEST_MODEL_DIR,
    runtime: str = "keras",
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    *,
    max_batch_files: int = DEFAULT_MAX_BATCH_FILES,
    detect: bool = True,
    margin: float | None = None,
    body_timeout: float = DEFAULT_BODY_TIMEOUT_S,
) -> FastAPI:
    """Build the fer-serve application; the model loads when the app starts (lifespan).

    The model folder's metadata is validated here, so a wrong ``model_dir`` fails at
    once with a :class:`FerError` rather than when the server starts.

    Args:
        model_dir: the model folder (``metadata.json`` + ``model.keras`` / ``model.onnx``).
        runtime: ``keras`` or ``onnx``.
        max_upload_bytes: the largest accepted upload; a request body may exceed it
            only by 64 KiB of multipart overhead (a batch shares one limit).
        max_batch_files: the most files in one ``/api/predict/batch`` request.
        detect: find faces (else each upload is classified as one face crop).
        margin: widen each detected face by this fraction per side (default: the model's crop rule).
        body_timeout: seconds a request body may stall (no bytes arriving) before the
            request is answered 408 and its connection closed.

    Example:
        >>> from fastapi.testclient import TestClient
        >>> app = create_app("models/best_model", runtime="onnx")  # doctest: +SKIP
        >>> with TestClient(app) as client:  # doctest: +SKIP
        ...     client.post("/api/predict", files={"file": open("me.jpg", "rb")}).json()["faces"][0]["label"]
        'happy'
    """
    check_choice("runtime", runtime, RUNTIMES)
    check_int("max_upload_bytes", max_upload_bytes, minimum=1)
    check_int("max_batch_files", max_batch_files, minimum=1)
    check_float("body_timeout", body_timeout, low=0.0, low_inclusive=False)
    if margin is not None:
        check_float("margin", margin, low=0.0)
    info = load_model_info(model_dir)
    limit_mb = f"{max_upload_bytes / 2**20:.3g} MB"

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Idempotent: test clients may run the lifespan once per request.
        if app.state.predictor is None:
            started = time.perf_counter()
            predictor = await run_in_threadpool(Predictor.load, info.path, runtime)
            # The first calls compile/initialise the runtime (Keras traces once for batch
            # size 1, then once more for any size): pay that now, not in a request.
            for n in (1, 2):
                await run_in_threadpool(predictor.predict, _blank(predictor, n))
            app.state.predictor = predictor
            log.info("loaded %s (%s) in %.1f s", info.name, runtime, time.perf_counter() - started)
        yield

    app = FastAPI(
        title="fer_keras facial expression recognition",
        version=fer_keras.__version__,
        description="Upload a photo; every face found gets an emotion and class probabilities.",
        lifespan=lifespan,
        form_limits={"max_files": max_batch_files, "max_fields": 8},
    )
    app.state.predictor = None
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes + MULTIPART_SLACK_BYTES, limit_text=limit_mb)
    app.add_middleware(BodyTimeout, seconds=float(body_timeout))

    def predictor_of(request: Request) -> Predictor:
        predictor = request.app.state.predictor
        if predictor is None:
            raise UploadRejected(503, "the model is not loaded yet")
        return predictor

    def read_upload(upload: UploadFile) -> bytes:
        data = upload.file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise UploadRejected(413, f"{upload.filename or 'upload'}: larger than the {limit_mb} upload limit")
        return data

    def decode(upload: UploadFile):
        data = read_upload(upload)
        try:
            return open_image(data, where=upload.filename or "upload")
        except UnreadableImage as err:
            raise UploadRejected(STATUS_FOR_REASON[err.reason], str(err)) from None

    def describe(predictor: Predictor, image, faces, started: float) -> dict:
        return {
            "faces": [face.to_dict() for face in faces],
            "image": {"width": image.width, "height": image.height},
            "model": model_identity(predictor),
            "time_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    @app.exception_handler(UploadRejected)
    async def _rejected(request: Request, exc: UploadRejected) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _summarise(exc.errors()))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__})")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/health", response_model=HealthOut, summary="Liveness and the loaded model")
    def health(request: Request) -> dict:
        predictor = predictor_of(request)
        return {
            "status": "ok",
            "model": {
                **model_identity(predictor),
                "class_names": list(predictor.class_names),
                "input_size": list(predictor.info.input_size),
                "color_mode": predictor.info.color_mode,
            },
        }

    @app.post(
        "/api/predict", response_model=PredictionOut, responses=_ERRORS, summary="Emotions of the faces in one image"
    )
    def predict(
        request: Request, file: Annotated[UploadFile, File(description="a jpg/png/bmp/webp/gif/tiff image")]
    ) -> dict:
        predictor = predictor_of(request)
        started = time.perf_counter()
        image = decode(file)
        [faces] = classify(predictor, [image], detect=detect, margin=margin)
        return describe(predictor, image, faces, started)

    @app.post(
        "/api/predict/batch",
        response_model=list[BatchItemOut],
        responses=_ERRORS,
        summary="Emotions of the faces in several images (an unusable file gets an 'error' instead)",
    )
    def predict_batch(
        request: Request, files: Annotated[list[UploadFile], File(description="image files")]
    ) -> list[dict]:
        predictor = predictor_of(request)
        started = time.perf_counter()
        out: list[dict] = []
        decoded = []
        for upload in files:
            out.append({"file": upload.filename or "upload"})
            try:
                decoded.append((out[-1], decode(upload)))
            except UploadRejected as err:
                out[-1]["error"] = err.message
        # One model call for the faces of every file.
        per_image = classify(predictor, [image for _, image in decoded], detect=detect, margin=margin)
        for (item, image), faces in zip(decoded, per_image):
            item.update(describe(predictor, image, faces, started))
        return out

    return app


def _blank(predictor: Predictor, n: int):
    import numpy as np

    return np.zeros((n, *predictor.info.input_shape), dtype=np.uint8)


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    # One line, whatever the source: clients show it verbatim.
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


def _summarise(errors) -> str:
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = f"'{'.'.join(loc)}'" if loc else "request"
        parts.append(f"{field}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
