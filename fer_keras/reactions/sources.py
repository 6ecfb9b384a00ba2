"""What fer-reactions reads: videos sampled at a fixed rate, and photo sets grouped by sub-folder.

Command-line inputs become *sources* (:func:`collect_sources`): each video file is one
source; the photos of a folder are one *photo set*, and a folder with sub-folders (one per
ad, say) gives one photo set per sub-folder, its ``group``. Videos found inside a folder
get the same ``group`` rule, so a campaign folder of ``<ad>/<viewer>.mp4`` compares ads.

Videos are decoded with OpenCV's bundled FFmpeg and sampled at ``fps`` frames per second
of video time (:func:`sample_frames`): frames between samples are only grabbed, not
converted, which is most of the cost of a 30 fps video sampled at 5. A file that is
empty, not a video, or in a codec OpenCV cannot decode is an :class:`UnreadableVideo`
naming the file and the reason.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# FFmpeg's own log lines ("moov atom not found") would interleave with the progress bar;
# every failure is reported as one error line instead. Read when OpenCV loads FFmpeg.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
import cv2  # noqa: E402 - after the variable above

from fer_keras.constants import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from fer_keras.errors import FerError, problem
from fer_keras.validation import check_float

# OpenCV reports 0, NaN or absurd values for the frame rate of some containers.
MAX_VIDEO_FPS = 1000.0
FALLBACK_FPS = 25.0


class UnreadableVideo(FerError):
    """A video file that cannot be analysed; ``reason`` is ``empty``, ``unreadable`` or ``undecodable``."""

    def __init__(self, where: str, reason: str, message: str):
        self.reason = reason
        self.detail = message
        super().__init__(problem(where, message))


@dataclass(frozen=True)
class VideoSource:
    """One video file to analyse."""

    path: Path
    name: str
    group: str | None = None
    kind: str = "video"


@dataclass(frozen=True)
class PhotoSet:
    """The photos of one folder (or sub-folder): ``photos`` are ``(file, name relative to the set)``."""

    path: Path
    name: str
    group: str | None = None
    photos: tuple[tuple[Path, str], ...] = field(default_factory=tuple)
    kind: str = "photo"


Source = VideoSource | PhotoSet


@dataclass(frozen=True)
class Frame:
    """A sampled video frame: its index in the video, its time, and its pixels (BGR, as OpenCV gives them)."""

    index: int
    time_s: float
    bgr: np.ndarray


@dataclass
class VideoInfo:
    """What the container says about a video; ``frame_count`` and ``duration_s`` are estimates until read."""

    fps: float
    frame_count: int
    width: int
    height: int
    fourcc: str

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0

    def expected_samples(self, fps: float) -> int:
        return max(1, math.ceil(self.duration_s * fps)) if self.frame_count > 0 else 0


def is_video_file(name: str | os.PathLike) -> bool:
    return os.fspath(name).lower().endswith(VIDEO_EXTENSIONS)


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def collect_sources(paths: Iterable[str | os.PathLike]) -> tuple[list[Source], list[str]]:
    """Turn command-line paths into sources, and a warning per path that gave none.

    A video file is one source (any file that is not an image is tried as a video: OpenCV
    decides). Image files given directly form one photo set named ``photos``. A folder is
    searched recursively (hidden entries skipped): each video is a source, and its images
    are photo sets, one per first-level sub-folder (that sub-folder's name is the
    ``group``), plus one for the images directly in it. Names are unique within a run.

    Example:
        >>> sources, warnings = collect_sources(["ads/"])  # doctest: +SKIP
        >>> [(s.kind, s.name, s.group) for s in sources]  # doctest: +SKIP
        [('photo', 'ads/ad_a', 'ad_a'), ('photo', 'ads/ad_b', 'ad_b')]
    """
    sources: list[Source] = []
    warnings: list[str] = []
    loose: list[tuple[Path, str]] = []
    used: set[str] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = _folder_sources(path, used)
            if not found:
                warnings.append(problem(str(path), "no images or videos in this folder; skipped"))
            sources.extend(found)
        elif path.is_file():
            if _is_image(path.name):
                loose.append((path, path.name))
            else:
                sources.append(VideoSource(path, _unique(path.name, used)))
        else:
            warnings.append(problem(str(path), "not found; skipped"))
    if loose:
        parent = Path(os.path.commonpath([str(p.parent.resolve()) for p, _ in loose]))
        sources.append(PhotoSet(parent, _unique("photos", used), None, tuple(loose)))
    return sources, warnings


def _folder_sources(root: Path, used: set[str]) -> list[Source]:
    label = root.resolve().name or str(root)
    videos: list[Source] = []
    photos: dict[str | None, list[tuple[Path, str]]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel_folder = Path(folder).relative_to(root)
        group = rel_folder.parts[0] if rel_folder.parts else None
        for name in sorted(f for f in files if not f.startswith(".")):
            file = Path(folder) / name
            rel = file.relative_to(root)
            if is_video_file(name):
                videos.append(VideoSource(file, _unique(f"{label}/{rel.as_posix()}", used), group))
            elif _is_image(name):
                base = root / group if group else root
                photos.setdefault(group, []).append((file, file.relative_to(base).as_posix()))
    sets: list[Source] = []
    for group, files in photos.items():
        name = f"{label}/{group}" if group else label
        sets.append(PhotoSet(root / group if group else root, _unique(name, used), group, tuple(files)))
    return sets + videos


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name} ({n})"
    used.add(candidate)
    return candidate


def open_video(path: str | os.PathLike) -> tuple[cv2.VideoCapture, VideoInfo]:
    """Open ``path`` with OpenCV's FFmpeg backend and read what its container says.

    Raises:
        UnreadableVideo: the file is missing or empty, or OpenCV cannot open it as a video.
    """
    where = os.fspath(path)
    if not os.path.isfile(where):
        raise UnreadableVideo(where, "unreadable", "file not found")
    if os.path.getsize(where) == 0:
        raise UnreadableVideo(where, "empty", "empty file (0 bytes)")
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        capture = cv2.VideoCapture(where, cv2.CAP_FFMPEG)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not capture.isOpened():
        capture.release()
        raise UnreadableVideo(
            where,
            "unreadable",
            "cannot open it as a video (not a video, a damaged file, or a container or codec OpenCV's FFmpeg cannot "
            "decode)",
        )
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if math.isfinite(fps) and 0 < fps <= MAX_VIDEO_FPS else 0.0
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    count = int(count) if math.isfinite(count) and count > 0 else 0
    code = int(capture.get(cv2.CAP_PROP_FOURCC)) if math.isfinite(capture.get(cv2.CAP_PROP_FOURCC)) else 0
    fourcc = "".join(chr((code >> 8 * i) & 0xFF) for i in range(4)).strip("\0 ") if code > 0 else "unknown"
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    return capture, VideoInfo(fps, count, width, height, fourcc if fourcc.isprintable() else "unknown")


def sample_frames(capture: cv2.VideoCapture, info: VideoInfo, fps: float, where: str) -> Iterator[Frame]:
    """The frames of an opened video at ``fps`` samples per second of video time, in order.

    A frame is taken at each multiple of ``1/fps`` seconds (the first frame at or after
    it); when the video's own rate is lower, every frame is taken. When the container
    gives no frame rate the decoder's timestamps are used. ``info.frame_count`` is set to
    the frames actually read once the video is exhausted.

    Raises:
        UnreadableVideo: not a single frame could be decoded (a zero-length video, or a
            codec OpenCV's FFmpeg cannot decode).
    """
    check_float("fps", fps, low=0.0, low_inclusive=False, high=MAX_VIDEO_FPS)
    step = 1.0 / fps
    next_t = 0.0
    index = -1
    try:
        while capture.grab():
            index += 1
            if info.fps > 0:
                time_s = index / info.fps
            else:
                time_s = max(0.0, capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
            if time_s + 1e-6 < next_t:
                continue
            ok, bgr = capture.retrieve()
            if not ok or bgr is None:
                continue
            while next_t <= time_s + 1e-6:
                next_t += step
            yield Frame(index, time_s, bgr)
    finally:
        capture.release()
    if index < 0:
        raise UnreadableVideo(
            where,
            "undecodable",
            f"no frame could be decoded (a zero-length video, or codec {info.fourcc!r} that OpenCV's FFmpeg "
            "cannot decode)",
        )
    if info.fps <= 0:
        info.fps = (index + 1) / time_s if time_s > 0 else FALLBACK_FPS
    info.frame_count = index + 1
