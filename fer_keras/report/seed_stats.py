"""Seed statistics: runs that differ only in their seed, summarised per configuration.

A grid with a ``seed`` axis trains every configuration several times. One run's max
``val_accuracy`` is then one draw of a random variable (initialisation, shuffling,
augmentation and dropout all follow the seed), and picking the best single run partly
picks the luckiest seed. This section groups the runs whose recorded configs are equal
once the seed (and fields that don't change what is trained: :data:`IGNORED_FIELDS`) is
left out, and gives per configuration the mean ± standard deviation of max
``val_accuracy`` and a 95% confidence interval of the mean (Student's t with n - 1
degrees of freedom: a handful of seeds is far from the normal approximation), ranks the
configurations by mean, and says whether the top ones can be told apart.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from fer_keras.report.runs import Run
from fer_keras.training.config import NON_IDENTITY_FIELDS, OPTIMIZER_DEFAULTS

CONFIDENCE = 0.95
OPTIMIZER_KEYS = ("learning_rate", "momentum", "nesterov", "weight_decay")  # set from OPTIMIZER_DEFAULTS
# Fields left out when grouping: the seed itself, the names (they carry _seed<N>), and what doesn't change a run.
IGNORED_FIELDS = frozenset({"seed", "name", "name_suffix", *NON_IDENTITY_FIELDS})


def configuration_key(config: dict[str, Any]) -> str:
    """A run's configuration without its seed, as canonical JSON (runs with equal keys differ only in seed)."""
    return json.dumps({k: v for k, v in config.items() if k not in IGNORED_FIELDS}, sort_keys=True, default=str)


def t_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The two-sided ``confidence`` interval of the mean of ``values`` (t-distribution); ``None`` below 2 values.

    Example:
        >>> low, high = t_interval(np.array([0.5, 0.6, 0.7]))
        >>> round(low, 4), round(high, 4)
        (0.3516, 0.8484)
    """
    n = len(values)
    if n < 2:
        return None
    from scipy import stats

    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * float(values.std(ddof=1)) / math.sqrt(n)
    mean = float(values.mean())
    return mean - half, mean + half


def _best(run: Run) -> float:
    values = run.curves["val_accuracy"]
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else math.nan


def _seed_order(run: Run) -> tuple:
    seed = run.config.get("seed")
    return (0, seed, run.name) if isinstance(seed, int) else (1, 0, f"{seed}{run.name}")


def _labels(configs: list[dict[str, Any]]) -> list[str]:
    """Name each configuration by the fields in which the configurations differ (``optimizer=adam``)."""
    keys = sorted({k for c in configs for k in c if k not in IGNORED_FIELDS})
    differing = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True, default=str) for c in configs}) > 1]
    if not differing:
        return ["all runs"] * len(configs)

    def shown(config: dict[str, Any], key: str) -> bool:
        # An optimizer's own default (sgd's momentum 0.9) says nothing the optimizer's name doesn't.
        defaults = OPTIMIZER_DEFAULTS.get(config.get("optimizer"), {}) if "optimizer" in differing else {}
        return key not in OPTIMIZER_KEYS or config.get(key) != defaults.get(key)

    return [
        ", ".join(f"{k}={json.dumps(c.get(k), default=str).strip(chr(34))}" for k in differing if shown(c, k))
        for c in configs
    ]


def seed_statistics(runs: list[Run], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Per configuration: seeds, mean ± std and the t interval of max val_accuracy, ranked by mean.

    Only runs with a finite ``val_accuracy`` count. The section is empty (``groups == []``)
    unless some configuration was trained with at least two different seeds.

    Returns:
        ``{"confidence", "groups": [{"rank", "label", "n", "seeds", "runs", "values", "mean",
        "std", "ci_low", "ci_high", "best_run"}...], "overlap": {...} or None, "verdict": str}``;
        ``seeds``, ``runs`` and ``values`` line up, in seed order.

    Example:
        >>> seed_statistics(load_runs("history/seed-stats").runs)["verdict"]  # doctest: +SKIP
        'The 95% intervals of the top 2 configurations overlap: ...'
    """
    grouped: dict[str, list[Run]] = {}
    for run in runs:
        if math.isfinite(_best(run)):
            grouped.setdefault(configuration_key(run.config), []).append(run)
    section: dict[str, Any] = {"confidence": confidence, "groups": [], "overlap": None, "verdict": ""}
    if not any(len({r.config.get("seed") for r in members}) > 1 for members in grouped.values()):
        return section
    members = list(grouped.values())
    labels = _labels([group[0].config for group in members])
    groups = []
    for label, group in zip(labels, members):
        group = sorted(group, key=_seed_order)
        values = np.array([_best(r) for r in group])
        interval = t_interval(values, confidence)
        best = group[int(np.argmax(values))]
        groups.append(
            {
                "label": label,
                "n": len(group),
                "seeds": [r.config.get("seed") for r in group],
                "runs": [r.name for r in group],
                "values": [float(v) for v in values],
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else None,
                "ci_low": interval[0] if interval else None,
                "ci_high": interval[1] if interval else None,
                "best_run": best.name,
            }
        )
    groups.sort(key=lambda g: (-g["mean"], g["label"]))
    for rank, group in enumerate(groups, 1):
        group["rank"] = rank
    section["groups"] = groups
    section["overlap"], section["verdict"] = _compare_top(groups, confidence)
    return section


def _compare_top(groups: list[dict[str, Any]], confidence: float) -> tuple[dict[str, Any] | None, str]:
    """Which configurations' intervals overlap the top one's, and the sentence that says so."""
    pct = f"{100 * confidence:g}%"
    top = groups[0]
    if len(groups) < 2:
        return None, f"One configuration only ({top['label']}): nothing to compare its seeds against."
    if top["ci_low"] is None:
        return None, f"The top configuration ({top['label']}) has a single seed: no interval to compare."
    rivals = [g for g in groups[1:] if g["ci_high"] is not None]
    overlapping = [g["label"] for g in rivals if g["ci_high"] >= top["ci_low"]]
    overlap = {"top": top["label"], "overlapping": overlapping, "compared": [g["label"] for g in rivals]}
    span = f"[{top['ci_low']:.4f}, {top['ci_high']:.4f}]"
    if overlapping:
        names = ", ".join(overlapping)
        verdict = (
            f"The {pct} interval of the top configuration ({top['label']}, {span}) overlaps that of {names}: "
            f"with {top['n']} seeds the data cannot tell them apart, so choosing the best single run "
            "partly chooses the luckiest seed."
        )
    else:
        verdict = (
            f"The {pct} interval of the top configuration ({top['label']}, {span}) overlaps no other "
            "configuration's: its lead is larger than the seed-to-seed noise."
        )
    return overlap, verdict
