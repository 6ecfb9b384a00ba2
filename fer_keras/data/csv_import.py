"""Converting the original FER2013 CSV into the folder layout (``fer-data import-csv``).

The Kaggle ``fer2013.csv`` has one face per row: ``emotion`` (a code, see
:data:`EMOTION_CODES`), ``pixels`` (2304 space-separated grey levels, 48x48, row
major) and ``Usage`` (Training, PublicTest, PrivateTest). Each row becomes the
lossless PNG ``<out>/<split>/<emotion>/<Usage>_<row>.png`` where ``row`` is the
0-based data row (the CSV line number minus 2). The whole file is parsed and
checked before the first image is written, so a bad row leaves no half import.
A file that is not UTF-8 text, a line longer than
:data:`~fer_keras.validation.MAX_CSV_LINE_CHARS` or malformed CSV stops the import with
one error naming the file (and line); a row with the wrong number of columns is a bad row.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from fer_keras.constants import CLASS_NAMES, SPLITS
from fer_keras.errors import FerError, problem
from fer_keras.validation import MAX_CSV_LINE_CHARS, clip, shown

# FER2013's codes are not in CLASS_NAMES order (neutral is 6, sad is 4).
EMOTION_CODES: dict[str, str] = {
    "0": "angry",
    "1": "disgust",
    "2": "fear",
    "3": "happy",
    "4": "sad",
    "5": "surprise",
    "6": "neutral",
}
USAGE_SPLITS: dict[str, str] = {"Training": "train", "PublicTest": "valid", "PrivateTest": "test"}
SIDE = 48
COLUMNS = ("emotion", "pixels", "Usage")
MAX_LISTED = 10  # bad rows named in one error; the rest are counted
_INT_RE = re.compile(r"-?[0-9]+")


@dataclass
class ImportResult:
    """What :func:`import_csv` wrote: counts per split and class, and the skipped rows."""

    out: Path
    counts: dict[str, dict[str, int]]
    skipped: list[str] = field(default_factory=list)

    @property
    def written(self) -> int:
        return sum(sum(per_class.values()) for per_class in self.counts.values())


@dataclass(frozen=True)
class _Row:
    index: int
    usage: str
    split: str
    emotion: str
    pixels: np.ndarray


def _count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))


def _lines(fh, path: Path) -> Iterator[str]:
    """The lines of a text file, refusing one longer than MAX_CSV_LINE_CHARS before reading all of it."""
    number = 0
    while line := fh.readline(MAX_CSV_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_CSV_LINE_CHARS:
            limit = f"{MAX_CSV_LINE_CHARS:,} characters"
            raise FerError(f"{path}:{number}: line length: got more than {limit}; limit {limit}")
        yield line


def _rows(path: Path, bad: list[str], progress) -> Iterator[_Row]:
    """Parse and check every data row; append one message per bad row to ``bad``."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(_lines(fh, path))
        try:
            yield from _records(path, reader, bad, progress)
        except UnicodeDecodeError:
            raise FerError(f"{path}: is not UTF-8 text; expected the FER2013 CSV ({','.join(COLUMNS)})") from None
        except csv.Error as err:  # a NUL byte, a field over csv's limit, a stray quote
            raise FerError(f"{path}:{reader.line_num}: not valid CSV: {clip(str(err))}") from None


def _records(path: Path, reader, bad: list[str], progress) -> Iterator[_Row]:
    header = next(reader, None)
    if header is None:
        raise FerError(f"{path}: empty file (expected the header {','.join(COLUMNS)})")
    names = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        got = clip(",".join(names))
        raise FerError(f"{path}:1: header must have the columns {', '.join(COLUMNS)}; got {got!r}")
    col = {c: names.index(c) for c in COLUMNS}
    for index, record in enumerate(reader):
        if progress is not None:
            progress.update(1)
        where = f"{path}:{reader.line_num}"
        if not record:
            continue  # a blank line, e.g. a trailing newline
        message, row = _parse(index, record, col, len(names))
        if message:
            bad.append(problem(where, message))
        else:
            yield row


