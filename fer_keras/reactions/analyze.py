"""Analysing one source: a video (sample, detect, track, classify, smooth) or a photo set.

:func:`analyze_video` reads a video once, in order: frames are sampled at ``fps``, faces
are found in a small thread pool (OpenCV releases the GIL) while the next frames decode,
each face gets its viewer's track id (:mod:`~fer_keras.reactions.tracking`), and the
faces of :data:`BATCH_FRAMES` frames are cropped by the model folder's crop rule (as
fer-predict crops them) and classified in one model call. Probabilities are then smoothed
per track (:mod:`~fer_keras.reactions.smoothing`) and the strongest moments kept with a
thumbnail of the face. :func:`analyze_photos` does the same for a photo set, without
tracking or smoothing. Both return a :class:`SourceResult`: the source's entry of
``summary.json`` (:mod:`~fer_keras.reactions.summary`) and its timeline rows.
"""

from __future__ import annotations

import io
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from fer_keras.constants import ANNOTATED_SUFFIX, PEAKS_DIR
from fer_keras.inference.faces import DEFAULT_DETECTOR, DETECTORS, Box, Face, crop_faces, find_faces
from fer_keras.inference.inputs import UnreadableImage, open_image
from fer_keras.inference.predictor import Predictor
from fer_keras.reactions.annotate import AnnotatedVideo
from fer_keras.reactions.segments import Segment, segment_warnings
from fer_keras.reactions.smoothing import (
    DEFAULT_SMOOTH_METHOD,
    DEFAULT_SMOOTH_S,
    MAX_SMOOTH_S,
    SMOOTH_METHODS,
    Smoother,
)
from fer_keras.reactions.sources import PhotoSet, VideoSource, open_video, sample_frames
from fer_keras.reactions.summary import (
    Peak,
    PeakKeeper,
    distribution,
    merge_peaks,
    peaks_json,
    segment_breakdown,
)
from fer_keras.reactions.tracking import MIN_TRACK_SAMPLES, FaceTracker
from fer_keras.validation import check_choice, check_float

DEFAULT_FPS = 5.0
MAX_FPS = 60.0
# Sampled frames whose faces go to the model together; photos per batch.
BATCH_FRAMES = 16
BATCH_PHOTOS = 32
# Frames being searched for faces while the next ones decode (2 threads: this machine's cores).
DETECT_THREADS = 2
PREFETCH = 4
THUMBNAIL_SIDE = 112
# Video frames are searched for faces at this longer side (640x480 -> 320x240): faces
# smaller than about a thirteenth of the frame's longer side are missed (48 px at 640).
VIDEO_DETECT_SIDE = 320
# Warnings about individual photos beyond this many are counted, not listed.
MAX_LISTED = 20


@dataclass(frozen=True)
class Settings:
    """How sources are analysed (``summary.json`` ``settings``)."""

    fps: float = DEFAULT_FPS
    smooth: float = DEFAULT_SMOOTH_S
    smooth_method: str = DEFAULT_SMOOTH_METHOD
    detector: str = DEFAULT_DETECTOR
    segments: tuple[Segment, ...] = ()
    align: str | None = None
    annotate: bool = False

    def __post_init__(self) -> None:
        check_float("fps", self.fps, low=0.0, low_inclusive=False, high=MAX_FPS)
        check_float("smooth", self.smooth, low=0.0, high=MAX_SMOOTH_S)
        check_choice("smooth_method", self.smooth_method, SMOOTH_METHODS)
        check_choice("detector", self.detector, DETECTORS)

    def to_dict(self) -> dict[str, Any]:
        return {"fps": self.fps, "smooth": self.smooth, "smooth_method": self.smooth_method,
                "detector": self.detector, "align": self.align,
                "segments": [s.to_dict() for s in self.segments]}  # fmt: skip


@dataclass
class SourceResult:
    """One analysed source: its ``summary.json`` entry, timeline rows, and face-sample probabilities."""

    entry: dict[str, Any]
    rows: list[list[Any]]
    probs: np.ndarray
    peaks: list[Peak] = field(default_factory=list)


@dataclass
class _Sample:
    track: int
    time_s: float | None
    frame: int | str
    box: Box
    probs: np.ndarray


def _detect(image: Image.Image, detector: str) -> list[Face]:
    return [f for f in find_faces(image, detector=detector) if f.detected]


