"""The reaction report's figures as inline SVG strings (no matplotlib, no network).

Plain SVG keeps the report in the core install (fer-reactions needs no ``[train]``
extra for its report), makes the page scale crisply, and lets the browser test find
every figure and every emotion's area by CSS class. Each function returns one
``<svg>`` element; all text in it is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

# The same colours as annotated photos and the fer-serve page (fer_keras.inference.predict.PALETTE).
from fer_keras.inference.predict import PALETTE

OTHER_COLOUR = "#e377c2"
FONT = 'font-family="system-ui, sans-serif" font-size="11"'
Sample = tuple[float, Mapping[str, float]]


def colour(emotion: str) -> str:
    return PALETTE.get(emotion, OTHER_COLOUR)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def time_label(seconds: float) -> str:
    """``75.5`` -> ``1:15.5``; under a minute plain seconds (``12 s``)."""
    if seconds < 60:
        return f"{_num(seconds)} s"
    minutes, rest = divmod(round(seconds, 1), 60)
    return f"{int(minutes)}:{int(rest):02d}" if float(rest).is_integer() else f"{int(minutes)}:{rest:04.1f}"


def _nice_step(span: float, target: int = 8) -> float:
    raw = max(span, 1e-9) / target
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _runs(samples: Sequence[Sample], step: float) -> list[list[Sample]]:
    """Split samples where the gap is over 2.5 sampling steps: no area is drawn across a face-less stretch."""
    runs: list[list[Sample]] = []
    for sample in samples:
        if runs and sample[0] - runs[-1][-1][0] <= 2.5 * step:
            runs[-1].append(sample)
        else:
            runs.append([sample])
    return runs


def _median_step(times: Sequence[float]) -> float:
    gaps = sorted(b - a for a, b in zip(times, times[1:]) if b > a)
    return gaps[len(gaps) // 2] if gaps else 0.2


def timeline_svg(
    samples: Sequence[Sample],
    emotions: Sequence[str],
    *,
    duration: float | None = None,
    segments: Sequence[Mapping] = (),
    label: str = "",
    width: int = 880,
    height: int = 230,
) -> str:
    """A stacked-area chart of the emotion probabilities over time, ad segments shaded and named.

    Args:
        samples: ``(time_s, {emotion: probability})`` in time order (one face track).
        emotions: the stacking order (bottom first) and the emotions drawn.
        duration: the x axis length in seconds (default: the last sample's time).
        segments: ``{"name", "start_s", "end_s"}`` to shade.
        label: the accessible name of the chart.
    """
    left, right, top, bottom = 44, 10, 20, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    end = max([duration or 0.0] + [t for t, _ in samples] + [float(s.get("end_s") or 0) for s in segments]) or 1.0
    x = lambda t: left + plot_w * min(max(t, 0.0), end) / end  # noqa: E731
    y = lambda p: top + plot_h * (1.0 - min(max(p, 0.0), 1.0))  # noqa: E731
    out = [
        f'<svg class="fig timeline" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label or "emotion timeline")}" xmlns="http://www.w3.org/2000/svg" {FONT}>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for i, seg in enumerate(segments):
        x0, x1 = x(float(seg.get("start_s") or 0)), x(float(seg.get("end_s") or 0))
        out.append(
            f'<g class="segment"><rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 0):.1f}" height="{plot_h}" '
            f'fill="{"#000" if i % 2 else "#555"}" fill-opacity="0.07" stroke="#555" stroke-dasharray="4 3"/>'
            f'<text x="{(x0 + x1) / 2:.1f}" y="{top - 6}" text-anchor="middle" fill="#333">'
            f"{escape(str(seg.get('name', '')))}</text></g>"
        )
    step = _median_step([t for t, _ in samples])
    for run in _runs(samples, step):
        if len(run) == 1:  # one lone sample: a bar one sampling step wide
            run = [(run[0][0] - step / 2, run[0][1]), (run[0][0] + step / 2, run[0][1])]
        below = [0.0] * len(run)
        for emotion in emotions:
            above = [b + float(p.get(emotion, 0.0)) for b, (_, p) in zip(below, run)]
            upper = " ".join(f"{x(t):.1f},{y(v):.1f}" for (t, _), v in zip(run, above))
            lower = " ".join(f"{x(t):.1f},{y(v):.1f}" for (t, _), v in reversed(list(zip(run, below))))
            out.append(
                f'<polygon class="area" data-emotion="{escape(emotion)}" fill="{colour(emotion)}" '
                f'fill-opacity="0.85" points="{upper} {lower}"><title>{escape(emotion)}</title></polygon>'
            )
            below = above
    for p in (0.0, 0.5, 1.0):
        out.append(f'<text x="{left - 4}" y="{y(p) + 4:.1f}" text-anchor="end" fill="#555">{int(p * 100)}%</text>')
    tick = _nice_step(end)
    t = 0.0
    while t <= end + 1e-9:
        out.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" stroke="#555"/>'
            f'<text x="{x(t):.1f}" y="{height - 8}" text-anchor="middle" fill="#555">{escape(time_label(t))}</text>'
        )
        t += tick
    if not samples:
        out.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" fill="#888">'
            "no face was found in this video</text>"
        )
    out.append("</svg>")
    return "".join(out)


def bars_svg(values: Mapping[str, float], emotions: Sequence[str], *, label: str = "", width: int = 420) -> str:
    """One horizontal bar per emotion (values are fractions 0–1), with the percentage written beside it."""
    row, name_w, value_w = 22, 70, 50
    height = row * len(emotions) + 6
    bar_w = width - name_w - value_w
    out = [
        f'<svg class="fig bars" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label or "emotion distribution")}" xmlns="http://www.w3.org/2000/svg" {FONT}>'
    ]
    top = max(values.values(), default=0.0)
    for i, emotion in enumerate(emotions):
        value = float(values.get(emotion, 0.0) or 0.0)
        y0 = 3 + i * row
        weight = ' font-weight="700"' if value == top and value > 0 else ""
        out.append(
            f'<text x="{name_w - 6}" y="{y0 + 14}" text-anchor="end" fill="#333"{weight}>{escape(emotion)}</text>'
            f'<rect x="{name_w}" y="{y0 + 3}" width="{bar_w}" height="{row - 8}" fill="#eef1f5"/>'
            f'<rect class="bar" data-emotion="{escape(emotion)}" x="{name_w}" y="{y0 + 3}" '
            f'width="{bar_w * min(max(value, 0.0), 1.0):.1f}" height="{row - 8}" fill="{colour(emotion)}"/>'
            f'<text x="{width - 4}" y="{y0 + 14}" text-anchor="end" fill="#333"{weight}>{100 * value:.1f}%</text>'
        )
    out.append("</svg>")
    return "".join(out)


def stacked_rows_svg(
    rows: Sequence[tuple[str, Mapping[str, float]]], emotions: Sequence[str], *, label: str = ""
) -> str:
    """One 100% bar per row (a video, photo set or group), split by each emotion's share: side-by-side comparison."""
    row, name_w, bar_w = 28, 180, 620
    width, height = name_w + bar_w + 10, row * len(rows) + 8
    out = [
        f'<svg class="fig comparison" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label or "comparison")}" xmlns="http://www.w3.org/2000/svg" {FONT}>'
    ]
    for i, (name, share) in enumerate(rows):
        y0 = 4 + i * row
        shown = name if len(name) <= 28 else name[:27] + "…"
        out.append(
            f'<text x="{name_w - 8}" y="{y0 + 17}" text-anchor="end" fill="#333">{escape(shown)}'
            f"<title>{escape(name)}</title></text>"
        )
        total = sum(max(float(share.get(e, 0.0) or 0.0), 0.0) for e in emotions) or 1.0
        x0 = float(name_w)
        for emotion in emotions:
            w = bar_w * max(float(share.get(emotion, 0.0) or 0.0), 0.0) / total
            if w <= 0:
                continue
            text = f"{escape(emotion)} {100 * w / bar_w:.0f}%"
            out.append(
                f'<rect class="bar" data-emotion="{escape(emotion)}" x="{x0:.1f}" y="{y0}" width="{w:.1f}" '
                f'height="{row - 6}" fill="{colour(emotion)}"><title>{text}</title></rect>'
            )
            if w > 44:  # label the parts wide enough to hold one
                out.append(
                    f'<text x="{x0 + w / 2:.1f}" y="{y0 + 15}" text-anchor="middle" fill="#fff">'
                    f"{100 * w / bar_w:.0f}%</text>"
                )
            x0 += w
    out.append("</svg>")
    return "".join(out)
