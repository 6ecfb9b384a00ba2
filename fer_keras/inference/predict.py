"""Face-aware prediction over image files: decode, classify, report (``fer-predict``).

The faces are found, cropped and classified by
:class:`~fer_keras.inference.recognizer.EmotionRecognizer`, the one inference path
(``fer-serve`` and the Python API use it too); this module adds what files need:
expanding folders, decoding many files in threads, skipping unreadable ones, CSV/JSON
reports and annotated copies.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from fer_keras.atomic import atomic_path
from fer_keras.data.folders import is_image_file
from fer_keras.inference.detectors import DEFAULT_DETECTOR
from fer_keras.inference.inputs import UnreadableImage, open_image
from fer_keras.inference.predictor import Predictor
from fer_keras.inference.recognizer import EmotionRecognizer, FaceResult, ImageResult, crop_rule
from fer_keras.validation import check_int

__all__ = [
    "PALETTE",
    "annotate",
    "classify",
    "collect_files",
    "crop_rule",
    "csv_columns",
    "csv_rows",
    "model_identity",
    "predict_files",
    "save_annotated",
    "to_csv",
    "to_json",
]

# Box colours per class, shared with the web page (serve/static/app.js).
PALETTE: dict[str, str] = {
    "angry": "#d62728",
    "disgust": "#8c564b",
    "fear": "#9467bd",
    "happy": "#2ca02c",
    "neutral": "#7f7f7f",
    "sad": "#1f77b4",
    "surprise": "#ff7f0e",
}
_OTHER_COLOUR = "#e377c2"


def classify(
    predictor: Predictor,
    images: Sequence[Image.Image],
    *,
    detect: bool = True,
    margin: float | None = None,
    detector: str = DEFAULT_DETECTOR,
) -> list[list[FaceResult]]:
    """Find and classify the faces of each image with ``predictor``; one model call for all of them.

    A shorthand for :meth:`EmotionRecognizer.classify` around a loaded predictor.

    Example:
        >>> [faces] = classify(predictor, [open_image("photo.jpg")])  # doctest: +SKIP
        >>> faces[0].label  # doctest: +SKIP
        'happy'
    """
    recognizer = EmotionRecognizer.from_predictor(predictor, detect=detect, detector=detector, margin=margin)
    return recognizer.classify(images, recognizer.find_faces(images))


def collect_files(paths: Iterable[str | os.PathLike]) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
    """Expand files and folders (recursively, image extensions only) to ``(path, name)`` pairs.

    ``name`` is the file's path relative to the folder argument it was found in (or its
    bare name), used to name annotated copies. Missing paths come back as ``(path, reason)``.
    """
    found: list[tuple[Path, str]] = []
    missing: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if is_image_file(name):
                        file = Path(root) / name
                        found.append((file, file.relative_to(path).as_posix()))
        elif path.is_file():
            found.append((path, path.name))
        else:
            missing.append((str(path), "not found"))
    return found, missing


def predict_files(
    recognizer: EmotionRecognizer | Predictor,
    files: Sequence[tuple[Path, str]],
    *,
    batch_size: int = 32,
    annotate_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress=None,
) -> tuple[list[ImageResult], list[tuple[str, str]]]:
    """Classify every face of every file, ``batch_size`` files at a time.

    Files are decoded in a thread pool (PIL releases the GIL); each batch then goes
    through :meth:`EmotionRecognizer.analyze`: faces found in parallel, one model call.

    Args:
        recognizer: the recognizer (its model, detector and crop settings); a bare
            :class:`Predictor` is wrapped with the default settings.
        files: ``(path, name)`` pairs from :func:`collect_files`.
        batch_size: files per batch.
        annotate_dir: when given, write a copy of each image with boxes and labels here.
        workers: decoding threads (default: 2 per CPU, at most 8).
        progress: an optional tqdm-like object; ``update(n)`` is called per batch.

    Returns:
        ``(results, failures)``: one :class:`ImageResult` per readable file (``source`` is
        its path), in input order, and ``(file, reason)`` for each file that could not be read.

    Example:
        >>> files, _ = collect_files(["photos/"])  # doctest: +SKIP
        >>> results, failures = predict_files(EmotionRecognizer(), files)  # doctest: +SKIP
    """
    check_int("batch_size", batch_size, minimum=1)
    if isinstance(recognizer, Predictor):
        recognizer = EmotionRecognizer.from_predictor(recognizer)
    results: list[ImageResult] = []
    failures: list[tuple[str, str]] = []
    used_names: set[str] = set()
    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2) * 2)) as pool:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            futures = [pool.submit(open_image, path) for path, _ in chunk]
            images, kept = [], []
            for (path, name), future in zip(chunk, futures):
                try:
                    images.append(future.result())
                    kept.append((path, name))
                except UnreadableImage as err:
                    failures.append((str(path), err.detail))
                except Exception as err:  # noqa: BLE001 - one bad file never stops a batch
                    failures.append((str(path), f"{type(err).__name__}: {err}"))
            for (path, name), img, result in zip(kept, images, recognizer.analyze(images) if images else []):
                results.append(ImageResult(result.faces, result.width, result.height, str(path)))
                if annotate_dir is not None:
                    save_annotated(annotate(img, result.faces), Path(annotate_dir) / _unique(name, used_names))
            if progress is not None:
                progress.update(len(chunk))
    return results, failures


def _unique(name: str, used: set[str]) -> str:
    stem, dot, ext = name.rpartition(".")
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}_{n}.{ext}" if dot else f"{name}_{n}"
    used.add(candidate)
    return candidate


def annotate(image: Image.Image, faces: Sequence[FaceResult]) -> Image.Image:
    """An RGB copy of ``image`` with each face boxed and labelled ``<n> <label> <p>``."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    width, height = out.size
    line = max(2, round(min(width, height) / 150))
    font = ImageFont.load_default(size=max(12, round(min(width, height) / 25)))
    for i, face in enumerate(faces, start=1):
        colour = PALETTE.get(face.label, _OTHER_COLOUR)
        b = face.box
        draw.rectangle([b.x, b.y, b.x + b.w - 1, b.y + b.h - 1], outline=colour, width=line)
        text = f"{i} {face.label} {face.probabilities[face.label]:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left + 2 * line, bottom - top + 2 * line
        # Label above the box when it fits, else inside its top edge.
        ty = b.y - th if b.y - th >= 0 else b.y
        tx = min(b.x, max(0, width - tw))
        draw.rectangle([tx, ty, tx + tw, ty + th], fill=colour)
        draw.text((tx + line - left, ty + line - top), text, fill="white", font=font)
    return out


