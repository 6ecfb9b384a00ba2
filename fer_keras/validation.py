"""One parameter-validation path, used by every public entry point.

Each ``check_*`` returns the value when valid and raises :class:`FerError` with
the template ``<where>: '<name>' must be <rule>; got <value!r>`` otherwise.
``describe_*`` variants return the message (or ``None``) so that callers which
collect *all* problems in one pass (spec, grid, config and recipe loaders) use the same rules.

Every size limit on user input is a ``MAX_*`` constant below, and a value above
one is reported as ``<where>: <field>: got X; limit Y``. Numbers must be finite:
``NaN``, ``Infinity``, ``1e999`` and ``true`` are never numbers. JSON input files
are read by :func:`read_json_file`, which turns every way a file can be unreadable
into one :class:`FerError` line naming the file.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

from fer_keras.errors import FerError, did_you_mean, problem

# --- limits on user input (listed in the README, "Limits") ---

MAX_JSON_BYTES = 1_048_576  # size of a spec, grid, config or recipe file, read before parsing
MAX_JSON_DEPTH = 64  # nesting of arrays and objects in those files
MAX_LAYERS = 1_000  # layers of an architecture spec
MAX_CHANNELS = 65_536  # filters, units, groups and depth_multiplier of a layer
MAX_WINDOW = 1_024  # kernel_size, pool_size, strides, dilation_rate and ZeroPadding2D padding, per dimension
MAX_CLASSES = 1_000  # classes of a model (num_classes), classes of a recipe's per-class target
MAX_PARAMS = 200_000_000  # estimated parameters of a model (800 MB as float32)
MAX_ACTIVATION_BYTES = 1_073_741_824  # estimated float32 activations of one image (1 GiB)
MAX_GRID_RUNS = 10_000  # runs of one grid, counted from the axis sizes before expanding
MAX_EPOCHS = 10_000  # epochs, warmup_epochs, early_stopping and reduce_lr patience
MAX_TARGET_PER_CLASS = 100_000  # a recipe's train images per class
MAX_IMAGES = 1_000_000  # a balanced train split in total; precise_bn images
MAX_SEED = 2**32 - 1  # random seeds (numpy's range)
MAX_THREADS = 1_024  # threads and worker processes
MAX_LEARNING_RATE = 10.0  # learning_rate is in (0, 10]
MAX_NAME_LENGTH = 200  # run names (history/<name>_history.json must stay under 255 bytes)
MAX_PATH_LENGTH = 4_096  # paths in config, grid and recipe files
MAX_CSV_LINE_CHARS = 131_072  # a line of an imported CSV (FER2013 rows are ~9,000); also csv's field limit
MAX_SHOWN = 200  # characters of a value quoted in a message

_STEM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
_SUFFIX_RE = re.compile(r"[A-Za-z0-9_.+-]*")
STEM_RULE = "a file-name stem (letters, digits, '_', '-', '+', '.'; starting with a letter or digit; no '..')"
SUFFIX_RULE = "letters, digits, '_', '-', '+' or '.' (no '..')"


def shown(value: Any) -> str:
    """``repr(value)`` cut to :data:`MAX_SHOWN` characters, so that a message stays one short line."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print (sys.get_int_max_str_digits)
        return f"an integer of about {int(value.bit_length() * math.log10(2)):,} digits"
    return clip(text)


def unknown_fields(where: str, keys: Iterable[Any], known: Iterable[str]) -> list[str]:
    """One problem line per key of ``keys`` that is not in ``known``, with a "did you mean" hint.

    The one wording for unknown fields of every JSON file (spec, grid, config, recipe,
    augmentation); keys come from user files, so they are shown escaped and cut.
    """
    known = list(known)
    return [
        problem(where, f"unknown field {shown(key)}{did_you_mean(key, known) if isinstance(key, str) else ''}")
        for key in keys
        if key not in known
    ]


def clip(text: str) -> str:
    """``text`` cut to :data:`MAX_SHOWN` characters (ending in ``...`` when cut)."""
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def field_name(name: Any) -> str:
    """A field name as a message shows it: as is when short and printable, else escaped and cut.

    Field names can come from the file itself (a grid axis, a recipe's class), so a newline
    or a megabyte of text in one must not break the one-line message.
    """
    text = name if isinstance(name, str) else str(name)
    if text.isprintable() and len(text) <= 80:
        return text
    return clip(text.encode("unicode_escape").decode("ascii"))


def must(name: str, rule: str, value: Any) -> str:
    """Format the standard rule violation ``'name' must be <rule>; got <value>``."""
    return f"'{field_name(name)}' must be {rule}; got {shown(value)}"


def _number_text(value: Any) -> str:
    if is_int(value):
        try:
            return f"{value:,}"
        except ValueError:
            return shown(value)
    return f"{value:g}" if isinstance(value, float) else shown(value)


def describe_limit(name: str, value: int | float, limit: int | float, unit: str = "") -> str | None:
    """``<name>: got X; limit Y`` when ``value`` is above ``limit``, else ``None``.

    Example:
        >>> describe_limit("epochs", 20000, MAX_EPOCHS)
        'epochs: got 20,000; limit 10,000'
    """
    if value <= limit:
        return None
    return f"{field_name(name)}: got {_number_text(value)}{unit}; limit {_number_text(limit)}{unit}"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool, NaN, an infinity or an int too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def describe_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> str | None:
    if not is_int(value):
        return must(name, "an integer", value)
    if minimum is not None and value < minimum:
        return must(name, f">= {minimum}", value)
    if maximum is not None and value > maximum:
        return must(name, f"<= {maximum}", value)
    return None


