"""SHA-256 digests: of a file's bytes, and of JSON data in canonical form.

One definition of each, so that every digest fer_keras records (quarantine journals,
model versions, the ``fer`` peer's provenance, spec and recipe hashes) is computed the
same way and a recorded digest can be checked by any module.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

# Files are read in blocks of this size: constant memory for any file size.
_BLOCK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB blocks.

    Raises:
        OSError: the file cannot be opened or read.

    Example:
        >>> sha256_file("models/best_model/model.keras")  # doctest: +SKIP
        '3f1c...'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(data: Any, *, ensure_ascii: bool) -> str:
    """The hex SHA-256 of ``data`` as canonical JSON (sorted keys, no whitespace, UTF-8).

    Args:
        data: JSON-serialisable data.
        ensure_ascii: ``json.dumps``'s flag. It changes the digest of any non-ASCII text,
            so each caller keeps the value its recorded digests were made with (spec
            files: ``False``; balancing recipes: ``True``).

    Example:
        >>> sha256_json({"b": 1, "a": [2]}, ensure_ascii=True)[:12]
        '63c9663de90e'
    """
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=ensure_ascii)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
