"""Dataset statistics (``fer-data stats``): counts, colour modes and image sizes.

Only image headers are read (``PIL.Image.open`` parses the header and defers
decoding), so the whole FER2013 takes a few seconds. The file listing helper
:func:`list_dataset` is shared with :mod:`fer_keras.data.clean`.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from fer_keras.constants import SPLITS
from fer_keras.errors import FerError
from fer_keras.data.folders import is_image_file, list_classes
from fer_keras.data.sharpness import format_sharpness, split_sharpness

# PIL modes without colour; everything else (RGB, RGBA, P, CMYK, YCbCr...) counts as colour.
GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
TOP_SIZES = 5


@dataclass(frozen=True)
class DatasetFile:
    """One image file of a dataset: its split, class folder and ``/``-separated relative path."""

    split: str
    label: str
    relpath: str


def list_dataset(root: str | os.PathLike) -> list[DatasetFile]:
    """Every image file under ``<root>/{train,valid,test}/<class>/``, sorted by path.

    Every class folder of every split is listed (not only the classes of ``train``)
    so that the data tools see each file a training run could ever read.

    Raises:
        FerError: ``root`` is not a folder or holds none of the split folders.

    Example:
        >>> files = list_dataset("data/demo")  # doctest: +SKIP
        >>> files[0].relpath  # doctest: +SKIP
        'train/angry/angry_0000.jpg'
    """
    root = Path(root)
    if not root.is_dir():
        raise FerError(f"{root}: dataset folder not found")
    splits = [s for s in SPLITS if (root / s).is_dir()]
    if not splits:
        raise FerError(f"{root}: no split folders (expected {', '.join(SPLITS)} holding <emotion>/ folders)")
    out = []
    for split in splits:
        for label in list_classes(root / split):
            folder = root / split / label
            names = sorted(e.name for e in os.scandir(folder) if e.is_file() and is_image_file(e.name))
            out.extend(DatasetFile(split, label, f"{split}/{label}/{name}") for name in names)
    return out


def _header(path: str) -> tuple[str, int, int] | str:
    """``(mode, width, height)`` from the header alone, or the error text."""
    try:
        with Image.open(path) as img:
            return img.mode, img.size[0], img.size[1]
    except Exception as err:  # noqa: BLE001 - any unreadable header is reported, not raised
        return f"{type(err).__name__}: {err}"


def dataset_stats(root: str | os.PathLike, workers: int | None = None, progress=None) -> dict[str, Any]:
    """Counts per split x class, grayscale vs colour files and the image size distribution.

    Args:
        root: dataset folder in the ``{split}/{emotion}/*`` layout.
        workers: threads reading headers (default 4; the work is mostly file I/O).
        progress: optional tqdm-like object; ``update(1)`` is called per file.

    Returns:
        A JSON-ready dict: ``counts[split][class]``, ``split_totals``, ``class_totals``,
        ``modes`` (per PIL mode), ``color`` (``grayscale``/``rgb`` per split), ``sizes``
        (width/height min, median, max and the most common sizes), ``unreadable`` and
        ``sharpness`` (see :func:`fer_keras.data.sharpness.split_sharpness`).

    Example:
        >>> stats = dataset_stats("data/demo")  # doctest: +SKIP
        >>> stats["counts"]["train"]["happy"], stats["total"]  # doctest: +SKIP
        (60, 630)
    """
    root = Path(root)
    files = list_dataset(root)
    splits = [s for s in SPLITS if (root / s).is_dir()]
    classes = sorted({c for s in splits for c in list_classes(root / s)})
    counts = {s: dict.fromkeys(classes, 0) for s in splits}
    color = {s: {"grayscale": 0, "rgb": 0} for s in splits}
    modes: Counter[str] = Counter()
    sizes: Counter[tuple[int, int]] = Counter()
    unreadable = []
    if progress is not None:
        progress.total = len(files)
        progress.refresh()
    with ThreadPoolExecutor(max_workers=workers or 4) as pool:
        headers = pool.map(_header, [os.path.join(root, f.relpath) for f in files], chunksize=64)
        for f, head in zip(files, headers):
            counts[f.split][f.label] += 1
            if progress is not None:
                progress.update(1)
            if isinstance(head, str):
                unreadable.append({"path": f.relpath, "error": head})
                continue
            mode, width, height = head
            modes[mode] += 1
            color[f.split]["grayscale" if mode in GRAYSCALE_MODES else "rgb"] += 1
            sizes[(width, height)] += 1
    return {
        "format_version": 1,
        "root": str(root.resolve()),
        "total": len(files),
        "splits": splits,
        "classes": classes,
        "counts": counts,
        "split_totals": {s: sum(counts[s].values()) for s in splits},
        "class_totals": {c: sum(counts[s][c] for s in splits) for c in classes},
        "modes": dict(sorted(modes.items())),
        "color": color,
        "sizes": _size_summary(sizes),
        "unreadable": unreadable,
        "sharpness": split_sharpness(
            {s: [os.path.join(root, f.relpath) for f in files if f.split == s] for s in splits}
        ),
    }


def _size_summary(sizes: Counter[tuple[int, int]]) -> dict[str, Any]:
    def spread(counts: Counter[int]) -> dict[str, int] | None:
        if not counts:
            return None
        # The median over files, not over distinct values.
        return {"min": min(counts), "median": statistics.median_low(counts.elements()), "max": max(counts)}

    widths: Counter[int] = Counter()
    heights: Counter[int] = Counter()
    for (w, h), n in sizes.items():
        widths[w] += n
        heights[h] += n
    return {
        "width": spread(widths),
        "height": spread(heights),
        "distinct": len(sizes),
        "most_common": [{"size": [w, h], "count": n} for (w, h), n in sizes.most_common(TOP_SIZES)],
    }


def format_stats(stats: dict[str, Any]) -> str:
    """The statistics as a plain-text table (what ``fer-data stats`` prints)."""
    classes, splits = stats["classes"], stats["splits"]
    head = ["split", *classes, "total"]
    rows = [[s, *(stats["counts"][s][c] for c in classes), stats["split_totals"][s]] for s in splits]
    rows.append(["total", *(stats["class_totals"][c] for c in classes), stats["total"]])
    lines = [text_table(head, rows), ""]
    lines.append(
        "colour: "
        + "; ".join(f"{s} {stats['color'][s]['grayscale']} grayscale / {stats['color'][s]['rgb']} rgb" for s in splits)
    )
    lines.append("PIL modes: " + (", ".join(f"{m} {n}" for m, n in stats["modes"].items()) or "none"))
    sz = stats["sizes"]
    if sz["width"]:
        w, h = sz["width"], sz["height"]
        lines.append(
            f"sizes: width {w['min']}/{w['median']}/{w['max']}, height {h['min']}/{h['median']}/{h['max']} "
            f"(min/median/max), {sz['distinct']} distinct"
        )
        lines.append(
            "most common: " + ", ".join(f"{s['size'][0]}x{s['size'][1]} ({s['count']})" for s in sz["most_common"])
        )
    if stats.get("sharpness", {}).get("splits"):
        lines.extend(format_sharpness(stats["sharpness"]))
    if stats["unreadable"]:
        lines.append(f"unreadable headers: {len(stats['unreadable'])} (listed in the JSON; see fer-data clean)")
    return "\n".join(lines)


def text_table(head: list[str], rows: list[list[Any]]) -> str:
    """Right-aligned columns (the first left-aligned), two spaces apart."""
    cells = [head, *([str(v) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    out = []
    for row in cells:
        first = row[0].ljust(widths[0])
        out.append("  ".join([first, *(v.rjust(w) for v, w in zip(row[1:], widths[1:]))]).rstrip())
    return "\n".join(out)
