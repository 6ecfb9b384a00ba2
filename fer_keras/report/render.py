"""Rendering the report context into one self-contained HTML page (Jinja2, autoescaped)."""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

from fer_keras.templating import template_environment

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "report.html.j2"


def _missing(value: Any) -> bool:
    """None, NaN (any float type) or pandas' NA."""
    if value is None or type(value).__name__ == "NAType":
        return True
    try:
        return math.isnan(value)
    except TypeError:
        return False


def fmt_num(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals; ``—`` for missing values (None, NaN, pandas NA)."""
    if _missing(value):
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer() and digits == 0):
        return f"{int(value):,}"
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def fmt_pct(value: Any, digits: int = 1) -> str:
    return "—" if _missing(value) else f"{100 * float(value):.{digits}f}%"


def fmt_signed(value: Any, digits: int = 4) -> str:
    return "—" if _missing(value) else f"{float(value):+.{digits}f}"


def fmt_duration(seconds: Any) -> str:
    if _missing(seconds):
        return "—"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def render_html(context: dict[str, Any]) -> str:
    """Render ``templates/report.html.j2`` with the report context."""
    env = template_environment(TEMPLATE_DIR)
    env.filters.update(num=fmt_num, pct=fmt_pct, signed=fmt_signed, duration=fmt_duration, missing=_missing)
    env.tests["missing"] = _missing
    return env.get_template(TEMPLATE).render(**context)
