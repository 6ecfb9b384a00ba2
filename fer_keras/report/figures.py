"""The report's plots: matplotlib/seaborn figures as embedded PNG data URIs, SVG sparklines.

Every function returns a ``data:image/png;base64,...`` string (or an inline SVG
string), so the report is one self-contained file. Figures use the Agg backend, a
small dpi and are closed right after encoding: a 96-run report draws ~15 figures
plus one SVG sparkline pair per run, which keeps it well inside its time budget.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import numpy as np

DPI = 80
LABEL_W = 34  # px reserved for a sparkline's scale labels
HIGHLIGHT = "#d62728"
BASE = "#8da0cb"
TRAIN_COLOR = "#1f77b4"
VALID_COLOR = "#ff7f0e"


def plt_sns():
    """pyplot and seaborn on the Agg backend with the report's theme (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit: works headless and in threads
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper", font_scale=1.0)
    return plt, sns


def to_data_uri(fig, dpi: int = DPI, tight: bool = True) -> str:
    """Encode a figure as a PNG data URI and close it.

    ``tight`` crops to the drawn content, at the price of drawing twice; figures made
    with ``layout="constrained"`` fit themselves and pass ``tight=False``.
    """
    plt, _ = plt_sns()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_data_uri(pixels: np.ndarray, size: int = 96) -> str:
    """A ``(H, W, C)`` uint8 image as a PNG data URI, upscaled to ``size`` px (nearest: keeps pixels honest)."""
    from PIL import Image

    arr = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels
    img = Image.fromarray(np.ascontiguousarray(arr))
    img = img.resize((size, size * img.height // max(img.width, 1)), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _legend_outside(ax, last: bool, title: str | None = None) -> None:
    """One legend for a row of panels, right of the last one, so it never hides bars."""
    legend = ax.get_legend()
    if legend is None:
        return
    if not last:
        legend.remove()
        return
    handles, labels = ax.get_legend_handles_labels()
    legend.remove()
    ax.legend(handles, labels, title=title, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)


def _empty(ax, text: str = "no runs") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


# -- dataset -----------------------------------------------------------------------


def grouped_counts(counts: dict[str, dict[str, int]], title: str, hue_name: str = "split") -> str:
    """Bars of ``counts[group][class]`` with classes on x and one colour per group."""
    import pandas as pd

    plt, sns = plt_sns()
    rows = [(g, c, n) for g, per in counts.items() for c, n in per.items()]
    df = pd.DataFrame(rows, columns=[hue_name, "class", "images"])
    classes = list(dict.fromkeys(df["class"]))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(classes) + 2), 3.0))
    sns.barplot(data=df, x="class", y="images", hue=hue_name, order=classes, ax=ax)
    ax.set_title(title)
    ax.set_xlabel("")
    return to_data_uri(fig)


# -- grid --------------------------------------------------------------------------


def optimizer_batch_bars(frame) -> str:
    """Best max ``val_accuracy`` per optimizer and batch size, rgb and grayscale side by side."""
    plt, sns = plt_sns()
    data = frame[np.isfinite(frame["max_val_accuracy"].astype(float))].copy()
    data["batch_size"] = data["batch_size"].astype("Int64").astype(str)
    optimizers = sorted(data["optimizer"].dropna().unique().tolist())
    modes = ["rgb", "grayscale"] + sorted(set(data["color_mode"].dropna()) - {"rgb", "grayscale"})
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.2), sharey=True, squeeze=False)
    low = float(data["max_val_accuracy"].min()) if len(data) else 0.0
    for ax, mode in zip(axes[0], modes):
        sub = data[data["color_mode"] == mode]
        if sub.empty:
            _empty(ax, f"no {mode} runs")
        else:
            order = sorted(sub["batch_size"].unique(), key=lambda b: int(b) if b.isdigit() else 0)
            sns.barplot(
                data=sub,
                x="batch_size",
                y="max_val_accuracy",
                hue="optimizer",
                hue_order=optimizers,
                order=order,
                estimator="max",
                errorbar=None,
                ax=ax,
            )
            ax.set_ylim(max(0.0, low - 0.05), None)
        _legend_outside(ax, last=ax is axes[0][-1])
        ax.set_title(mode)
        ax.set_xlabel("batch size")
        ax.set_ylabel("max val_accuracy (best over models)")
    return to_data_uri(fig)