def _frame_faces(frame, detector: str):
    image = Image.fromarray(cv2.cvtColor(frame.bgr, cv2.COLOR_BGR2RGB))
    return frame, image, detect_scaled(image, detector)


def detect_scaled(image: Image.Image, detector: str, side: int = VIDEO_DETECT_SIDE) -> list[Face]:
    """The detected faces of a video frame, searched at most ``side`` pixels wide, boxes in ``image``'s pixels.

    A viewer's face fills a good part of a webcam frame, so detection at a reduced size
    finds it at a fraction of the cost (Haar's cost grows with the pixel count); the crop
    is still taken from the full-size frame, by the model's crop rule.
    """
    scale = side / max(image.size)
    if scale >= 1:
        return _detect(image, detector)
    small = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BILINEAR)
    return [Face(_scale_box(f.box, 1 / scale), True, _scale_box(f.detection or f.box, 1 / scale))
            for f in _detect(small, detector)]  # fmt: skip


def _scale_box(box: Box, factor: float) -> Box:
    return Box(
        round(box.x * factor), round(box.y * factor), max(1, round(box.w * factor)), max(1, round(box.h * factor))
    )


def _jpeg(crop: Image.Image) -> bytes:
    buffer = io.BytesIO()
    thumb = crop.convert("RGB")
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    thumb.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def analyze_video(
    predictor: Predictor,
    source: VideoSource,
    settings: Settings = Settings(),
    *,
    index: int = 1,
    out_dir: str | Path | None = None,
    progress=None,
) -> SourceResult:
    """Sample, detect, track, classify and smooth one video.

    Args:
        predictor: the loaded model.
        source: the video (see :func:`fer_keras.reactions.sources.collect_sources`).
        settings: sampling rate, smoothing, detector, segments, annotation.
        index: the source's number in the run, used in thumbnail names.
        out_dir: where ``peaks/`` thumbnails and the annotated video go (``None``: nowhere).
        progress: a tqdm-like object; ``update(n)`` per analysed frame, ``total`` grown if the video is longer.

    Raises:
        UnreadableVideo: the file is empty, not a video, or not decodable.
    """
    capture, info = open_video(source.path)
    announced = info.frame_count
    names = predictor.class_names
    rule = predictor.info.crop
    tracker = FaceTracker(settings.fps)
    smoother = Smoother(settings.smooth_method, settings.smooth)
    samples: list[_Sample] = []
    frame_times: dict[int, float] = {}
    keepers: dict[int, dict[str, PeakKeeper]] = {}
    annotated = None
    if settings.annotate and out_dir is not None:
        annotated = AnnotatedVideo(Path(out_dir) / (Path(source.name).name.rsplit(".", 1)[0] + ANNOTATED_SUFFIX),
                                   settings.fps, names)  # fmt: skip
    pending: list[tuple[Any, Image.Image, list[Face], list[int]]] = []

    def flush() -> None:
        crops_per = [crop_faces(image, faces, rule) for _, image, faces, _ in pending]
        probs = predictor.predict_images([c for crops in crops_per for c in crops])
        row = 0
        for (frame, _, faces, ids), crops in zip(pending, crops_per):
            smoothed = []
            for face, track, crop in zip(faces, ids, crops):
                value = smoother.add(track, frame.time_s, probs[row])
                row += 1
                smoothed.append(value)
                samples.append(_Sample(track, frame.time_s, frame.index, face.box, value))
                _offer(keepers.setdefault(track, {}), names, value, frame.time_s, frame.index, track, crop)
            if annotated is not None:
                annotated.write(frame.bgr, [f.box for f in faces], ids, smoothed)
        if progress is not None:
            progress.update(len(pending))
        pending.clear()

    try:
        with ThreadPoolExecutor(DETECT_THREADS) as pool:
            queue: deque = deque()
            frames = sample_frames(capture, info, settings.fps, str(source.path))
            for frame in frames:
                queue.append(pool.submit(_frame_faces, frame, settings.detector))
                while len(queue) > PREFETCH or (queue and queue[0].done()):
                    _take(queue.popleft().result(), tracker, frame_times, pending, flush)
            while queue:
                _take(queue.popleft().result(), tracker, frame_times, pending, flush)
            if pending:
                flush()
    finally:
        if annotated is not None:
            annotated.close()
    warnings = []
    if announced and info.frame_count < 0.9 * announced:
        warnings.append(f"decoding stopped after {info.frame_count} of the {announced} frames the file announces "
                        "(a truncated or damaged file?); the rest was not analysed")  # fmt: skip
    duration = info.duration_s
    return _video_result(source, settings, names, samples, frame_times, keepers, duration, index, out_dir, warnings)


