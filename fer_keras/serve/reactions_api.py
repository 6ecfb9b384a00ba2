"""``POST /api/reactions``: the emotion timeline and summary of one uploaded video.

The upload is streamed to a temporary file (413 past the service's upload limit),
probed with OpenCV before any face is searched (an image or non-video is 415, an
undecodable codec 422, a video longer than :data:`MAX_VIDEO_SECONDS` or larger than
:data:`MAX_VIDEO_PIXELS` 413), then analysed by :mod:`fer_keras.reactions` with the
app's recognizer, the same path as ``fer-reactions``. The answer is the video's
``summary.json`` plus the per-sample ``timeline`` the page draws its chart from.

One video is analysed at a time per app: a second one meanwhile gets 503 ("try again"),
because on a small CPU two analyses at once only make both slow.
"""

from __future__ import annotations

import importlib.util
import math
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from fer_keras.constants import VIDEO_EXTENSIONS
from fer_keras.errors import FerError
from fer_keras.serve.uploads import ERROR_RESPONSES, UploadRejected, recognizer_of

router = APIRouter()

MAX_VIDEO_SECONDS = 60.0
MAX_VIDEO_PIXELS = 3840 * 2160
DEFAULT_FPS = 5.0
DEFAULT_SMOOTH_S = 1.0
# Leading bytes of the image formats a user may pick by mistake: FFmpeg would read them as one-frame "videos".
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")
_CHUNK = 2**20
# The tracker fer_keras.reactions.tracking needs (the [video] extra).
TRACKER_MODULE = "norfair"
VIDEO_EXTRA = "video"
# UnreadableVideo.reason -> HTTP status.
STATUS_FOR_VIDEO = {"empty": 400, "unreadable": 415, "undecodable": 422}
# Frames the library may analyse past the duration limit before the guard stops it (one model batch).
BATCH_SLACK = 16
_locks_guard = threading.Lock()

RESPONSES = {
    **ERROR_RESPONSES,
    413: {**ERROR_RESPONSES[413], "description": "upload too large, or video too long or too many pixels"},
    415: {**ERROR_RESPONSES[415], "description": "not a video OpenCV can read (an image, or another kind of file)"},
    422: {**ERROR_RESPONSES[422], "description": "a video whose frames cannot be decoded, or a bad field"},
    503: {**ERROR_RESPONSES[400], "description": "the model is still loading, or another video is being analysed"},
}


class TimelinePoint(BaseModel):
    time_s: float = Field(description="seconds from the start of the video")
    frame: int = Field(description="frame index in the video")
    track_id: int | str = Field(description="the face (viewer) this sample belongs to, stable across frames")
    box: list[int] = Field(description="[x, y, width, height] of the face in pixels")
    probabilities: dict[str, float] = Field(description="smoothed class probabilities")
    top_emotion: str


class ReactionsOut(BaseModel):
    """``summary.json`` of fer-reactions (format_version 1) for the one video, plus its timeline."""

    model_config = ConfigDict(extra="allow")
    format_version: int
    model: dict[str, Any]
    settings: dict[str, Any]
    sources: list[dict[str, Any]] = Field(description="one entry: the uploaded video (tracks, overall, peaks)")
    groups: list[dict[str, Any]] = Field(description="always empty: one video has no group")
    warnings: list[str]
    timeline: list[TimelinePoint] = Field(description="one point per face per sampled frame, in time order")
    time_ms: float = Field(description="server time for probing and analysing the video")


@router.post(
    "/api/reactions",
    response_model=ReactionsOut,
    responses=RESPONSES,
    summary="Emotions over time of the faces in one video (summary and timeline)",
)
def reactions(
    request: Request,
    file: Annotated[UploadFile, File(description="a video file: mp4, webm, mov, avi, ...")],
    fps: Annotated[float, Form(gt=0, le=30, description="frames analysed per second of video")] = DEFAULT_FPS,
    smooth: Annotated[float, Form(ge=0, le=10, description="smoothing window in seconds (0: none)")] = DEFAULT_SMOOTH_S,
) -> dict:
    recognizer = recognizer_of(request)
    started = time.perf_counter()
    name = Path(file.filename or "").name[:120] or "upload"
    if importlib.util.find_spec(TRACKER_MODULE) is None:
        # A server set-up problem, not the client's: say what the operator must install.
        raise UploadRejected(
            503, f"video analysis is not installed on this server: pip install 'fer_keras[{VIDEO_EXTRA}]'"
        )
    with tempfile.TemporaryDirectory(prefix="fer-reactions-") as tmp:
        path = save_upload(request, file, Path(tmp))
        probe_video(path, name)
        lock = _analysis_lock(request)
        if not lock.acquire(blocking=False):
            raise UploadRejected(503, "another video is being analysed; try again in a minute")
        try:
            summary, timeline = analyze_upload(path, name, recognizer, fps=fps, smooth=smooth)
        finally:
            lock.release()
    return {**summary, "timeline": timeline, "time_ms": round((time.perf_counter() - started) * 1000, 1)}


