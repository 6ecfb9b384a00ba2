"""Plots of the test-split evaluation: confusion matrices, ROC, precision-recall, reliability.

Same conventions as :mod:`fer_keras.report.figures` (PNG data URIs, Agg, small dpi);
class labels always in the model's recorded order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fer_keras.report.figures import BASE, HIGHLIGHT, plt_sns, to_data_uri


def confusion_matrices(counts: np.ndarray, normalized: np.ndarray, class_names: Sequence[str]) -> str:
    """Counts and row-normalized confusion matrices; labels in the model's class order."""
    plt, sns = plt_sns()
    k = len(class_names)
    size = max(3.5, 0.55 * k + 1.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    for ax, mat, fmt, title in (
        (axes[0], counts, "d", "counts"),
        (axes[1], normalized, ".2f", "normalized by true class"),
    ):
        sns.heatmap(
            mat,
            annot=True,
            fmt=fmt,
            cmap="Blues",
            cbar=False,
            square=True,
            ax=ax,
            xticklabels=list(class_names),
            yticklabels=list(class_names),
            annot_kws={"fontsize": 7},
        )
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=45)
        ax.tick_params(axis="y", rotation=0)
    return to_data_uri(fig)


def _curve_figure(
    curves: dict,
    class_names: Sequence[str],
    x: str,
    y: str,
    score: Callable[[dict], str],
    averages: Sequence[tuple[str, str]],
):
    """A figure with one thin line per class, then the ``(key, linestyle)`` averages in black.

    Each curve is ``curves["per_class"][name]`` (or ``curves[key]``) with arrays under ``x``
    and ``y``; ``score(curve)`` goes in its legend label. Classes without a curve are skipped.
    Returns ``(fig, ax)``.
    """
    plt, _ = plt_sns()
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    for name in class_names:
        c = curves["per_class"].get(name)
        if c is not None:
            ax.plot(c[x], c[y], linewidth=1, label=f"{name} ({score(c)})")
    for key, style in averages:
        c = curves.get(key)
        if c is not None:
            ax.plot(c[x], c[y], color="black", linestyle=style, linewidth=1.6, label=f"{key}-average ({score(c)})")
    return fig, ax


def roc_curves(curves: dict, class_names: Sequence[str]) -> str:
    """One-vs-rest ROC per class plus micro and macro averages, AUC in the legend."""
    fig, ax = _curve_figure(
        curves, class_names, "fpr", "tpr", lambda c: f"{c['auc']:.3f}", (("micro", "--"), ("macro", ":"))
    )
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.6)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=7, loc="lower right")
    return to_data_uri(fig)


def pr_curves(curves: dict, class_names: Sequence[str]) -> str:
    """Precision-recall per class plus the micro average, average precision in the legend."""
    fig, ax = _curve_figure(
        curves, class_names, "recall", "precision", lambda c: f"AP {c['ap']:.3f}", (("micro", "--"),)
    )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="lower left")
    return to_data_uri(fig)


def reliability_diagram(bins: list[dict], ece: float) -> str:
    """Accuracy against confidence per bin, with the bin counts below."""
    plt, _ = plt_sns()
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(5.2, 4.6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    lo = np.array([b["lower"] for b in bins])
    hi = np.array([b["upper"] for b in bins])
    n = np.array([b["count"] for b in bins])
    acc = np.array([b["accuracy"] if b["accuracy"] is not None else 0.0 for b in bins])
    conf = np.array([b["confidence"] if b["confidence"] is not None else 0.0 for b in bins])
    width = hi - lo
    ax.bar(lo, acc, width=width, align="edge", color=BASE, edgecolor="white", label="accuracy")
    ax.bar(
        lo, conf - acc, bottom=acc, width=width, align="edge", color=HIGHLIGHT, alpha=0.35, label="gap to confidence"
    )
    ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1, label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_title(f"expected calibration error {ece:.4f} ({len(bins)} bins)")
    ax.legend(fontsize=7, loc="upper left")
    ax_n.bar(lo, n, width=width, align="edge", color="grey")
    ax_n.set_xlabel("confidence (max probability)")
    ax_n.set_ylabel("images")
    ax_n.set_xlim(0, 1)
    return to_data_uri(fig)