def val_accuracy_histogram(values: Sequence[float]) -> str:
    """Histogram of the runs' max ``val_accuracy``; the bin holding the best run is highlighted."""
    plt, _ = plt_sns()
    values = np.asarray(values, dtype=float)
    fig, ax = plt.subplots(figsize=(6.0, 3.0))
    if values.size == 0:
        _empty(ax)
        return to_data_uri(fig)
    bins = min(20, max(5, int(math.sqrt(values.size)) + 2))
    counts, edges, patches = ax.hist(values, bins=bins, color=BASE, edgecolor="white")
    top = int(np.flatnonzero(counts)[-1])
    patches[top].set_facecolor(HIGHLIGHT)
    ax.axvline(values.mean(), color="black", linestyle="--", linewidth=1, label=f"mean {values.mean():.4f}")
    ax.axvline(np.median(values), color="grey", linestyle=":", linewidth=1.2, label=f"median {np.median(values):.4f}")
    ax.set_xlabel("max val_accuracy of a run")
    ax.set_ylabel("runs")
    ax.set_title(f"highlighted: best bin [{edges[top]:.3f}, {edges[top + 1]:.3f}]")
    ax.legend(loc="upper left", fontsize=8)
    return to_data_uri(fig)


def epoch_heatmap(names: Sequence[str], curves: Sequence[np.ndarray]) -> str:
    """``val_accuracy`` per epoch (columns) for every run (rows, in the given order); blank after a run stopped.

    ``imshow`` rather than seaborn's heatmap: one image instead of 96 x 50 patches, ~10x faster.
    """
    plt, _ = plt_sns()
    epochs = max((len(c) for c in curves), default=0)
    fig_h = max(2.0, 0.13 * len(names) + 1.2)
    # Constrained layout sizes the margins for the run names in the one draw savefig does.
    fig, ax = plt.subplots(figsize=(min(14.0, 4.0 + 0.16 * epochs) + 2.5, fig_h), layout="constrained")
    if not names or epochs == 0:
        _empty(ax, "no epochs recorded")
        return to_data_uri(fig, tight=False)
    mat = np.full((len(names), epochs), np.nan)
    for i, c in enumerate(curves):
        mat[i, : len(c)] = c
    image = ax.imshow(
        np.ma.masked_invalid(mat),
        aspect="auto",
        cmap="viridis",
        interpolation="nearest",
        extent=(0.5, epochs + 0.5, len(names) - 0.5, -0.5),
    )
    ax.grid(False)
    ax.set_yticks(range(len(names)), labels=list(names), fontsize=6 if len(names) > 30 else 8)
    ax.set_xticks([e for e in range(1, epochs + 1) if e == 1 or e % 5 == 0])
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("epoch")
    fig.colorbar(image, ax=ax, label="val_accuracy", shrink=0.5 if len(names) > 20 else 1.0)
    return to_data_uri(fig, dpi=72, tight=False)


def per_model_strips(frame) -> str:
    """Each run's best value of each metric, grouped by model (min and max at a glance)."""
    plt, sns = plt_sns()
    metrics = [
        ("max_accuracy", "max accuracy"),
        ("max_val_accuracy", "max val_accuracy"),
        ("min_loss", "min loss"),
        ("min_val_loss", "min val_loss"),
    ]
    models = sorted(frame["model"].dropna().astype(str).unique().tolist())
    fig, axes = plt.subplots(1, 4, figsize=(max(10.0, 1.2 * len(models) * 4), 3.0), squeeze=False)
    for ax, (col, label) in zip(axes[0], metrics):
        sub = frame[np.isfinite(frame[col].astype(float))]
        if sub.empty:
            _empty(ax)
        else:
            sns.stripplot(data=sub, x="model", y=col, order=models, ax=ax, size=4, jitter=0.15)
            ax.tick_params(axis="x", rotation=30, labelsize=7)
        ax.set_title(label)
        ax.set_xlabel("")
        ax.set_ylabel("")
    return to_data_uri(fig)


