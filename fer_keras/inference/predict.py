"""Face-aware prediction over images: decode, find faces, classify, report.

Used by ``fer-predict`` (files and folders, CSV/JSON, annotated copies) and by
``fer-serve`` (uploaded bytes). Every face of an image becomes one
:class:`FaceResult`; an image without a detectable face is classified whole and
marked ``detected=False``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from fer_keras.atomic import atomic_path
from fer_keras.data.folders import is_image_file
from fer_keras.errors import FerError, problem
from fer_keras.inference.faces import Box, Face, crop_faces, find_faces
from fer_keras.inference.predictor import Predictor
from fer_keras.model.crop import CropRule
from fer_keras.validation import check_float, check_int

# The formats of constants.IMAGE_EXTENSIONS. PIL can open more (EPS shells out to
# Ghostscript, PSD, ICO...): untrusted uploads must not reach those decoders.
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "WEBP", "GIF", "TIFF")

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


class UnreadableImage(FerError):
    """An input that is not a usable image. ``reason`` is one of
    ``empty``, ``unsupported``, ``too_large``, ``corrupt`` (the server maps it to a status)."""

    def __init__(self, where: str, reason: str, message: str):
        self.reason = reason
        self.detail = message
        super().__init__(problem(where, message))


@dataclass(frozen=True)
class FaceResult:
    """The classification of one face (or of a whole image without a detected face)."""

    box: Box
    detected: bool
    label: str
    probabilities: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": self.box.as_list(),
            "detected": self.detected,
            "label": self.label,
            "probabilities": self.probabilities,
        }


@dataclass(frozen=True)
class FileResult:
    """All faces of one input file, largest first."""

    file: str
    faces: list[FaceResult]


def open_image(
    source: str | os.PathLike | bytes, *, where: str | None = None, max_pixels: int | None = None
) -> Image.Image:
    """Decode a file path or raw bytes to a fully loaded PIL image (EXIF orientation applied).

    The pixel count is checked from the header before anything is decoded, so a
    small file that claims a huge image (a decompression bomb) costs nothing.

    Args:
        source: a path, or the bytes of an upload.
        where: the name to use in error messages (default: the path, or ``upload``).
        max_pixels: the largest accepted width x height (default ``PIL.Image.MAX_IMAGE_PIXELS``,
            set in :mod:`fer_keras.data.images`).

    Raises:
        UnreadableImage: empty, not an accepted image format, too many pixels, or corrupt/truncated.

    Example:
        >>> img = open_image("photo.jpg")  # doctest: +SKIP
        >>> img.size  # doctest: +SKIP
        (640, 480)
    """
    is_bytes = isinstance(source, (bytes, bytearray, memoryview))
    where = where or ("upload" if is_bytes else str(source))
    limit = max_pixels if max_pixels is not None else Image.MAX_IMAGE_PIXELS
    if is_bytes and len(source) == 0:
        raise UnreadableImage(where, "empty", "empty file (0 bytes)")
    try:
        img = Image.open(io.BytesIO(source) if is_bytes else source, formats=ACCEPTED_FORMATS)
    except FileNotFoundError:
        raise UnreadableImage(where, "corrupt", "file not found") from None
    except UnidentifiedImageError:
        if not is_bytes and os.path.getsize(source) == 0:
            raise UnreadableImage(where, "empty", "empty file (0 bytes)") from None
        kinds = ", ".join(f.lower() for f in ACCEPTED_FORMATS)
        raise UnreadableImage(where, "unsupported", f"not an image in a supported format ({kinds})") from None
    except Image.DecompressionBombError as err:
        raise UnreadableImage(where, "too_large", str(err)) from None
    except Exception as err:  # noqa: BLE001 - any header failure is a bad input, never a crash
        raise UnreadableImage(where, "corrupt", f"cannot read the image header ({type(err).__name__}: {err})") from None
    with img:
        width, height = img.size
        if width * height > limit:
            raise UnreadableImage(
                where, "too_large", f"image is {width}x{height} = {width * height} pixels; the limit is {limit}"
            )
        if width < 1 or height < 1:
            raise UnreadableImage(where, "corrupt", f"image has no pixels ({width}x{height})")
        try:
            img.load()
            return ImageOps.exif_transpose(img)
        except Exception as err:  # noqa: BLE001 - truncated/corrupt data is a bad input, never a crash
            raise UnreadableImage(where, "corrupt", f"cannot decode the image ({type(err).__name__}: {err})") from None


def classify(
    predictor: Predictor, images: Sequence[Image.Image], *, detect: bool = True, margin: float | None = None
) -> list[list[FaceResult]]:
    """Find and classify the faces of each image; one model call for all of them.

    Example:
        >>> [faces] = classify(predictor, [open_image("photo.jpg")])  # doctest: +SKIP
        >>> faces[0].label  # doctest: +SKIP
        'happy'
    """
    rule = crop_rule(predictor, margin)
    regions = [find_faces(img, detect=detect) for img in images]
    return _classify_regions(predictor, images, regions, rule)


def crop_rule(predictor: Predictor, margin: float | None = None) -> CropRule:
    """The model's recorded crop rule, with ``margin`` overriding its margin when given."""
    rule = predictor.info.crop
    if margin is None:
        return rule
    check_float("margin", margin, low=0.0)
    return CropRule(margin=margin, square=rule.square, fill=rule.fill)


