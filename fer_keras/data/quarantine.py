"""Moving dataset files aside and back, without ever losing one (``clean --apply``, ``restore``).

Files move from ``<root>/<rel>`` to ``<quarantine>/<rel>``. Before the first move
every planned move is journaled and fsynced; after the last one the manifest lists
the quarantined files (the folder's files and checks: :mod:`fer_keras.data.quarantine_folder`).
Restore trusts neither file to be complete: for each journaled path it looks at
where the bytes actually are, so an apply or restore interrupted at any point
(even mid-copy across file systems, where a file may exist in both places) is
finished by running restore again. A file is only ever deleted when an identical
copy (same sha256) exists at the other place.

Restore refuses any folder that is not the quarantine of this dataset, and removes
only what apply made: the journal, the manifest, the empty sub-folders of journaled
paths, and the quarantine folder itself once nothing but the marker is left.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_keras.atomic import write_text_atomic
from fer_keras.constants import QUARANTINE_JOURNAL_FILE, QUARANTINE_MANIFEST_FILE, QUARANTINE_MARKER_FILE
from fer_keras.data.quarantine_folder import (
    append_journal,
    check_quarantine,
    now,
    read_journal,
    read_manifest,
    relpath,
    write_manifest,
    write_marker,
)
from fer_keras.data.quarantine_folder import default_quarantine as default_quarantine  # re-exported for callers
from fer_keras.errors import FerError
from fer_keras.hashing import sha256_file


def move_file(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst`` (which must not exist); a copy+fsync+rename across file systems."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dst)
        return
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
    tmp = dst.with_name(f".{dst.name}.partial")
    shutil.copy2(src, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dst)  # the copy appears whole or not at all
    src.unlink()  # only now: both places hold identical bytes until here


@dataclass(frozen=True)
class QuarantinePlan:
    """Validated moves into a quarantine folder (nothing moved yet): see :func:`plan_quarantine`."""

    root: Path
    qdir: Path
    entries: tuple[dict[str, Any], ...]

    def summary(self) -> dict[str, Any]:
        by_reason: dict[str, int] = {}
        for e in self.entries:
            by_reason[e["reason"]] = by_reason.get(e["reason"], 0) + 1
        total = sum(e["size"] for e in self.entries)
        return {"quarantine": str(self.qdir), "moved": len(self.entries), "bytes": total, "by_reason": by_reason}


def plan_quarantine(
    root: str | os.PathLike, moves: Sequence[tuple[str, str]], quarantine: str | os.PathLike | None = None
) -> QuarantinePlan:
    """Check every ``(relative path, reason)`` move into the quarantine folder; move nothing.

    Every source must exist, no different file may already sit at its quarantine path,
    and the folder must pass :func:`check_quarantine`.

    Raises:
        FerError: every problem found (one per line).
    """
    root, qdir = check_quarantine(root, quarantine)
    problems, entries = [], []
    for rel, reason in moves:
        rel = relpath(rel)
        src, dst = root / rel, qdir / rel
        if not src.is_file():
            problems.append(f"{src}: not found (already moved? rerun fer-data clean for a fresh plan)")
        elif dst.exists():
            problems.append(f"{dst}: already in the quarantine; restore it first (fer-data restore {root})")
        else:
            entries.append({"path": rel, "size": src.stat().st_size, "sha256": sha256_file(src), "reason": reason})
    if problems:
        raise FerError(problems)
    return QuarantinePlan(root, qdir, tuple(entries))


def apply_quarantine(plan: QuarantinePlan, progress=None) -> dict[str, Any]:
    """Move the files of a :func:`plan_quarantine` plan; returns its summary."""
    summary = plan.summary()
    if not plan.entries:
        return summary
    root, qdir = plan.root, plan.qdir
    qdir.mkdir(parents=True, exist_ok=True)
    # The marker before the journal: a folder holding a journal is always recognisably ours.
    if not (qdir / QUARANTINE_MARKER_FILE).is_file():
        write_marker(qdir, root)
    stamp = now()
    # Journal first: whatever happens next, restore knows every file that may have moved.
    append_journal(qdir, plan.entries, stamp)
    for e in plan.entries:
        move_file(root / e["path"], qdir / e["path"])
        if progress is not None:
            progress.update(1)
    files = {f["path"]: f for f in read_manifest(qdir)["files"]}
    files.update({e["path"]: {**e, "moved_at": stamp} for e in plan.entries})
    write_manifest(qdir, root, list(files.values()))
    return summary


def quarantine_files(
    root: str | os.PathLike,
    moves: Sequence[tuple[str, str]],
    quarantine: str | os.PathLike | None = None,
    dry_run: bool = False,
    progress=None,
) -> dict[str, Any]:
    """Move ``(relative path, reason)`` files of ``root`` into the quarantine folder.

    All checks run before anything moves (:func:`plan_quarantine`). Earlier quarantines
    of the same dataset in the same folder are kept and listed in the merged manifest.

    Returns:
        ``{"quarantine": path, "moved": n, "bytes": n, "by_reason": {...}}``.

    Raises:
        FerError: a missing source, a clash in the quarantine, or an unusable quarantine folder.

    Example:
        >>> quarantine_files("data/demo", [("train/angry/x.jpg", "blank")])  # doctest: +SKIP
        {'quarantine': '.../demo.quarantine', 'moved': 1, 'bytes': 1834, 'by_reason': {'blank': 1}}
    """
    plan = plan_quarantine(root, moves, quarantine)
    return plan.summary() if dry_run else apply_quarantine(plan, progress)


def restore_files(
    root: str | os.PathLike,
    quarantine: str | os.PathLike | None = None,
    dry_run: bool = False,
    progress=None,
) -> dict[str, Any]:
    """Put every quarantined file back at its original path, byte-identical.

    Works from any partial state of an interrupted apply or restore. A file whose
    original path is now taken by a different file is left in the quarantine and
    named in the error; everything else is still restored. When all files are
    back, the journal, the manifest and the emptied sub-folders of journaled paths
    are removed, then the marker and the quarantine folder if nothing else is left.

    Returns:
        ``{"quarantine": path, "restored": n, "already_in_place": n}``.

    Raises:
        FerError: a folder that is missing, not made by ``clean --apply`` or the
            quarantine of another dataset (nothing is touched), or files that could
            not be restored (listed).

    Example:
        >>> restore_files("data/demo")  # doctest: +SKIP
        {'quarantine': '.../demo.quarantine', 'restored': 1, 'already_in_place': 0}
    """
    root, qdir = check_quarantine(root, quarantine, restoring=True)
    entries = read_journal(qdir)
    if not dry_run and not (qdir / QUARANTINE_MARKER_FILE).is_file():
        write_marker(qdir, root)  # a quarantine from before the marker: mark it as checked above
    if progress is not None:
        progress.total = len(entries)
        progress.refresh()
    restored, in_place, problems, remaining = 0, 0, [], []
    for rel, entry in sorted(entries.items()):
        src, dst = qdir / relpath(rel), root / relpath(rel)
        issue = _restore_one(src, dst, entry["sha256"], dry_run)
        if issue is None:
            restored += 1
        elif issue == "":
            in_place += 1
        else:
            problems.append(issue)
            remaining.append(entry)
        if progress is not None:
            progress.update(1)
    summary = {"quarantine": str(qdir), "restored": restored, "already_in_place": in_place}
    if dry_run:
        if problems:
            raise FerError(problems)
        return summary
    if remaining:
        write_manifest(qdir, root, remaining)
        write_text_atomic(qdir / QUARANTINE_JOURNAL_FILE, "".join(json.dumps(e) + "\n" for e in remaining))
        raise FerError([*problems, f"{len(problems)} file(s) kept in {qdir}; {restored} restored"])
    (qdir / QUARANTINE_MANIFEST_FILE).unlink(missing_ok=True)
    (qdir / QUARANTINE_JOURNAL_FILE).unlink(missing_ok=True)
    _remove_empty_dirs(qdir, entries)
    if [p.name for p in qdir.iterdir()] == [QUARANTINE_MARKER_FILE]:
        (qdir / QUARANTINE_MARKER_FILE).unlink()
        qdir.rmdir()
    return summary


def _restore_one(src: Path, dst: Path, sha256: str, dry_run: bool) -> str | None:
    """``None`` when moved back, ``""`` when already in place, else the problem."""
    src_exists = src.is_file()
    if dst.exists():
        if not dst.is_file():
            return f"{dst}: refusing to restore over a folder (the quarantined file is kept at {src})"
        if sha256_file(dst) != sha256:
            if src_exists:
                return f"{dst}: refusing to overwrite a different file (the quarantined original is kept at {src})"
            return ""  # never moved, then edited in place: it is the user's file now
        if src_exists:
            if sha256_file(src) != sha256:
                return f"{src}: changed since it was quarantined (sha256 differs) and the original is back at {dst}"
            if not dry_run:
                src.unlink()  # an identical copy is back in place (an interrupted cross-device move)
        return ""
    if not src_exists:
        return f"{dst}: missing from both the dataset and the quarantine {src.parent}"
    if sha256_file(src) != sha256:
        return f"{src}: changed since it was quarantined (sha256 differs); not restored"
    if not dry_run:
        move_file(src, dst)
    return None


def _remove_empty_dirs(qdir: Path, rels: Iterable[str]) -> None:
    """Remove the sub-folders of ``qdir`` that journaled paths needed, where empty, deepest first."""
    folders = {qdir.joinpath(*Path(rel).parts[:i]) for rel in rels for i in range(1, len(Path(rel).parts))}
    for folder in sorted(folders, key=lambda f: -len(f.parts)):
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty (or already gone): leave it, and whatever the user put there
