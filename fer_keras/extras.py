"""Optional dependencies: which extra of ``pip install fer_keras[...]`` brings which library.

The core install (``pip install fer_keras``) runs the shipped ONNX model without TensorFlow;
training, serving, Ray, tracking and video need extras (pyproject.toml lists them). A command
that reaches a library of a missing extra says, in one line, which extra to install:
``fer-train needs the [train] extra (No module named 'tensorflow'): pip install 'fer_keras[train]'``.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from fer_keras.errors import FerError

EXTRAS = ("serve", "train", "ray", "track", "video", "dev")
# The one message template for a missing extra (tests check it names the extra and the install command).
MISSING_EXTRA = "{who} needs the [{extra}] extra ({reason}): pip install 'fer_keras[{extra}]'"


def _who() -> str:
    """The running command's name (``fer-train``) or, from Python, ``fer_keras``."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name.startswith("fer-") else "fer_keras"


def missing_extra_message(extra: str, reason: str, who: str | None = None) -> str:
    """The one-line message for a missing extra (the template :data:`MISSING_EXTRA`).

    Args:
        extra: the extra's name, one of :data:`EXTRAS`.
        reason: what is missing, e.g. ``No module named 'tensorflow'``.
        who: the command or feature that needs it; default the running ``fer-*`` command.

    Example:
        >>> missing_extra_message("train", "No module named 'keras'", "fer-train")
        "fer-train needs the [train] extra (No module named 'keras'): pip install 'fer_keras[train]'"
    """
    return MISSING_EXTRA.format(who=who or _who(), extra=extra, reason=reason)


def require(module: str, extra: str, who: str | None = None) -> ModuleType:
    """Import and return ``module``, or raise a :class:`FerError` naming the extra that installs it.

    Only a missing ``module`` (or a missing package it is part of) becomes the one-line message;
    any other import failure (a broken install) is raised as it is, since reinstalling the extra
    would not explain it.

    Args:
        module: the dotted module name, e.g. ``"tensorflow"`` or ``"albumentations"``.
        extra: the extra of pyproject.toml that installs it, one of :data:`EXTRAS`.
        who: the command or feature that needs it; default the running ``fer-*`` command.

    Returns:
        The imported module.

    Raises:
        FerError: ``module`` is not installed.

    Example:
        >>> require("json", "train").__name__
        'json'
    """
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; expected one of {', '.join(EXTRAS)}")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        parts = module.split(".")
        if err.name not in {".".join(parts[: i + 1]) for i in range(len(parts))}:
            raise  # a dependency *of* the module is missing: a broken install, not a missing extra
        raise FerError(missing_extra_message(extra, f"No module named '{err.name}'", who)) from err