def save_upload(request: Request, upload: UploadFile, folder: Path) -> Path:
    """Stream the upload to ``folder`` in 1 MiB blocks (413 as soon as it passes the upload limit)."""
    limits = request.app.state.limits
    suffix = Path(upload.filename or "").suffix.lower()
    path = folder / f"upload{suffix if suffix in VIDEO_EXTENSIONS else '.bin'}"
    size = 0
    with open(path, "wb") as out:
        while block := upload.file.read(_CHUNK):
            size += len(block)
            if size > limits.max_upload_bytes:
                raise UploadRejected(413, f"{upload.filename or 'upload'}: larger than the {limits.text} upload limit")
            out.write(block)
    if size == 0:
        raise UploadRejected(400, f"{upload.filename or 'upload'}: the file is empty")
    return path


def probe_video(path: Path, name: str) -> None:
    """Refuse what is not a decodable video within the limits, before any face is searched."""
    import cv2

    from fer_keras.reactions.sources import UnreadableVideo, open_video

    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        raise UploadRejected(415, f"{name}: this is an image, not a video; send photos to /api/predict")
    try:
        capture, info = open_video(path)
    except UnreadableVideo as err:
        raise UploadRejected(STATUS_FOR_VIDEO.get(err.reason, 422), f"{name}: {err.detail}") from None
    try:
        ok, frame = capture.read()
        if not ok or frame is None:
            raise UploadRejected(422, f"{name}: no frame could be decoded (unsupported codec or damaged file)")
        height, width = frame.shape[:2]
        if width * height > MAX_VIDEO_PIXELS:
            raise UploadRejected(413, f"{name}: {width}x{height} frames; the limit is {MAX_VIDEO_PIXELS:,} pixels")
        duration = info.duration_s if info.frame_count > 0 and info.fps > 0 else _skim(capture)
    except cv2.error as err:
        raise UploadRejected(422, f"{name}: OpenCV cannot decode it ({str(err).strip().splitlines()[-1]})") from None
    finally:
        capture.release()
    if duration > MAX_VIDEO_SECONDS:
        raise UploadRejected(413, _too_long(name, f"lasts {duration:.1f} s"))


def _skim(capture) -> float:
    """Seconds of a video whose container gives no frame count (browser webm recordings): grab, don't decode."""
    import cv2

    seconds = 0.0
    while capture.grab():
        seconds = max(seconds, capture.get(cv2.CAP_PROP_POS_MSEC) / 1000)
        if seconds > MAX_VIDEO_SECONDS:
            break
    return seconds


def _too_long(name: str, what: str) -> str:
    return f"{name}: the video {what}; the limit is {MAX_VIDEO_SECONDS:g} s (cut it shorter)"


class _FrameBudget:
    """The library's progress hook, used as a guard: stop a video that runs past the limit its header hid."""

    def __init__(self, name: str, fps: float):
        self.name = name
        self.total = None  # the library may set it; tqdm-like
        self.done = 0
        self.limit = math.ceil(MAX_VIDEO_SECONDS * fps) + BATCH_SLACK

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.done > self.limit:
            raise UploadRejected(413, _too_long(self.name, f"has more than {self.limit} frames at the sampling rate"))


def analyze_upload(path: Path, name: str, recognizer, *, fps: float, smooth: float) -> tuple[dict, list[dict]]:
    """Run the reactions library on the saved video, as fer-reactions does: ``(summary, timeline points)``.

    A :class:`FerError` (e.g. no frame could be decoded) becomes 422 with its message.
    """
    import cv2

    from fer_keras.reactions.analyze import Settings, analyze_video
    from fer_keras.reactions.run import build_summary
    from fer_keras.reactions.sources import VideoSource
    from fer_keras.reactions.summary import timeline_columns

    predictor = recognizer.predictor
    try:
        settings = Settings(fps=fps, smooth=smooth, detector=recognizer.detector)
        # out_dir=None: no thumbnail files (the answer has no place for them; peaks keep their times).
        result = analyze_video(predictor, VideoSource(path, name), settings, out_dir=None,
                               progress=_FrameBudget(name, fps))  # fmt: skip
    except FerError as err:
        raise UploadRejected(422, " ".join(str(err).replace(os.fspath(path), name).split())) from None
    except cv2.error as err:  # a decoder failing mid-video: the file's fault, not the server's
        raise UploadRejected(422, f"{name}: OpenCV cannot decode it ({str(err).strip().splitlines()[-1]})") from None
    result.entry["path"] = name  # not the server's temporary file
    summary = build_summary([result], predictor, settings)
    columns = timeline_columns(predictor.class_names)
    points = [_point(dict(zip(columns, row)), predictor.class_names) for row in result.rows]
    return summary, [p for p in points if p is not None]


def _point(row: dict, class_names) -> dict | None:
    """One timeline.csv row as the API's point; None for a frame without a face."""
    if row["detected"] != "yes":
        return None
    return {
        "time_s": float(row["time_s"]),
        "frame": int(row["frame"]),
        "track_id": row["track_id"],
        "box": [int(row[k]) for k in ("x", "y", "w", "h")],
        "probabilities": {name: float(row[name]) for name in class_names},
        "top_emotion": row["top_emotion"],
    }


def _analysis_lock(request: Request) -> threading.Lock:
    # Per app, not per process: tests run several apps side by side.
    state = request.app.state
    with _locks_guard:
        if getattr(state, "reactions_lock", None) is None:
            state.reactions_lock = threading.Lock()
        return state.reactions_lock