def _parse(index: int, record: list[str], col: dict[str, int], columns: int) -> tuple[str | None, _Row | None]:
    if len(record) != columns:
        return f"expected {columns} columns; got {len(record)}", None
    code, usage, text = record[col["emotion"]].strip(), record[col["Usage"]].strip(), record[col["pixels"]]
    if code not in EMOTION_CODES:
        codes = ", ".join(f"{k}={v}" for k, v in EMOTION_CODES.items())
        return f"'emotion' must be one of {codes}; got {shown(code)}", None
    if usage not in USAGE_SPLITS:
        return f"'Usage' must be one of {', '.join(USAGE_SPLITS)}; got {shown(usage)}", None
    pixels = _fast_ints(text)
    if pixels is None or pixels.size != SIDE * SIDE or pixels.min() < 0 or pixels.max() > 255:
        # The slow, exact path, only for rows that are wrong anyway: say what is wrong (numpy
        # saturates integers beyond int64, so an out-of-range value is quoted from the text).
        values = text.split()
        if len(values) != SIDE * SIDE:
            return f"'pixels' must be {SIDE * SIDE} space-separated integers (48x48); got {len(values)} values", None
        first = next((v for v in values if not _INT_RE.fullmatch(v)), None)
        if first is not None:
            return f"'pixels' must be integers in 0..255; got {shown(first)}", None
        # Compare digit counts first: int() refuses strings over sys.get_int_max_str_digits() digits.
        outside = next((v for v in values if len(v.lstrip("-").lstrip("0")) > 3 or not 0 <= int(v) <= 255), None)
        if outside is not None:  # may exceed int64: report it before numpy sees it
            return f"'pixels' must be integers in 0..255; got {clip(outside)}", None
        pixels = np.array([int(v) for v in values])
    if pixels.min() < 0 or pixels.max() > 255:
        outside = int(pixels[(pixels < 0) | (pixels > 255)][0])
        return f"'pixels' must be integers in 0..255; got {outside}", None
    row = _Row(index, usage, USAGE_SPLITS[usage], EMOTION_CODES[code], pixels.astype(np.uint8).reshape(SIDE, SIDE))
    return None, row


def _fast_ints(text: str) -> np.ndarray | None:
    """Whitespace-separated integers, or ``None`` if anything else is in ``text``.

    ``np.fromstring`` parses in C, five times faster than ``str.split`` + conversion;
    on malformed text it only warns and returns what it read, hence the filter.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return np.fromstring(text, dtype=np.int64, sep=" ")
        except (ValueError, DeprecationWarning):
            return None


def import_csv(
    csv_path: str | os.PathLike,
    out: str | os.PathLike,
    skip_bad: bool = False,
    force: bool = False,
    progress=None,
    workers: int = 4,
) -> ImportResult:
    """Write every row of a FER2013 CSV as ``<out>/<split>/<emotion>/<Usage>_<row>.png``.

    Args:
        csv_path: the ``emotion,pixels,Usage`` CSV.
        out: the dataset folder to create.
        skip_bad: skip bad rows (listed in the result) instead of failing.
        force: write into split folders that already hold files (same names are overwritten).
        progress: optional tqdm-like object; ``total`` is set to rows to read plus rows to write.
        workers: threads encoding PNGs (zlib releases the GIL).

    Raises:
        FerError: an unreadable CSV, a bad header, bad rows (each named by file and line,
        unless ``skip_bad``), or a non-empty output without ``force``.

    Example:
        >>> result = import_csv("fer2013.csv", "data/fer2013")  # doctest: +SKIP
        >>> result.counts["train"]["happy"]  # doctest: +SKIP
        7215
    """
    csv_path, out = Path(csv_path), Path(out)
    if not csv_path.is_file():
        raise FerError(f"{csv_path}: CSV file not found")
    if not force:
        busy = [out / s for s in SPLITS if (out / s).is_dir() and any((out / s).iterdir())]
        if busy:
            raise FerError(f"{busy[0]}: already holds files; pass --force to write into it anyway")
    if progress is not None:
        progress.total = 2 * max(0, _count_lines(csv_path) - 1)
        progress.refresh()
    bad: list[str] = []
    rows = list(_rows(csv_path, bad, progress))
    if bad and not skip_bad:
        more = [f"... and {len(bad) - MAX_LISTED} more bad rows"] if len(bad) > MAX_LISTED else []
        raise FerError([*bad[:MAX_LISTED], *more, "nothing written; fix the rows or pass --skip-bad"])
    if progress is not None:
        progress.total = progress.n + len(rows)
        progress.refresh()
    counts = {s: dict.fromkeys(CLASS_NAMES, 0) for s in SPLITS}
    for split in SPLITS:
        for emotion in CLASS_NAMES:
            (out / split / emotion).mkdir(parents=True, exist_ok=True)

    def write(row: _Row) -> None:
        Image.fromarray(row.pixels).save(out / row.split / row.emotion / f"{row.usage}_{row.index}.png")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for row, _ in zip(rows, pool.map(write, rows)):
            counts[row.split][row.emotion] += 1
            if progress is not None:
                progress.update(1)
    return ImportResult(out, counts, bad)
