"""Ad segments (``--align TIMES.csv``): named time ranges of the video the viewers watched.

The file is CSV with a header row ``name,start_s,end_s`` (extra columns are ignored),
one segment per row, times in seconds from the start of the recording. Every problem is
one line naming the file and the row: a missing column, an empty name, a repeated name,
a time that is not a finite number, a negative start, an end not after its start, and
two segments that overlap. Whether a segment lies within a given video is known only
once the video is read: :func:`segment_warnings` says so in that video's summary.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from fer_keras.errors import FerError, problem
from fer_keras.validation import MAX_CSV_LINE_CHARS, clip

COLUMNS: tuple[str, ...] = ("name", "start_s", "end_s")
MAX_SEGMENTS = 10_000
MAX_SEGMENT_FILE_BYTES = 4 * 2**20


@dataclass(frozen=True)
class Segment:
    """One ad segment: ``start_s <= t < end_s``."""

    name: str
    start_s: float
    end_s: float

    def to_dict(self) -> dict:
        return {"name": self.name, "start_s": self.start_s, "end_s": self.end_s}


def read_segments(path: str | os.PathLike) -> list[Segment]:
    """Read and validate a segment file; segments come back sorted by start.

    Raises:
        FerError: one line per problem, ``<file>, row <n>: <problem>`` (``n`` counts the
            header as row 1, as a spreadsheet shows it).

    Example:
        >>> read_segments("ad_times.csv")  # doctest: +SKIP
        [Segment(name='intro', start_s=0.0, end_s=5.0), Segment(name='product', start_s=5.0, end_s=12.5)]
    """
    where = os.fspath(path)
    try:
        with open(where, "rb") as fh:
            data = fh.read(MAX_SEGMENT_FILE_BYTES + 1)
    except FileNotFoundError:
        raise FerError(problem(where, "no such file")) from None
    except IsADirectoryError:
        raise FerError(problem(where, "is a folder; expected a CSV file of segments (name,start_s,end_s)")) from None
    except OSError as err:
        raise FerError(problem(where, f"cannot read: {err.strerror or err}")) from None
    if len(data) > MAX_SEGMENT_FILE_BYTES:
        raise FerError(problem(where, f"file size: got more than {MAX_SEGMENT_FILE_BYTES:,} bytes; limit"
                               f" {MAX_SEGMENT_FILE_BYTES:,} bytes"))  # fmt: skip
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FerError(problem(where, "is not UTF-8 text")) from None
    return parse_segments(text, where)


def parse_segments(text: str, where: str = "segments") -> list[Segment]:
    """Parse and validate the text of a segment file (see :func:`read_segments`)."""
    csv.field_size_limit(MAX_CSV_LINE_CHARS)
    reader = csv.reader(io.StringIO(text))
    try:
        rows = list(reader)
    except csv.Error as err:
        raise FerError(problem(f"{where}, row {reader.line_num}", f"not valid CSV ({err})")) from None
    header = [h.strip().lower() for h in rows[0]] if rows else []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise FerError(problem(f"{where}, row 1", f"the header must name the columns {', '.join(COLUMNS)}; "
                               f"missing {', '.join(missing)}"))  # fmt: skip
    col = {c: header.index(c) for c in COLUMNS}
    problems: list[str] = []
    segments: list[tuple[int, Segment]] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        at = f"{where}, row {number}"
        if len(row) <= max(col.values()):
            problems.append(problem(at, f"expected {len(header)} columns; got {len(row)}"))
            continue
        name = row[col["name"]].strip()
        start, end = _seconds(row[col["start_s"]]), _seconds(row[col["end_s"]])
        if not name:
            problems.append(problem(at, "the segment has no name"))
        elif name in seen:
            problems.append(problem(at, f"segment {clip(name)!r} is already defined in row {seen[name]}"))
        if start is None or end is None:
            bad = row[col["start_s"]] if start is None else row[col["end_s"]]
            problems.append(problem(at, f"times must be finite numbers of seconds; got {clip(bad.strip())!r}"))
        elif start < 0:
            problems.append(problem(at, f"start_s must be >= 0; got {start:g}"))
        elif end <= start:
            problems.append(problem(at, f"end_s ({end:g}) must be after start_s ({start:g})"))
        elif name and name not in seen:
            segments.append((number, Segment(name, start, end)))
        seen.setdefault(name, number)
    if not problems and not segments:
        problems.append(problem(where, "no segments (expected a header row name,start_s,end_s and one row each)"))
    if len(segments) > MAX_SEGMENTS:
        problems.append(problem(where, f"segments: got {len(segments):,}; limit {MAX_SEGMENTS:,}"))
    ordered = sorted(segments, key=lambda item: item[1].start_s)
    for (row_a, a), (row_b, b) in zip(ordered, ordered[1:]):
        if b.start_s < a.end_s:
            problems.append(problem(f"{where}, row {row_b}", f"segment {clip(b.name)!r} ({b.start_s:g}-{b.end_s:g} s) "
                                    f"overlaps segment {clip(a.name)!r} of row {row_a} ({a.start_s:g}-{a.end_s:g} s)"))  # fmt: skip
    if problems:
        raise FerError(problems)
    return [seg for _, seg in ordered]


def _seconds(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def segment_warnings(segments: Sequence[Segment], duration_s: float) -> list[str]:
    """One warning per segment that does not lie within a video of ``duration_s`` seconds."""
    out = []
    for seg in segments:
        if seg.start_s >= duration_s:
            out.append(f"segment {seg.name!r} ({seg.start_s:g}-{seg.end_s:g} s) starts after the video ends "
                       f"({duration_s:.1f} s); it has no samples")  # fmt: skip
        elif seg.end_s > duration_s + 1e-6:
            out.append(f"segment {seg.name!r} ({seg.start_s:g}-{seg.end_s:g} s) ends after the video ends "
                       f"({duration_s:.1f} s); only its first {duration_s - seg.start_s:.1f} s were seen")  # fmt: skip
    return out