def save_annotated(image: Image.Image, path: Path) -> None:
    """Save atomically, keeping the input's format (GIF/TIFF/BMP/WEBP as given)."""
    with atomic_path(path, suffix=path.suffix or ".png") as tmp:
        image.save(tmp, **({"quality": 92} if path.suffix.lower() in (".jpg", ".jpeg") else {}))


def csv_columns(class_names: Sequence[str]) -> list[str]:
    return ["file", "face", "x", "y", "w", "h", "detected", "emotion", *class_names]


def csv_rows(results: Iterable[ImageResult], class_names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per face: file, face index (1-based), box, detected yes/no, top emotion, probabilities."""
    rows = []
    for result in results:
        for i, face in enumerate(result.faces, start=1):
            row = {"file": result.source, "face": i, **dict(zip("xywh", face.box.as_list()))}
            row |= {"detected": "yes" if face.detected else "no", "emotion": face.label}
            row |= {name: f"{face.probabilities[name]:.6f}" for name in class_names}
            rows.append(row)
    return rows


def to_csv(results: Iterable[ImageResult], class_names: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=csv_columns(class_names), lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(results, class_names))
    return buffer.getvalue()


def to_json(
    results: Iterable[ImageResult], predictor: Predictor, failures: Iterable[tuple[str, str]] = ()
) -> dict[str, Any]:
    """The JSON report: model identity, per-file faces, and the skipped files."""
    return {
        "model": model_identity(predictor),
        "files": [{"file": r.source, "faces": [f.to_dict() for f in r.faces]} for r in results],
        "skipped": [{"file": file, "error": reason} for file, reason in failures],
    }


def model_identity(predictor: Predictor) -> dict[str, str]:
    return {"name": predictor.info.name, "version": predictor.info.version, "runtime": predictor.runtime}
