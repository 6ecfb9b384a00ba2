"""The process environment fer_keras runs in: quiet TensorFlow logs, no albumentations update check.

TensorFlow and albumentations read these variables once, when they are first
imported, so :func:`quiet_environment` runs before that: the commands call it in
``fer_keras/cli/_common.py``, the benchmarks in ``benchmarks/_bench.py`` and the
tests in ``tests/conftest.py``.
"""

from __future__ import annotations

import os

QUIET_ENVIRONMENT: dict[str, str] = {
    # TensorFlow's C++ log level: 2 hides INFO and WARNING lines (oneDNN and CPU-feature notices), keeps errors.
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # albumentations asks PyPI for a newer release on import; fer_keras needs no network at run time.
    "NO_ALBUMENTATIONS_UPDATE": "1",
}


def quiet_environment() -> None:
    """Set :data:`QUIET_ENVIRONMENT` in ``os.environ``, keeping any value already set.

    A value set by the user wins, so ``TF_CPP_MIN_LOG_LEVEL=0 fer-train ...`` still
    shows TensorFlow's log when debugging.

    Example:
        >>> quiet_environment()
        >>> "NO_ALBUMENTATIONS_UPDATE" in os.environ
        True
    """
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
