"""The one user-facing error type and its message template.

Library code raises :class:`FerError` for anything a user can fix (bad file, bad
field, bad value). The CLI turns it into a one-line message and exit code 1;
anything else is a bug and keeps its traceback under ``--debug``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FerError(Exception):
    """A problem the user can fix. ``str(err)`` is the full message.

    Args:
        problems: one message or several; several are reported one per line.
    """

    def __init__(self, problems: str | Iterable[str]):
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


def problem(where: str, message: str) -> str:
    """Format one problem as ``<where>: <message>`` (the project's error template)."""
    return f"{where}: {message}" if where else message


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"; did you mean '{close[0]}'?" if close else ""