def describe_count(name: str, value: Any, limit: int, minimum: int = 1) -> str | None:
    """An integer >= ``minimum``; above ``limit`` it is reported as ``name: got X; limit Y``."""
    return describe_int(name, value, minimum) or describe_limit(name, value, limit)


def describe_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> str | None:
    if not is_number(value):
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        return must(name, "a finite number" if numeric else "a number", value)
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


def describe_string(name: str, value: Any) -> str | None:
    return None if isinstance(value, str) else must(name, "a string", value)


def describe_path(name: str, value: Any) -> str | None:
    """A non-empty path string without NUL characters, at most :data:`MAX_PATH_LENGTH` characters."""
    if not isinstance(value, str) or not value:
        return must(name, "a non-empty path", value)
    if "\0" in value:
        return must(name, "a path without NUL characters", value)
    return describe_limit(name, len(value), MAX_PATH_LENGTH, " characters")


def describe_stem(name: str, value: Any, suffix: bool = False) -> str | None:
    """A safe file-name stem (:data:`STEM_RULE`), at most :data:`MAX_NAME_LENGTH` characters.

    ``suffix=True`` checks a part appended to a stem instead (:data:`SUFFIX_RULE`, may be empty).
    """
    pattern, rule = (_SUFFIX_RE, SUFFIX_RULE) if suffix else (_STEM_RE, STEM_RULE)
    if isinstance(value, str) and len(value) > MAX_NAME_LENGTH:
        return describe_limit(name, len(value), MAX_NAME_LENGTH, " characters")
    if not isinstance(value, str) or not pattern.fullmatch(value) or ".." in value:
        return must(name, rule, value)
    return None


def paths_overlap(first: str, second: str) -> bool:
    """True when two paths are the same folder or one is inside the other (lexically, from the cwd)."""
    a, b = os.path.abspath(first), os.path.abspath(second)
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep) or b.startswith(a.rstrip(os.sep) + os.sep)


def _raise(where: str, message: str | None) -> None:
    if message is not None:
        raise FerError(problem(where, message))


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None, where: str = "") -> int:
    """Validate an integer argument. Example: ``check_int("epochs", 5, minimum=1)``."""
    _raise(where, describe_int(name, value, minimum, maximum))
    return value


def check_count(name: str, value: Any, limit: int, minimum: int = 1, where: str = "") -> int:
    """Validate an integer with a size limit. Example: ``check_count("--workers", 4, MAX_THREADS)``."""
    _raise(where, describe_count(name, value, limit, minimum))
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


# --- JSON input files ---


class JsonConstant:
    """``NaN``, ``Infinity`` or ``-Infinity`` in a JSON file: a value no rule accepts, reported with its field."""

    def __init__(self, token: str):
        self.token = token

    def __repr__(self) -> str:
        return self.token


def read_json_file(
    path: str | os.PathLike,
    kind: str = "JSON",
    max_bytes: int = MAX_JSON_BYTES,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """Parse one JSON input file (spec, grid, config, recipe) without ever failing otherwise than by FerError.

    At most ``max_bytes`` are read; the text must be UTF-8; ``NaN``/``Infinity`` become
    :class:`JsonConstant`; nesting deeper than :data:`MAX_JSON_DEPTH` and integers longer
    than Python converts are refused. Every failure is one line ``<path>: <problem>``.

    Raises:
        FerError: a missing, unreadable, oversized, non-UTF-8, invalid or too deeply nested file.

    Example:
        >>> read_json_file("grids/demo.json", "grid")["name"]  # doctest: +SKIP
        'demo'
    """
    where = os.fspath(path)
    if os.path.isdir(where):
        raise FerError(problem(where, f"is a folder; expected a .json {kind} file"))
    try:
        with open(where, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise FerError(problem(where, describe_limit("file size", size, max_bytes, " bytes")))
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise FerError(problem(where, "no such file")) from None
    except OSError as err:
        raise FerError(problem(where, f"cannot read: {err.strerror or err}")) from None
    if len(data) > max_bytes:
        raise FerError(problem(where, f"file size: got more than {max_bytes:,} bytes; limit {max_bytes:,} bytes"))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FerError(problem(where, "is not UTF-8 text")) from None
    try:
        value = json.loads(text, parse_constant=JsonConstant, object_pairs_hook=object_pairs_hook)
    except json.JSONDecodeError as err:
        raise FerError(problem(where, f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}")) from None
    except RecursionError:
        raise FerError(problem(where, _depth_problem(_text_depth(text)))) from None
    except ValueError:  # an integer longer than sys.get_int_max_str_digits()
        raise FerError(problem(where, _long_integer(text))) from None
    depth = json_depth(value)
    if depth > MAX_JSON_DEPTH:
        raise FerError(problem(where, _depth_problem(depth)))
    return value


def _depth_problem(depth: int) -> str:
    return describe_limit("nesting depth", depth, MAX_JSON_DEPTH) or ""


def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0, ``[]`` 1), counted without recursion."""
    deepest = 0
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _text_depth(text: str) -> int:
    # JSON text too deep for the parser: count brackets outside strings.
    depth = deepest = 0
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[{]|[\]}]', text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def _long_integer(text: str) -> str:
    limit = sys.get_int_max_str_digits()
    match = re.search(rf"\d{{{limit + 1},}}", text)
    if match is None:
        return f"invalid JSON: an integer has more than {limit:,} digits"
    line = text.count("\n", 0, match.start()) + 1
    column = match.start() - text.rfind("\n", 0, match.start())
    digits = len(match.group())
    return f"line {line}, column {column}: integer: got {digits:,} digits; limit {limit:,} digits"
