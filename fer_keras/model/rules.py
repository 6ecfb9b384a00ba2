"""Field rules of the spec's layer table (:data:`fer_keras.model.spec.LAYER_TYPES`).

Each :class:`FieldRule` checks one field of a layer and carries the text that both its
error message and ``fer-spec types`` show. Sizes (filters, units, kernel and pool sizes,
padding, seeds) have limits from :mod:`fer_keras.validation`; a value above one is
reported as ``<field>: got X; limit Y``. No TensorFlow here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fer_keras.errors import did_you_mean
from fer_keras.validation import (
    MAX_CHANNELS,
    MAX_SEED,
    MAX_WINDOW,
    describe_bool,
    describe_choice,
    describe_float,
    is_int,
    is_number,
    must,
    shown,
)

NUM_CLASSES = "num_classes"

# String activations that Keras resolves to a function of one tensor (no extra arguments).
ACTIVATIONS = (
    "celu", "elu", "exponential", "gelu", "hard_shrink", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh",
    "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish", "relu", "relu6", "selu", "sigmoid", "silu",
    "soft_shrink", "softmax", "softplus", "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus",
    "swish", "tanh", "tanh_shrink",
)  # fmt: skip
# String initializers usable for any kernel shape without extra arguments.
INITIALIZERS = (
    "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform", "ones",
    "orthogonal", "random_normal", "random_uniform", "truncated_normal", "variance_scaling", "zeros",
)  # fmt: skip
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


# --- field rules: each returns the problem message (``'<field>' must be ...; got ...``) or None ---

Rule = Callable[[str, Any], "str | None"]


@dataclass(frozen=True)
class FieldRule:
    """One field of one layer type: its rule (for messages and ``fer-spec types``) and checker."""

    text: str
    check: Rule


def _rule(text: str, ok: Callable[[Any], bool], hints: tuple[str, ...] = ()) -> FieldRule:
    def check(name: str, value: Any) -> str | None:
        if ok(value):
            return None
        hint = did_you_mean(value, hints) if hints and isinstance(value, str) else ""
        return must(name, text, value) + hint

    return FieldRule(text, check)


def _is_pos(v: Any) -> bool:
    return is_int(v) and v >= 1


def _is_nonneg(v: Any) -> bool:
    return is_int(v) and v >= 0


def _sized(text: str, ok: Callable[[Any], bool], limit: int, pair: bool = False, hints: tuple[str, ...] = ()):
    """Integers (or, with ``pair``, lists of 2) that ``ok`` accepts, each at most ``limit``.

    A wrong type is ``'name' must be <text>; got X``; too large is ``name: got X; limit Y``.
    ``hints`` are strings also accepted (``"num_classes"``) and suggested for typos.
    """

    def check(name: str, value: Any) -> str | None:
        if isinstance(value, str) and value in hints:
            return None
        values = value if pair and isinstance(value, list) and len(value) == 2 else [value]
        if (isinstance(value, list) and not pair) or not all(ok(v) for v in values):
            hint = did_you_mean(value, hints) if hints and isinstance(value, str) else ""
            return must(name, text, value) + hint
        if max(values) <= limit:
            return None
        return f"{name}: got {shown(value) if pair and isinstance(value, list) else f'{value:,}'}; limit {limit:,}"

    return FieldRule(f"{text}; at most {limit:,}{' each' if pair else ''}", check)


def _is_regularizer(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and 0 < len(v) <= 2
        and set(v) <= {"l1", "l2"}
        and all(is_number(x) and x >= 0 for x in v.values())
    )


def _choice(choices: tuple[str, ...]) -> FieldRule:
    return FieldRule("one of " + ", ".join(repr(c) for c in choices), lambda n, v: describe_choice(n, v, choices))


def _float(low: float, high: float, high_inclusive: bool) -> FieldRule:
    text = f"in [{low:g}, {high:g}{']' if high_inclusive else ')'}"
    return FieldRule(text, lambda n, v: describe_float(n, v, low, high, high_inclusive=high_inclusive))


CHANNELS = _sized("a positive integer", _is_pos, MAX_CHANNELS)
UNITS = _sized(f'a positive integer or "{NUM_CLASSES}"', _is_pos, MAX_CHANNELS, hints=(NUM_CLASSES,))
SIZE = _sized("a positive integer or a list of 2 positive integers", _is_pos, MAX_WINDOW, pair=True)
PADDING_SIZE = _sized("a non-negative integer or a list of 2 non-negative integers", _is_nonneg, MAX_WINDOW, pair=True)
PADDING = _choice(("valid", "same"))
ACTIVATION = _rule(
    "a Keras activation name such as 'relu' (see `fer-spec types`)", ACTIVATIONS.__contains__, ACTIVATIONS
)
INITIALIZER = _rule(
    "a Keras initializer name such as 'he_normal' (see `fer-spec types`)", INITIALIZERS.__contains__, INITIALIZERS
)
REGULARIZER = _rule('{"l1": x}, {"l2": x} or {"l1": x, "l2": y} with x, y >= 0', _is_regularizer)
BOOL = FieldRule("true or false", describe_bool)
RATE = _float(0, 1, high_inclusive=False)
UNIT_INTERVAL = _float(0, 1, high_inclusive=True)
EPSILON = _rule("a number > 0", lambda v: is_number(v) and v > 0)
NON_NEGATIVE = _rule("a number >= 0", lambda v: is_number(v) and v >= 0)
NUMBER = _rule("a number", is_number)
AXIS = _rule("a non-zero integer (-1 is the channel axis)", lambda v: is_int(v) and v != 0)
AXES = _rule(
    "a non-zero integer or a list of 1 to 3 of them",
    lambda v: (
        (is_int(v) and v != 0) or (isinstance(v, list) and 1 <= len(v) <= 3 and all(is_int(x) and x != 0 for x in v))
    ),
)
SEED = _sized("a non-negative integer", _is_nonneg, MAX_SEED)
NAME = _rule(
    "a string of letters, digits, '_', '-' or '.' (starting with a letter or digit)",
    lambda v: isinstance(v, str) and _NAME_RE.fullmatch(v) is not None,
)