def boxen_extremes(frame) -> str:
    """Boxen plots of the runs' highest accuracies and lowest losses, train vs validation, per model."""
    import pandas as pd

    plt, sns = plt_sns()
    parts = []
    for col, kind, split in (
        ("max_accuracy", "accuracy", "train"),
        ("max_val_accuracy", "accuracy", "validation"),
        ("min_loss", "loss", "train"),
        ("min_val_loss", "loss", "validation"),
    ):
        parts.append(
            pd.DataFrame(
                {"model": frame["model"].astype(str), "value": frame[col].astype(float), "kind": kind, "split": split}
            )
        )
    long = pd.concat(parts, ignore_index=True)
    long = long[np.isfinite(long["value"])]
    models = sorted(long["model"].unique().tolist())
    fig, axes = plt.subplots(1, 2, figsize=(max(9.0, 1.6 * len(models) * 2), 3.2), squeeze=False)
    for ax, kind, title in zip(axes[0], ("accuracy", "loss"), ("highest accuracy per run", "lowest loss per run")):
        sub = long[long["kind"] == kind]
        if sub.empty:
            _empty(ax)
        else:
            sns.boxenplot(
                data=sub, x="model", y="value", hue="split", order=models, hue_order=["train", "validation"], ax=ax
            )
            ax.tick_params(axis="x", rotation=20, labelsize=7)
            _legend_outside(ax, last=kind == "loss")
        ax.set_title(title)
        ax.set_xlabel("")
        ax.set_ylabel(kind)
    return to_data_uri(fig)


def training_curves(curves: dict[str, np.ndarray], title: str, best_epoch: int | None = None) -> str:
    """Train/validation accuracy and loss by epoch of one run."""
    plt, _ = plt_sns()
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.0))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        for key, color, label in ((metric, TRAIN_COLOR, "train"), (f"val_{metric}", VALID_COLOR, "validation")):
            y = curves.get(key, np.zeros(0))
            ax.plot(np.arange(1, len(y) + 1), y, color=color, label=label, marker="." if len(y) < 30 else None)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle=":", linewidth=1, label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    return to_data_uri(fig)


def variant_bars(table, variants: Sequence[str]) -> str:
    """Max ``val_accuracy`` of each configuration under each dataset variant (grouped bars)."""
    plt, _ = plt_sns()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(table) * len(variants) / 2 + 2), 3.4))
    x = np.arange(len(table))
    width = 0.8 / max(len(variants), 1)
    for i, variant in enumerate(variants):
        ax.bar(
            x + (i - (len(variants) - 1) / 2) * width,
            table[variant].astype(float).fillna(0).to_numpy(),
            width,
            label=variant,
        )
    ax.set_xticks(x)
    ax.set_xticklabels(table["configuration"], rotation=60, ha="right", fontsize=6)
    ax.set_ylabel("max val_accuracy")
    ax.legend(fontsize=8)
    values = table[list(variants)].astype(float).to_numpy()
    if np.isfinite(values).any():
        ax.set_ylim(max(0.0, float(np.nanmin(values)) - 0.05), None)
    return to_data_uri(fig)


# -- sparklines ----------------------------------------------------------------------


def sparkline_svg(
    series: dict[str, np.ndarray],
    colors: Sequence[str] = (TRAIN_COLOR, VALID_COLOR),
    width: int = 220,
    height: int = 56,
    title: str = "",
) -> str:
    """A tiny inline SVG line chart of a few series sharing one y scale (NaN breaks a line).

    Hand-written SVG instead of matplotlib: one per run is ~100x cheaper than a figure.
    """
    from html import escape

    pad = 3
    finite = [v[np.isfinite(v)] for v in series.values()]
    allv = np.concatenate(finite) if finite else np.zeros(0)
    longest = max((len(v) for v in series.values()), default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" class="spark">'
    ]
    parts.append(f"<title>{escape(title)}</title>")
    if allv.size == 0 or longest == 0:
        parts.append(f'<text x="{pad}" y="{height // 2}" font-size="10" fill="grey">no epochs</text></svg>')
        return "".join(parts)
    lo, hi = float(allv.min()), float(allv.max())
    span = hi - lo or 1.0
    plot_w = width - 2 * pad - LABEL_W  # the scale labels get their own strip on the right
    step = plot_w / max(longest - 1, 1)
    for (label, values), color in zip(series.items(), colors):
        segments: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if math.isfinite(v):
                segments[-1].append(f"{pad + i * step:.1f},{height - pad - (v - lo) / span * (height - 2 * pad):.1f}")
            elif segments[-1]:
                segments.append([])
        for seg in (s for s in segments if s):
            if len(seg) == 1:
                x, y = seg[0].split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="1.5" fill="{color}"/>')
            else:
                points = " ".join(seg)
                parts.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="1.3" points="{points}">'
                    f"<title>{escape(label)}</title></polyline>"
                )
    x_label = width - pad
    parts.append(f'<text x="{x_label}" y="10" font-size="9" text-anchor="end" fill="#555">{hi:.3g}</text>')
    parts.append(f'<text x="{x_label}" y="{height - pad}" font-size="9" text-anchor="end" fill="#555">{lo:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)
