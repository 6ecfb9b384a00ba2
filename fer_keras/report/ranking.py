"""Ranking runs by their best validation accuracy, and the statistics around it.

Only ``valid`` numbers rank runs: the ``test`` split never takes part in selection.
Runs without a single finite ``val_accuracy`` (failed before the first epoch) are
listed after the ranked ones, without a rank.
"""

from __future__ import annotations

from typing import Any

TOP_N = 10
BOTTOM_N = 5
MARK_TOP = "top"
MARK_BOTTOM = "bottom"


def rank_runs(frame):
    """Sort runs by ``max_val_accuracy`` (descending, ties by name) and add ``rank`` and ``mark``.

    ``rank`` is 1..N for runs with a finite ``max_val_accuracy`` and missing for the rest;
    ``mark`` is ``top`` for the best ``TOP_N``, ``bottom`` for the worst ``BOTTOM_N``
    ranked runs that are not also in the top, else empty.

    Example:
        >>> ranked = rank_runs(runs_frame(load_runs("history").runs))  # doctest: +SKIP
        >>> ranked.iloc[0][["rank", "name", "mark"]].tolist()  # doctest: +SKIP
        [1, 'model_2_best_sgd_rgb_128_augment', 'top']
    """
    import numpy as np
    import pandas as pd

    finite = np.isfinite(frame["max_val_accuracy"].astype(float))
    ranked = frame[finite].sort_values(["max_val_accuracy", "name"], ascending=[False, True], kind="mergesort")
    unranked = frame[~finite].sort_values("name", kind="mergesort")
    n = len(ranked)
    ranked = ranked.assign(rank=pd.array(range(1, n + 1), dtype="Int64"))
    marks = [MARK_TOP if i < TOP_N else MARK_BOTTOM if i >= max(n - BOTTOM_N, TOP_N) else "" for i in range(n)]
    ranked = ranked.assign(mark=marks)
    unranked = unranked.assign(rank=pd.array([None] * len(unranked), dtype="Int64"), mark="")
    out = pd.concat([ranked, unranked], ignore_index=True) if len(unranked) else ranked.reset_index(drop=True)
    columns = ["rank", "mark"] + [c for c in frame.columns]
    return out[columns]


def ranking_stats(ranked, best_run: str | None = None) -> dict[str, Any]:
    """Mean, median and spread of the runs' max ``val_accuracy``, and the best run against the mean.

    Args:
        ranked: the output of :func:`rank_runs`.
        best_run: the run behind the shipped model (its metadata ``source_run``); the
            top-ranked run when ``None`` or not among the ranked runs.
    """
    import numpy as np
    import pandas as pd

    values = ranked["max_val_accuracy"].astype(float).to_numpy()
    values = values[np.isfinite(values)]
    stats: dict[str, Any] = {
        "n_runs": int(len(ranked)),
        "n_ranked": int(values.size),
        "by_status": {str(k): int(v) for k, v in ranked["status"].value_counts().sort_index().items()},
        "mean_max_val_accuracy": float(values.mean()) if values.size else None,
        "median_max_val_accuracy": float(np.median(values)) if values.size else None,
        "std_max_val_accuracy": float(values.std(ddof=1)) if values.size > 1 else None,
        "min_max_val_accuracy": float(values.min()) if values.size else None,
        "top": ranked.loc[ranked["mark"] == MARK_TOP, "name"].tolist(),
        "bottom": ranked.loc[ranked["mark"] == MARK_BOTTOM, "name"].tolist(),
        "best": None,
    }
    if not values.size:
        return stats
    names = ranked["name"].tolist()
    chosen = best_run if best_run in names else names[0]
    row = ranked[ranked["name"] == chosen].iloc[0]
    best_value = float(row["max_val_accuracy"])
    mean = stats["mean_max_val_accuracy"]
    stats["best"] = {
        "name": chosen,
        "source": "model metadata source_run" if chosen == best_run else "top-ranked run",
        "rank": None if pd.isna(row["rank"]) else int(row["rank"]),
        "max_val_accuracy": best_value,
        "minus_mean": best_value - mean,
        "minus_median": best_value - stats["median_max_val_accuracy"],
        "std_above_mean": (best_value - mean) / stats["std_max_val_accuracy"]
        if stats["std_max_val_accuracy"]
        else None,
    }
    return stats


EXTREME_METRICS = ("max_accuracy", "max_val_accuracy", "min_loss", "min_val_loss")


def per_model_extremes(frame) -> list[dict[str, Any]]:
    """Per model: the number of runs and the max and min over runs of each run's best metric."""
    rows = []
    for model, group in frame.groupby(frame["model"].astype(str), sort=True):
        row: dict[str, Any] = {"model": model, "runs": int(len(group))}
        for col in EXTREME_METRICS:
            values = group[col].astype(float)
            row[f"{col}.max"] = None if values.isna().all() else float(values.max())
            row[f"{col}.min"] = None if values.isna().all() else float(values.min())
        rows.append(row)
    return rows
