"""The fer-serve FastAPI application: a page, a prediction API and a health check.

The model is loaded once, at start-up (lifespan), into the app's
:class:`~fer_keras.inference.recognizer.EmotionRecognizer` (``app.state.recognizer``),
the inference path of ``fer-predict`` and the Python API. Routes are plain ``def``
functions, which FastAPI runs in its thread pool, so decoding, face detection and
inference never block the event loop; the Keras runtime serialises model calls itself
(see :class:`fer_keras.inference.predictor.Predictor`).

Untrusted uploads are checked before any expensive work: the request body size
(Content-Length and counted while reading), the file format, and the pixel count
from the image header; a body that stalls mid-upload times out (408). Every
rejection is a 4xx with ``{"error": "<one line>"}``.

Adding routes: write them as an ``APIRouter`` in a module of this package, using the
helpers of :mod:`fer_keras.serve.uploads`, and register it in :func:`create_app` with one
``app.include_router(...)`` line beside the others.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

import fer_keras
from fer_keras.inference.predict import model_identity
from fer_keras.inference.predictor import RUNTIME_CHOICES, load_model_info
from fer_keras.inference.recognizer import DEFAULT_DETECTOR, EmotionRecognizer
from fer_keras.serve import predict_routes, reactions_api
from fer_keras.serve.schemas import HealthOut
from fer_keras.serve.uploads import STATUS_FOR_REASON, Limits, UploadRejected, recognizer_of
from fer_keras.validation import check_choice, check_float, check_int

__all__ = ["STATIC_DIR", "STATUS_FOR_REASON", "UploadRejected", "create_app"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_UPLOAD_BYTES = 10 * 2**20
DEFAULT_MAX_BATCH_FILES = 16
DEFAULT_BODY_TIMEOUT_S = 30.0
# Multipart boundaries and part headers ride on top of the file bytes.
MULTIPART_SLACK_BYTES = 64 * 2**10

log = logging.getLogger("fer_keras.serve")


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


def create_app(
    model_dir: str | os.PathLike | None = None,
    runtime: str = "auto",
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    *,
    max_batch_files: int = DEFAULT_MAX_BATCH_FILES,
    detect: bool = True,
    detector: str = DEFAULT_DETECTOR,
    margin: float | None = None,
    body_timeout: float = DEFAULT_BODY_TIMEOUT_S,
) -> FastAPI:
    """Build the fer-serve application; the model loads when the app starts (lifespan).

    The model folder's metadata is validated here, so a wrong ``model_dir`` fails at
    once with a :class:`FerError` rather than when the server starts.

    Args:
        model_dir: the model folder (default: the shipped model, or ``$FER_KERAS_MODEL``).
        runtime: ``auto`` (onnx when the folder has ``model.onnx`` and onnxruntime is installed), ``keras`` or ``onnx``.
        max_upload_bytes: the largest accepted upload; a request body may exceed it
            only by 64 KiB of multipart overhead (a batch shares one limit).
        max_batch_files: the most files in one ``/api/predict/batch`` request.
        detect: find faces (else each upload is classified as one face crop).
        detector: the face detector (one of ``DETECTORS``).
        margin: widen each detected face by this fraction per side (default: the model's crop rule).
        body_timeout: seconds a request body may stall (no bytes arriving) before the
            request is answered 408 and its connection closed.

    Example:
        >>> from fastapi.testclient import TestClient
        >>> app = create_app(runtime="onnx")  # doctest: +SKIP
        >>> with TestClient(app) as client:  # doctest: +SKIP
        ...     client.post("/api/predict", files={"file": open("me.jpg", "rb")}).json()["faces"][0]["label"]
        'happy'
    """
    check_choice("runtime", runtime, RUNTIME_CHOICES)
    check_int("max_upload_bytes", max_upload_bytes, minimum=1)
    check_int("max_batch_files", max_batch_files, minimum=1)
    check_float("body_timeout", body_timeout, low=0.0, low_inclusive=False)
    recognizer = EmotionRecognizer(model_dir, runtime=runtime, detect=detect, detector=detector, margin=margin)
    info = load_model_info(recognizer.model_dir)
    limits = Limits(max_upload_bytes, max_batch_files)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Idempotent: test clients may run the lifespan once per request.
        if not app.state.ready:
            started = time.perf_counter()
            predictor = (await run_in_threadpool(recognizer.load)).predictor
            # The first calls compile/initialise the runtime (Keras traces once for batch
            # size 1, then once more for any size): pay that now, not in a request.
            for n in (1, 2):
                await run_in_threadpool(predictor.predict, _blank(predictor, n))
            app.state.ready = True
            log.info("loaded %s (%s) in %.1f s", info.name, predictor.runtime, time.perf_counter() - started)
        yield

    app = FastAPI(
        title="fer_keras facial expression recognition",
        version=fer_keras.__version__,
        description="Upload a photo; every face found gets an emotion and class probabilities.",
        lifespan=lifespan,
        form_limits={"max_files": max_batch_files, "max_fields": 8},
    )
    app.state.recognizer = recognizer
    app.state.limits = limits
    app.state.ready = False
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes + MULTIPART_SLACK_BYTES, limit_text=limits.text)
    app.add_middleware(BodyTimeout, seconds=float(body_timeout))

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
        predictor = recognizer_of(request).predictor
        return {
            "status": "ok",
            "model": {
                **model_identity(predictor),
                "class_names": list(predictor.class_names),
                "input_size": list(predictor.info.input_size),
                "color_mode": predictor.info.color_mode,
            },
        }

    # Route modules, one line each (see the module docstring).
    app.include_router(predict_routes.router)
    app.include_router(reactions_api.router)
    return app


def _blank(predictor, n: int):
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
