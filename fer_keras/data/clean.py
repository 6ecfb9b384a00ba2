"""Finding defective, duplicated and leaked images in a dataset (``fer-data clean``).

Every file is decoded once (in a process pool: for 48x48 images the Python work
per file dominates, so threads would serialise on the GIL) and summarised as its
size, pixel standard deviation, a blake2b digest of its decoded pixels and
optionally a 64-bit perceptual hash (pHash). The findings are computed from those
summaries; nothing is moved here (see :mod:`fer_keras.data.quarantine`).

Removal policy: each file gets at most one reason, the first that applies:

- ``corrupt``, ``small``, ``blank``: the file itself is unusable. Such files are
  left out of the duplicate analysis (all-black frames are all "duplicates").
- Files with identical decoded pixels form a group. ``leak``: the group spans
  several splits; the copies in the most protected split present (test, then
  valid, then train) are kept and the others removed, so that valid and test stay
  comparable with published numbers and only training data shrinks.
- ``conflict``: within the kept split the copies carry different labels; the true
  label is unknown, so every copy there is removed.
- ``duplicate``: the remaining copies in one split and class; the first by sorted
  path is kept.
- ``near_duplicate`` (optional, report only): different pixels but pHashes within
  ``near_distance`` bits; perceptual matches need a human look before removal.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fer_keras.constants import SPLITS
from fer_keras.data.images import to_mode
from fer_keras.data.stats import DatasetFile, list_dataset, text_table
from fer_keras.validation import check_choice, check_float, check_int

REMOVABLE_KINDS: tuple[str, ...] = ("corrupt", "small", "blank", "duplicate", "conflict", "leak")
NEAR_KIND = "near_duplicate"
# Splits in the order their copies are kept when an image leaks across splits.
KEEP_ORDER: tuple[str, ...] = ("test", "valid", "train")
DEFAULT_MIN_SIZE = 16
# FER2013's blank frames have std 0; its flattest real faces are above 7.
DEFAULT_BLANK_STD = 2.0
DEFAULT_NEAR_DISTANCE = 4
MAX_NEAR_DISTANCE = 8  # beyond this the bands get too short for the band index to pay off
_CHUNK = 256  # files per pool task: large enough to amortise pickling, small for a smooth bar
# Below this many files the default is to stay in-process: starting spawned workers (a
# fresh interpreter importing numpy and PIL each) costs about as much as decoding 2,000 files.
_POOL_MIN_FILES = 4000
_DCT = np.cos(np.pi * np.outer(np.arange(32), 2 * np.arange(32) + 1) / 64)  # DCT-II basis, 32 points


def phash(gray: Image.Image) -> int:
    """64-bit perceptual hash: low 8x8 DCT coefficients of a 32x32 thumbnail above their median.

    The construction of ``imagehash.phash`` (not a dependency here), with a box filter
    for the thumbnail: area averaging is a proper anti-aliasing filter for shrinking
    and four times cheaper than Lanczos, which matters at 36k files.

    Example:
        >>> phash(Image.new("L", (48, 48), 0))
        0
    """
    pixels = np.asarray(gray.convert("L").resize((32, 32), Image.BOX), dtype=np.float64)
    low = (_DCT @ pixels @ _DCT.T)[:8, :8].ravel()
    ranked = np.sort(low)  # the median of 64 values, without np.median's overhead per call
    bits = low > (ranked[31] + ranked[32]) / 2
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def _inspect_one(path: str, want_phash: bool) -> tuple:
    """``(width, height, std, digest, phash)`` of one file, or ``(error,)``."""
    try:
        with Image.open(path) as img:
            img.load()
            width, height = img.size
            if img.mode == "L":
                gray, canon = img, np.asarray(img)
            else:
                gray, canon = to_mode(img, "grayscale"), np.asarray(to_mode(img, "rgb"))
                # An RGB file with equal channels holds the same image as its grayscale twin.
                if (canon[..., 0] == canon[..., 1]).all() and (canon[..., 0] == canon[..., 2]).all():
                    canon = canon[..., 0]
            std = float(canon.std() if canon.ndim == 2 else np.asarray(gray).std())
            hashed = phash(gray) if want_phash else None
    except Exception as err:  # noqa: BLE001 - any decode failure is a "corrupt" finding
        return (f"{type(err).__name__}: {err}",)
    digest = hashlib.blake2b(repr(canon.shape).encode() + canon.tobytes(), digest_size=16).hexdigest()
    return width, height, std, digest, hashed


def _inspect_chunk(paths: Sequence[str], want_phash: bool) -> list[tuple]:
    return [_inspect_one(p, want_phash) for p in paths]


def inspect_files(paths: Sequence[str], want_phash: bool = False, workers: int | None = None, progress=None) -> list:
    """Decode and summarise ``paths`` (see :func:`_inspect_one`), in order.

    ``workers=None`` uses one process per CPU for large inputs and stays in-process for
    small ones; an explicit ``workers > 1`` always uses a pool. The pool spawns fresh
    interpreters, so a script calling this needs the ``if __name__ == "__main__":`` guard.
    """
    auto = workers is None
    workers = workers or os.cpu_count() or 1
    chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    out: list[tuple] = []
    if workers == 1 or (auto and len(paths) < _POOL_MIN_FILES):
        results = (_inspect_chunk(c, want_phash) for c in chunks)
        return _collect(results, out, progress)
    # spawn, not fork: the caller may have threads (tqdm, a test runner that imported TensorFlow).
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        return _collect(pool.map(_inspect_chunk, chunks, [want_phash] * len(chunks)), out, progress)


def _collect(results, out: list, progress) -> list:
    for chunk in results:
        out.extend(chunk)
        if progress is not None:
            progress.update(len(chunk))
    return out


def find_problems(
    root: str | os.PathLike,
    *,
    min_size: int = DEFAULT_MIN_SIZE,
    blank_std: float = DEFAULT_BLANK_STD,
    near_duplicates: bool = False,
    near_distance: int = DEFAULT_NEAR_DISTANCE,
    workers: int | None = None,
    progress=None,
) -> dict[str, Any]:
    """Scan a dataset for unusable, duplicated, mislabelled and leaked images.

    Args:
        root: dataset folder in the ``{split}/{emotion}/*`` layout (only read).
        min_size: images narrower or shorter than this many pixels are ``small``.
        blank_std: images whose grayscale pixel standard deviation is below this are ``blank``.
        near_duplicates: also group perceptually similar images (report only).
        near_distance: the largest pHash Hamming distance (bits of 64) that counts as near.
        workers: decoding processes (default: one per CPU, or in-process for under 4,000 files).
        progress: optional tqdm-like object; ``total`` is set and ``update(n)`` called.

    Returns:
        The JSON-ready report: ``findings`` per kind (file lists; groups for duplicates),
        ``to_remove`` (every file to remove with its one reason) and ``counts``
        (files per kind and split). See the module docstring for the policy.

    Example:
        >>> report = find_problems("data/demo", near_duplicates=True)  # doctest: +SKIP
        >>> [item["path"] for item in report["to_remove"]]  # doctest: +SKIP
        []
    """
    check_int("min_size", min_size, minimum=1)
    check_float("blank_std", blank_std, low=0.0)
    check_int("near_distance", near_distance, minimum=0, maximum=MAX_NEAR_DISTANCE)
    if workers is not None:
        check_int("workers", workers, minimum=1)
    root = Path(root)
    files = list_dataset(root)
    if progress is not None:
        progress.total = len(files)
        progress.refresh()
    infos = inspect_files([os.path.join(root, f.relpath) for f in files], near_duplicates, workers, progress)

    findings: dict[str, list] = {kind: [] for kind in REMOVABLE_KINDS}
    reasons: dict[str, str] = {}
    by_digest: dict[str, list[int]] = defaultdict(list)
    for i, (f, info) in enumerate(zip(files, infos)):
        if len(info) == 1:
            findings["corrupt"].append({"path": f.relpath, "error": info[0]})
            reasons[f.relpath] = "corrupt"
        elif min(info[0], info[1]) < min_size:
            findings["small"].append({"path": f.relpath, "size": [info[0], info[1]]})
            reasons[f.relpath] = "small"
        elif info[2] < blank_std:
            findings["blank"].append({"path": f.relpath, "std": round(info[2], 3)})
            reasons[f.relpath] = "blank"
        else:
            by_digest[info[3]].append(i)

    for members in by_digest.values():
        if len(members) > 1:
            _resolve_group([files[i] for i in members], findings, reasons)

    report: dict[str, Any] = {
        "format_version": 1,
        "root": str(root.resolve()),
        "settings": {
            "min_size": min_size,
            "blank_std": blank_std,
            "near_duplicates": near_duplicates,
            "near_distance": near_distance,
        },
        "policy": (
            "one reason per file: corrupt > small > blank > leak > conflict > duplicate; leak keeps the copies in "
            "the most protected split (test, valid, train); conflict removes every copy in that split; duplicate "
            "keeps the first by sorted path; near_duplicate is report only"
        ),
        "files_scanned": len(files),
        "splits": [s for s in SPLITS if (root / s).is_dir()],
        "findings": findings,
        "to_remove": [{"path": p, "reason": r} for p, r in sorted(reasons.items())],
    }
    if near_duplicates:
        findings[NEAR_KIND] = _near_groups(files, infos, by_digest, near_distance)
    report["counts"] = _counts(report)
    return report


def _resolve_group(group: list[DatasetFile], findings: dict[str, list], reasons: dict[str, str]) -> None:
    """Add one group of pixel-identical files to the findings (see the module policy)."""
    group = sorted(group, key=lambda f: f.relpath)
    keep_split = min((f.split for f in group), key=KEEP_ORDER.index)
    kept = [f for f in group if f.split == keep_split]
    leaked = [f for f in group if f.split != keep_split]
    entry = [{"path": f.relpath, "split": f.split, "class": f.label} for f in group]
    if leaked:
        findings["leak"].append({"files": entry, "kept": [f.relpath for f in kept], "remove": _paths(leaked)})
        reasons.update(dict.fromkeys(_paths(leaked), "leak"))
    if len({f.label for f in group}) > 1:
        # A label clash only across splits keeps the protected copy (it is removed nowhere else).
        clash = len({f.label for f in kept}) > 1
        remove = _paths(kept) if clash else []
        findings["conflict"].append({"files": entry, "kept": [] if clash else _paths(kept), "remove": remove})
        reasons.update(dict.fromkeys(remove, "conflict"))
        if clash:
            return
    if len(kept) > 1:
        findings["duplicate"].append({"kept": kept[0].relpath, "remove": _paths(kept[1:])})
        reasons.update(dict.fromkeys(_paths(kept[1:]), "duplicate"))


def _paths(files: list[DatasetFile]) -> list[str]:
    return [f.relpath for f in files]


def _near_groups(files: list[DatasetFile], infos: list, by_digest: dict[str, list[int]], max_distance: int) -> list:
    """Groups of files whose different pixels have pHashes within ``max_distance`` bits."""
    digests = list(by_digest)
    hashes = np.array([infos[by_digest[d][0]][4] for d in digests], dtype=np.uint64)
    parent = list(range(len(digests)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    worst: dict[int, int] = {}
    for i, j, dist in near_pairs(hashes, max_distance):
        ri, rj = find(i), find(j)
        parent[ri] = rj
        worst[rj] = max(dist, worst.pop(ri, 0), worst.get(rj, 0))
    components: dict[int, list[int]] = defaultdict(list)
    for i in range(len(digests)):
        components[find(i)].append(i)
    groups = []
    for rootid, members in components.items():
        if len(members) > 1:
            idx = sorted(k for m in members for k in by_digest[digests[m]])
            entry = [{"path": files[k].relpath, "split": files[k].split, "class": files[k].label} for k in idx]
            splits, classes = {f["split"] for f in entry}, {f["class"] for f in entry}
            groups.append(
                {
                    "files": entry,
                    "max_distance": worst[rootid],
                    "cross_split": len(splits) > 1,
                    "cross_class": len(classes) > 1,
                }
            )
    return sorted(groups, key=lambda g: g["files"][0]["path"])


def near_pairs(hashes: np.ndarray, max_distance: int) -> list[tuple[int, int, int]]:
    """All index pairs ``i < j`` of 64-bit hashes within ``max_distance`` differing bits.

    Multi-index hashing: cut the 64 bits into ``max_distance + 1`` bands; two hashes
    within the distance agree exactly on at least one band (pigeonhole), so only
    hashes sharing a band value are compared, not all n^2/2 pairs.

    Example:
        >>> near_pairs(np.array([0b1011, 0b0011, 0xFF00], dtype=np.uint64), 1)
        [(0, 1, 1)]
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    found: dict[tuple[int, int], int] = {}
    edges = np.linspace(0, 64, max_distance + 2).round().astype(int)
    for low, high in zip(edges[:-1], edges[1:]):
        keys = (hashes >> np.uint64(low)) & np.uint64((1 << int(high - low)) - 1)
        order = np.argsort(keys, kind="stable")
        ranked = keys[order]
        # Equal keys are adjacent once sorted: compare each hash with the one k places on, for growing k.
        for k in range(1, len(hashes)):
            same = ranked[:-k] == ranked[k:]
            if not same.any():
                break
            i, j = order[:-k][same], order[k:][same]
            dist = _popcount(hashes[i] ^ hashes[j])
            near = dist <= max_distance
            for a, b, d in zip(i[near].tolist(), j[near].tolist(), dist[near].tolist()):
                found[(min(a, b), max(a, b))] = d
    return sorted((a, b, d) for (a, b), d in found.items())


def _popcount(words: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(words)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    return table[words.view(np.uint8).reshape(*words.shape, 8)].sum(axis=-1, dtype=np.uint8)


def _counts(report: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Files per kind and split: files to remove for each reason; files involved for near duplicates."""
    splits = report["splits"]
    counts = {kind: dict.fromkeys([*splits, "total"], 0) for kind in REMOVABLE_KINDS}
    for item in report["to_remove"]:
        counts[item["reason"]][item["path"].split("/", 1)[0]] += 1
        counts[item["reason"]]["total"] += 1
    if NEAR_KIND in report["findings"]:
        counts[NEAR_KIND] = dict.fromkeys([*splits, "total"], 0)
        for group in report["findings"][NEAR_KIND]:
            for f in group["files"]:
                counts[NEAR_KIND][f["split"]] += 1
                counts[NEAR_KIND]["total"] += 1
    return counts


def format_report(report: dict[str, Any]) -> str:
    """The counts as a plain-text table (what ``fer-data clean`` prints)."""
    splits = report["splits"]
    head = ["finding", *splits, "total", "groups"]
    rows = []
    for kind, per_split in report["counts"].items():
        items = report["findings"][kind]
        grouped = kind in ("duplicate", "conflict", "leak", NEAR_KIND)
        rows.append([kind, *(per_split[s] for s in splits), per_split["total"], len(items) if grouped else "-"])
    near = "; near_duplicate: files in groups, report only" if NEAR_KIND in report["counts"] else ""
    head_line = (
        f"{report['files_scanned']} files scanned, {len(report['to_remove'])} to remove "
        f"(cells: files to remove per reason{near})"
    )
    return head_line + "\n" + text_table(head, rows)


def removal_plan(report: dict[str, Any], kinds: Sequence[str] = REMOVABLE_KINDS) -> list[tuple[str, str]]:
    """``(relative path, reason)`` of the files to remove whose reason is in ``kinds``.

    Example:
        >>> removal_plan({"to_remove": [{"path": "train/a/x.jpg", "reason": "blank"}]}, ["blank"])
        [('train/a/x.jpg', 'blank')]
    """
    for kind in kinds:
        check_choice("kinds", kind, REMOVABLE_KINDS)
    return [(item["path"], item["reason"]) for item in report["to_remove"] if item["reason"] in kinds]
