"""Atomic file and folder writes: a reader (or a crash) never sees a half-written output.

Also the two rules every command that replaces an output follows: only ever replace an
earlier output of the same kind (or an empty folder), and clean up the temporaries an
earlier, killed run of the same command left beside its target.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fer_keras.errors import FerError

# tempfile.mkstemp/mkdtemp name their files <prefix><8 of these characters><suffix>.
_RANDOM_PART = r"[a-z0-9_]{8}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    The temporary file lives in the same folder so the final ``os.replace`` is an
    atomic rename on POSIX. ``suffix`` keeps extensions that writers insist on
    (Keras refuses to save a model to a name not ending in ``.keras``). A killed
    process leaves ``.<name>.<8 random characters><suffix or .tmp>`` behind; see
    :func:`remove_stale_temps`.

    Example:
        >>> with atomic_path("runs/x/last.keras", suffix=".keras") as tmp:
        ...     model.save(tmp)  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            # mkstemp creates 0600 files; give the result the usual umask-based mode.
            os.chmod(tmp_path, 0o666 & ~current_umask())
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Like :func:`atomic_path`, for a folder: build it beside ``path``, then swap it in whole.

    The caller must have checked that whatever is at ``path`` may be replaced
    (:func:`check_replaceable`). A folder cannot be renamed over a non-empty one, so
    the old one is first renamed to ``.<name>.<random>.old``: a process killed between
    the two renames leaves ``path`` missing and the old folder there, which
    :func:`remove_stale_temps` puts back.

    Example:
        >>> with atomic_dir("models/best_model") as tmp:
        ...     (tmp / "metadata.json").write_text("{}")  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes it 0700; outputs are for everyone to read
    old = tmp.with_name(tmp.name + ".old")
    try:
        yield tmp
        if path.exists() or path.is_symlink():
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if old.exists():
                os.replace(old, path)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically.

    Raises:
        ValueError: ``data`` holds NaN or infinity (bare ``NaN`` is not JSON; the
            message names the first such field). Nothing is written then.
    """
    try:
        text = json.dumps(data, indent=2, sort_keys=False, allow_nan=False, default=_json_default)
    except ValueError as err:
        where = _non_finite(data, "") or "a value"
        raise ValueError(f"{path}: {where} is not a finite number; JSON has no NaN or infinity ({err})") from None
    write_text_atomic(path, text + "\n")


def _json_default(value: Any) -> Any:
    # numpy scalars and paths show up in configs and metrics.
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _non_finite(value: Any, where: str) -> str | None:
    """The dotted path of the first NaN or infinity in ``value`` (numpy scalars included), else ``None``."""
    if isinstance(value, dict):
        found = (_non_finite(v, f"{where}.{k}" if where else str(k)) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        found = (_non_finite(v, f"{where}[{i}]") for i, v in enumerate(value))
    else:
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            with contextlib.suppress(Exception):
                value = value.item()
        is_bad = isinstance(value, float) and not math.isfinite(value)
        return (where or "the value") if is_bad else None
    return next((w for w in found if w), None)


def check_replaceable(path: str | os.PathLike, is_ours: Callable[[Path], bool], what: str) -> None:
    """Refuse to replace anything at ``path`` but an earlier output of ours or an empty folder.

    Replacing a folder deletes it, so a command that writes a whole folder calls this
    before doing any work (validate first).

    Args:
        path: the folder about to be replaced.
        is_ours: recognises an earlier output (e.g. by its metadata file).
        what: what ``is_ours`` recognises, for the message (``"a model folder"``).

    Raises:
        FerError: ``path`` is a file, or a non-empty folder ``is_ours`` does not recognise.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink() and (is_ours(path) or not any(path.iterdir())):
        return
    kind = "a file" if not path.is_dir() else f"not {what}"
    raise FerError(f"{path}: exists and is {kind}; refusing to replace it (pick another --out)")


def remove_stale_temps(
    path: str | os.PathLike, suffix: str = "", is_ours_dir: Callable[[Path], bool] | None = None
) -> list[Path]:
    """Remove what earlier, killed atomic writes of ``path`` left beside it.

    Only names the writers of this module create for this very target are touched:
    files ``.<name>.<8 random characters><suffix or .tmp>`` (:func:`atomic_path`) and,
    with ``is_ours_dir``, folders ``.<name>.<8 random>`` and ``.<name>.<8 random>.old``
    (:func:`atomic_dir`; also the older fixed ``.<name>.old``). A folder goes only when
    it is empty or ``is_ours_dir`` recognises its content; an ``.old`` folder while
    ``path`` itself is missing is the previous output of a swap killed halfway, and is
    put back instead. Assumes no other process writes the same target at the same
    time: its temporaries would look stale too.

    Returns:
        The entries removed (or put back).
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    prefix = re.escape(f".{path.name}.")
    file_re = re.compile(prefix + _RANDOM_PART + re.escape(suffix or ".tmp"))
    # Staging folder, the old output moved aside by atomic_dir, or the fixed name older versions used.
    dir_re = re.compile(prefix + f"(?:{_RANDOM_PART}(?P<old>\\.old)?|(?P<legacy>old))")
    done = []
    for entry in sorted(path.parent.iterdir()):
        if entry.is_symlink():
            continue
        if entry.is_file() and file_re.fullmatch(entry.name):
            entry.unlink(missing_ok=True)
            done.append(entry)
            continue
        match = dir_re.fullmatch(entry.name) if is_ours_dir is not None and entry.is_dir() else None
        if match is None or (any(entry.iterdir()) and not is_ours_dir(entry)):
            continue
        if (match["old"] or match["legacy"]) and not path.exists() and not path.is_symlink():
            os.replace(entry, path)
        else:
            shutil.rmtree(entry)
        done.append(entry)
    return done
