"""One parameter-validation path, used by every public entry point.

Each ``check_*`` returns the value when valid and raises :class:`FerError` with
the template ``<where>: '<name>' must be <rule>; got <value!r>`` otherwise.
``describe_*`` variants return the message (or ``None``) so that callers which
collect *all* problems in one pass (spec and recipe loaders) use the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fer_keras.errors import FerError, did_you_mean, problem


def must(name: str, rule: str, value: Any) -> str:
    """Format the standard rule violation ``'name' must be <rule>; got <value>``."""
    return f"'{name}' must be {rule}; got {value!r}"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def describe_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> str | None:
    if not is_int(value):
        return must(name, "an integer", value)
    if minimum is not None and value < minimum:
        return must(name, f">= {minimum}", value)
    if maximum is not None and value > maximum:
        return must(name, f"<= {maximum}", value)
    return None


def describe_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> str | None:
    if not is_number(value):
        return must(name, "a number", value)
    bad_low = low is not None and (value < low if low_inclusive else value <= low)
    bad_high = high is not None and (value > high if high_inclusive else value >= high)
    if bad_low or bad_high:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        return must(name, f"in {left}{lo}, {hi}{right}", value)
    return None


def describe_choice(name: str, value: Any, choices: Iterable[str]) -> str | None:
    choices = list(choices)
    if value in choices:
        return None
    hint = did_you_mean(value, choices) if isinstance(value, str) else ""
    listed = ", ".join(repr(c) for c in choices)
    return must(name, f"one of {listed}", value) + hint


def describe_bool(name: str, value: Any) -> str | None:
    return None if isinstance(value, bool) else must(name, "true or false", value)


def _raise(where: str, message: str | None) -> None:
    if message is not None:
        raise FerError(problem(where, message))


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None, where: str = "") -> int:
    """Validate an integer argument. Example: ``check_int("epochs", 5, minimum=1)``."""
    _raise(where, describe_int(name, value, minimum, maximum))
    return value


def check_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    where: str = "",
) -> float:
    """Validate a number argument. Example: ``check_float("rate", 0.5, 0, 1, high_inclusive=False)``."""
    _raise(where, describe_float(name, value, low, high, low_inclusive, high_inclusive))
    return float(value)


def check_choice(name: str, value: Any, choices: Iterable[str], where: str = "") -> str:
    """Validate a choice. Example: ``check_choice("color_mode", "rgb", ["rgb", "grayscale"])``."""
    _raise(where, describe_choice(name, value, choices))
    return value


def check_bool(name: str, value: Any, where: str = "") -> bool:
    _raise(where, describe_bool(name, value))
    return value