def _take(found, tracker: FaceTracker, frame_times: dict, pending: list, flush) -> None:
    frame, image, faces = found
    frame_times[frame.index] = frame.time_s
    ids = tracker.update([f.box for f in faces])
    pending.append((frame, image, faces, ids))
    if len(pending) >= BATCH_FRAMES:
        flush()


def _offer(keepers: dict[str, PeakKeeper], names, value, time_s, frame, track, crop) -> None:
    for name, p in zip(names, value):
        p = float(p)
        keepers.setdefault(name, PeakKeeper()).offer(
            p, time_s, lambda p=p, n=name: Peak(p, time_s, frame, track, n, crop)
        )


def _video_result(source, settings, names, samples, frame_times, keepers, duration, index, out_dir, warnings):
    counts = Counter(s.track for s in samples)
    keep = {t for t, n in counts.items() if n >= min(MIN_TRACK_SAMPLES, len(frame_times))}
    dropped = [s for s in samples if s.track not in keep]
    if dropped:
        warnings.append(f"ignored {len(dropped)} face detection(s) in {len(counts) - len(keep)} track(s) shorter "
                        f"than {MIN_TRACK_SAMPLES} samples (detector noise or a face seen only in passing)")  # fmt: skip
    # Track ids in order of first appearance, from 1.
    renumber = {t: i for i, t in enumerate(sorted(keep, key=lambda t: min(s.time_s for s in samples if s.track == t)),
                                          start=1)}  # fmt: skip
    samples = [s for s in samples if s.track in keep]
    for s in samples:
        s.track = renumber[s.track]
    track_peaks = {renumber[t]: {n: k.peaks for n, k in per.items()} for t, per in keepers.items() if t in keep}
    for per in track_peaks.values():
        for items in per.values():
            for peak in items:
                peak.track_id = renumber.get(peak.track_id, peak.track_id)
    with_face = {s.frame for s in samples}
    faceless = sorted(i for i in frame_times if i not in with_face)
    if not samples:
        warnings.append("no face was found in any sampled frame")
    warnings += segment_warnings(settings.segments, duration)
    every = [p for per in track_peaks.values() for items in per.values() for p in items]
    _write_thumbnails(every, index, out_dir)
    tracks = []
    for track in sorted(track_peaks):
        mine = [s for s in samples if s.track == track]
        probs = np.stack([s.probs for s in mine])
        tracks.append({"track_id": track, "first_s": round(mine[0].time_s, 3), "last_s": round(mine[-1].time_s, 3),
                       "samples": len(mine)} | distribution(probs, names)
                      | {"peaks": _named_peaks(track_peaks[track], names)})  # fmt: skip
    overall_peaks = merge_peaks(track_peaks.values(), names)
    all_probs = np.stack([s.probs for s in samples]) if samples else np.zeros((0, len(names)))
    times = np.array([s.time_s for s in samples], dtype=np.float64)
    entry = {
        "name": source.name, "kind": "video", "path": str(source.path), "group": source.group,
        "duration_s": round(duration, 3), "frames_sampled": len(frame_times), "frames_without_face": len(faceless),
        "faces": len(samples), "tracks": tracks,
        "overall": distribution(all_probs, names) | {"peaks": peaks_json(overall_peaks)},
        "segments": segment_breakdown(settings.segments, times, all_probs, names),
        "warnings": warnings,
    }  # fmt: skip
    rows = [_row(source.name, "video", s, names) for s in samples]
    rows += [_empty_row(source.name, "video", frame_times[i], i, names) for i in faceless]
    rows.sort(key=lambda r: (r[3], r[4] or 0))
    return SourceResult(entry, rows, all_probs, every)


def _named_peaks(peaks: dict[str, list[Peak]], names) -> dict[str, list[dict]]:
    return peaks_json({name: peaks.get(name, []) for name in names})