def _classify_regions(
    predictor: Predictor, images: Sequence[Image.Image], regions: Sequence[list[Face]], rule: CropRule
) -> list[list[FaceResult]]:
    crops = [crop for img, faces in zip(images, regions) for crop in crop_faces(img, faces, rule)]
    probs = predictor.predict_images(crops)
    names = predictor.class_names
    out: list[list[FaceResult]] = []
    row = 0
    for faces in regions:
        results = []
        for face in faces:
            p = probs[row]
            row += 1
            results.append(
                FaceResult(
                    face.box,
                    face.detected,
                    names[int(p.argmax())],
                    {name: round(float(v), 6) for name, v in zip(names, p)},
                )
            )
        out.append(results)
    return out


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


def _load(path: Path, detect: bool) -> tuple[Image.Image, list[Face]]:
    img = open_image(path)
    return img, find_faces(img, detect=detect)


def predict_files(
    predictor: Predictor,
    files: Sequence[tuple[Path, str]],
    *,
    detect: bool = True,
    margin: float | None = None,
    batch_size: int = 32,
    annotate_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress=None,
) -> tuple[list[FileResult], list[tuple[str, str]]]:
    """Classify every face of every file, ``batch_size`` files at a time.

    Files are decoded and searched for faces in a thread pool (PIL and OpenCV release
    the GIL); the faces of a batch go through the model together.

    Args:
        predictor: a loaded model.
        files: ``(path, name)`` pairs from :func:`collect_files`.
        detect: find faces (else each file is one face crop).
        margin: widen each detected box by this fraction per side (default: the model's crop rule).
        batch_size: files per batch.
        annotate_dir: when given, write a copy of each image with boxes and labels here.
        workers: decoding threads (default: 2 per CPU, at most 8).
        progress: an optional tqdm-like object; ``update(n)`` is called per batch.

    Returns:
        ``(results, failures)``: one :class:`FileResult` per readable file, in input
        order, and ``(file, reason)`` for each file that could not be read.

    Example:
        >>> files, _ = collect_files(["photos/"])  # doctest: +SKIP
        >>> results, failures = predict_files(Predictor.load("models/best_model"), files)  # doctest: +SKIP
    """
    check_int("batch_size", batch_size, minimum=1)
    rule = crop_rule(predictor, margin)
    results: list[FileResult] = []
    failures: list[tuple[str, str]] = []
    used_names: set[str] = set()
    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2) * 2)) as pool:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            futures = [pool.submit(_load, path, detect) for path, _ in chunk]
            loaded, kept = [], []
            for (path, name), future in zip(chunk, futures):
                try:
                    loaded.append(future.result())
                    kept.append((path, name))
                except UnreadableImage as err:
                    failures.append((str(path), err.detail))
                except Exception as err:  # noqa: BLE001 - one bad file never stops a batch
                    failures.append((str(path), f"{type(err).__name__}: {err}"))
            images = [img for img, _ in loaded]
            per_image = _classify_regions(predictor, images, [faces for _, faces in loaded], rule)
            for (path, name), img, faces in zip(kept, images, per_image):
                results.append(FileResult(str(path), faces))
                if annotate_dir is not None:
                    save_annotated(annotate(img, faces), Path(annotate_dir) / _unique(name, used_names))
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


def csv_rows(results: Iterable[FileResult], class_names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per face: file, face index (1-based), box, detected yes/no, top emotion, probabilities."""
    rows = []
    for result in results:
        for i, face in enumerate(result.faces, start=1):
            row = {"file": result.file, "face": i, **dict(zip("xywh", face.box.as_list()))}
            row |= {"detected": "yes" if face.detected else "no", "emotion": face.label}
            row |= {name: f"{face.probabilities[name]:.6f}" for name in class_names}
            rows.append(row)
    return rows


def to_csv(results: Iterable[FileResult], class_names: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=csv_columns(class_names), lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(results, class_names))
    return buffer.getvalue()


def to_json(
    results: Iterable[FileResult], predictor: Predictor, failures: Iterable[tuple[str, str]] = ()
) -> dict[str, Any]:
    """The JSON report: model identity, per-file faces, and the skipped files."""
    return {
        "model": model_identity(predictor),
        "files": [{"file": r.file, "faces": [f.to_dict() for f in r.faces]} for r in results],
        "skipped": [{"file": file, "error": reason} for file, reason in failures],
    }


def model_identity(predictor: Predictor) -> dict[str, str]:
    return {"name": predictor.info.name, "version": predictor.info.version, "runtime": predictor.runtime}
