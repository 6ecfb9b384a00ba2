"""The quarantine folder's on-disk format: its marker, journal and manifest, and whose it is.

A quarantine folder (``<root>.quarantine`` by default) holds the moved files under their
dataset-relative paths plus three files of its own:

- ``fer_quarantine.json``, the marker: written first, it names the dataset the folder
  belongs to, so a folder is only ever used for (and emptied by) its own dataset;
- ``journal.jsonl``: one line per planned move (path, size, sha256, reason), appended
  and fsynced before the first move, so restore knows every file that may have moved;
- ``manifest.json``: the files quarantined, written after the last move.

This module reads and writes those files and checks a folder before use;
:mod:`fer_keras.data.quarantine` moves the files. Quarantines from before the marker
existed are recognised by their manifest, which names the dataset too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fer_keras.atomic import write_json_atomic
from fer_keras.constants import (
    QUARANTINE_JOURNAL_FILE,
    QUARANTINE_MANIFEST_FILE,
    QUARANTINE_MARKER_FILE,
    QUARANTINE_SUFFIX,
)
from fer_keras.errors import FerError

FORMAT_VERSION = 1


def default_quarantine(root: str | os.PathLike) -> Path:
    """``<root>.quarantine`` beside the dataset (outside it, so scans never see it)."""
    root = Path(root).resolve()
    return root.with_name(root.name + QUARANTINE_SUFFIX)


def now() -> str:
    """The local time stamp every quarantine file records."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _resolve(root: str | os.PathLike, quarantine: str | os.PathLike | None) -> tuple[Path, Path]:
    root = Path(root).resolve()
    qdir = Path(quarantine).resolve() if quarantine else default_quarantine(root)
    if not root.is_dir():
        raise FerError(f"{root}: dataset folder not found")
    if qdir == root or qdir.is_relative_to(root) or root.is_relative_to(qdir):
        raise FerError(f"--quarantine: must be outside the dataset folder {root}; got {qdir}")
    return root, qdir


def check_quarantine(
    root: str | os.PathLike, quarantine: str | os.PathLike | None = None, restoring: bool = False
) -> tuple[Path, Path]:
    """Check a quarantine folder for ``root`` before anything is read, moved or written.

    For ``clean --apply`` the folder may be missing, an empty folder, or a quarantine of
    this dataset; for restore it must be a quarantine of this dataset.

    Returns:
        The resolved ``(dataset folder, quarantine folder)``.

    Raises:
        FerError: a missing dataset, a quarantine inside it (or the reverse), a file,
            a folder not made by ``clean --apply``, or the quarantine of another dataset.

    Example:
        >>> check_quarantine("data/demo")  # doctest: +SKIP
        (PosixPath('.../data/demo'), PosixPath('.../data/demo.quarantine'))
    """
    root, qdir = _resolve(root, quarantine)
    if not qdir.exists() and not qdir.is_symlink():
        if restoring:
            raise FerError(
                f"{qdir}: no quarantine folder (nothing to restore; pass --quarantine PATH if it is elsewhere)"
            )
        return root, qdir
    if not qdir.is_dir():
        raise FerError(f"{qdir}: --quarantine must be a folder; this is a file")
    owner = _owner(qdir)
    if owner is None:
        if restoring or any(qdir.iterdir()):
            raise FerError(
                f"{qdir}: not a quarantine made by fer-data clean --apply (no {QUARANTINE_MARKER_FILE}); "
                "refusing to use it (pick another --quarantine)"
            )
    elif owner != str(root):
        raise FerError(f"{qdir}: the quarantine of the dataset {owner}, not of {root}; refusing to use it")
    return root, qdir


def _owner(qdir: Path) -> str | None:
    """The dataset a quarantine folder belongs to, from its marker (or legacy manifest); ``None`` if neither."""
    marker = qdir / QUARANTINE_MARKER_FILE
    if marker.exists():
        try:
            data = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise FerError(f"{marker}: unreadable quarantine marker ({err})") from err
        dataset = data.get("dataset") if isinstance(data, dict) else None
        if not isinstance(dataset, str):
            raise FerError(f"{marker}: 'dataset' must be the path of the dataset folder; got {dataset!r}")
        return dataset
    # Quarantines made before the marker existed: a complete one has a manifest naming its dataset.
    try:
        data = json.loads((qdir / QUARANTINE_MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("format_version") == FORMAT_VERSION and isinstance(data.get("files"), list):
        dataset = data.get("dataset")
        return dataset if isinstance(dataset, str) else None
    return None


def write_marker(qdir: Path, root: Path) -> None:
    """Mark ``qdir`` as the quarantine of the dataset ``root``."""
    write_json_atomic(
        qdir / QUARANTINE_MARKER_FILE,
        {
            "format_version": FORMAT_VERSION,
            "dataset": str(root),
            "created_at": now(),
            "made_by": "fer-data clean --apply",
            "restore": f"fer-data restore {root} --quarantine {qdir}",
        },
    )


def relpath(rel: str) -> str:
    """Refuse absolute paths and ``..``: every journaled path stays inside its folder."""
    parts = Path(rel).parts
    if not parts or Path(rel).is_absolute() or ".." in parts:
        raise FerError(f"quarantine: 'path' must be relative to the dataset folder; got {rel!r}")
    return Path(rel).as_posix()


def append_journal(qdir: Path, entries: Iterable[dict[str, Any]], stamp: str) -> None:
    """Append one line per planned move and fsync it, before any of them starts."""
    with open(qdir / QUARANTINE_JOURNAL_FILE, "a", encoding="utf-8") as journal:
        for e in entries:
            journal.write(json.dumps({**e, "at": stamp}) + "\n")
        journal.flush()
        os.fsync(journal.fileno())


def read_journal(qdir: Path) -> dict[str, dict[str, Any]]:
    """Every journaled move by path (the latest wins), merged with the manifest."""
    path = qdir / QUARANTINE_JOURNAL_FILE
    try:
        entries = {f["path"]: f for f in read_manifest(qdir)["files"]}
    except FerError:
        if not path.is_file():
            raise
        entries = {}  # the journal alone lists every move; the manifest is its summary
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn last line from a crash mid-write: that move never started
            entries[entry["path"]] = entry
    return entries


def read_manifest(qdir: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a quarantine folder (an empty one when there is none yet)."""
    path = Path(qdir) / QUARANTINE_MANIFEST_FILE
    if not path.is_file():
        return {"format_version": FORMAT_VERSION, "files": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FerError(f"{path}: unreadable manifest ({err})") from err
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise FerError(f"{path}: 'files' must be a list of moved files; got {type(data).__name__}")
    return data


def write_manifest(qdir: Path, root: Path, files: list[dict[str, Any]]) -> None:
    """Replace the manifest with ``files`` (sorted by path)."""
    write_json_atomic(
        qdir / QUARANTINE_MANIFEST_FILE,
        {
            "format_version": FORMAT_VERSION,
            "dataset": str(root),
            "updated_at": now(),
            "restore": f"fer-data restore {root} --quarantine {qdir}",
            "files": sorted(files, key=lambda f: f["path"]),
        },
    )