def _write_thumbnails(peaks: list[Peak], index: int, out_dir: str | Path | None) -> None:
    """Name each peak's thumbnail ``peaks/s<index>-t<track>-<emotion>-<rank>.jpg`` and write it (with ``out_dir``)."""
    if out_dir is None:
        return
    folder = Path(out_dir) / PEAKS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    ranks: Counter = Counter()
    for peak in sorted(peaks, key=lambda p: -p.probability):
        key = (peak.track_id, peak.emotion)
        ranks[key] += 1
        name = f"s{index:02d}-t{peak.track_id}-{peak.emotion}-{ranks[key]}.jpg"
        (folder / name).write_bytes(_jpeg(peak.image))
        peak.thumbnail = f"{PEAKS_DIR}/{name}"


def _row(name: str, kind: str, s: _Sample, names) -> list[Any]:
    top = names[int(np.argmax(s.probs))]
    time_s = "" if s.time_s is None else round(s.time_s, 3)
    return [name, kind, time_s, s.frame, s.track, *s.box.as_list(), "yes", *(f"{v:.6f}" for v in s.probs), top]


def _empty_row(name: str, kind: str, time_s: float | None, frame: int | str, names) -> list[Any]:
    time_s = "" if time_s is None else round(time_s, 3)
    return [name, kind, time_s, frame, "", "", "", "", "", "no", *([""] * len(names)), ""]


def analyze_photos(
    predictor: Predictor,
    source: PhotoSet,
    settings: Settings = Settings(),
    *,
    index: int = 1,
    out_dir: str | Path | None = None,
    progress=None,
) -> SourceResult:
    """Classify every face of every photo of a photo set (no tracking, no smoothing).

    Photos that cannot be read are warnings in the source's entry. ``track_id`` is the
    face's number in its photo (1 = largest).

    Raises:
        FerError: not one photo of the set could be read.
    """
    from fer_keras.errors import FerError, problem

    names = predictor.class_names
    rule = predictor.info.crop
    samples: list[_Sample] = []
    faceless: list[str] = []
    unreadable: list[str] = []
    keepers: dict[str, PeakKeeper] = {}
    read = 0
    with ThreadPoolExecutor(DETECT_THREADS) as pool:
        for start in range(0, len(source.photos), BATCH_PHOTOS):
            chunk = source.photos[start : start + BATCH_PHOTOS]
            loaded = []
            for (path, name), future in zip(chunk, [pool.submit(_load_photo, p, settings.detector) for p, _ in chunk]):
                try:
                    image, faces = future.result()
                except UnreadableImage as err:
                    unreadable.append(f"{path}: {err.detail}; skipped")
                    continue
                read += 1
                loaded.append((name, image, faces))
                if not faces:
                    faceless.append(name)
            crops_per = [crop_faces(image, faces, rule) for _, image, faces in loaded]
            probs = predictor.predict_images([c for crops in crops_per for c in crops])
            row = 0
            for (name, _, faces), crops in zip(loaded, crops_per):
                for number, (face, crop) in enumerate(zip(faces, crops), start=1):
                    value = probs[row].astype(np.float64)
                    row += 1
                    samples.append(_Sample(number, None, name, face.box, value))
                    _offer(keepers, names, value, None, name, number, crop)
            if progress is not None:
                progress.update(len(chunk))
    if read == 0:
        raise FerError(problem(str(source.path), f"none of its {len(source.photos)} photo(s) could be read"))
    warnings = unreadable[:MAX_LISTED]
    if len(unreadable) > MAX_LISTED:
        warnings.append(f"... and {len(unreadable) - MAX_LISTED} more unreadable photo(s)")
    if faceless:
        warnings.append(f"no face found in {len(faceless)} of {read} photo(s)")
    peaks = {name: keepers[name].peaks if name in keepers else [] for name in names}
    all_probs = np.stack([s.probs for s in samples]) if samples else np.zeros((0, len(names)))
    every = [p for items in peaks.values() for p in items]
    _write_thumbnails(every, index, out_dir)
    entry = {
        "name": source.name, "kind": "photo", "path": str(source.path), "group": source.group,
        "duration_s": None, "frames_sampled": read, "frames_without_face": len(faceless), "faces": len(samples),
        "tracks": [], "overall": distribution(all_probs, names) | {"peaks": peaks_json(peaks)},
        "segments": [], "warnings": warnings,
    }  # fmt: skip
    rows = [_row(source.name, "photo", s, names) for s in samples]
    rows += [_empty_row(source.name, "photo", None, name, names) for name in faceless]
    return SourceResult(entry, rows, all_probs, every)


def _load_photo(path: Path, detector: str) -> tuple[Image.Image, list[Face]]:
    image = open_image(path)
    return image, _detect(image, detector)
