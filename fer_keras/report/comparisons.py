"""Report section 5: dataset variants of the same configuration, and cross-dataset results.

A configuration is a run minus its dataset variant (model, optimizer, colour mode,
batch size, class weights, seed): comparing ``augment`` with ``balanced`` and
``balanced-2`` only makes sense with everything else equal. Cross-dataset rows come
from ``fer-eval`` JSON files, read defensively (their format belongs to that tool).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_keras.constants import VARIANTS
from fer_keras.report import figures
from fer_keras.report.dataset_section import raw, read_json
from fer_keras.validation import is_number

CONFIG_KEYS = ("model", "optimizer", "color_mode", "batch_size", "class_weights", "seed")
MAX_BARS = 40  # configurations drawn in the figure (the table lists all)


def variant_table(frame):
    """One row per configuration run with at least two variants: max ``val_accuracy`` per variant.

    Columns: ``configuration``, the config keys, one column per variant present, and
    ``<variant> - augment`` deltas when ``augment`` is present.
    """
    import pandas as pd

    data = frame.dropna(subset=["max_val_accuracy"]).copy()
    if data.empty:
        return pd.DataFrame(columns=["configuration"])
    for key in CONFIG_KEYS:
        data[key] = data[key].astype(str)
    pivot = data.pivot_table(index=list(CONFIG_KEYS), columns="variant", values="max_val_accuracy", aggfunc="max")
    variants = [v for v in VARIANTS if v in pivot.columns] + sorted(set(pivot.columns) - set(VARIANTS))
    pivot = pivot[variants]
    pivot = pivot[pivot.notna().sum(axis=1) >= 2].reset_index()
    if pivot.empty:
        return pd.DataFrame(columns=["configuration"])
    pivot.insert(0, "configuration", pivot.apply(_label, axis=1, seeds=data["seed"].nunique() > 1))
    if "augment" in variants:
        for v in variants:
            if v != "augment":
                pivot[f"{v} - augment"] = pivot[v] - pivot["augment"]
    pivot.columns.name = None
    batch = pivot["batch_size"].map(lambda b: int(b) if b.isdigit() else 0)  # 32 before 128
    order = pivot.assign(_batch=batch).sort_values(["model", "optimizer", "color_mode", "_batch"], kind="mergesort")
    return pivot.loc[order.index].reset_index(drop=True)


def _label(row, seeds: bool) -> str:
    label = f"{row['model']} {row['optimizer']} {row['color_mode']} {row['batch_size']}"
    if row["class_weights"] == "True":
        label += " cw"
    if seeds and row["seed"] not in ("None", "nan"):
        label += f" seed{row['seed']}"
    return label


def variants_section(frame) -> dict[str, Any]:
    table = variant_table(frame)
    variants = [c for c in table.columns if c != "configuration" and c not in CONFIG_KEYS and " - " not in c]
    section: dict[str, Any] = {
        "rows": [],
        "variants": variants,
        "deltas": [c for c in table.columns if " - " in c],
        "figure": None,
    }
    if table.empty:
        return section
    section["rows"] = table.to_dict(orient="records")
    shown = table
    if len(table) > MAX_BARS:
        shown = table.assign(_best=table[variants].max(axis=1)).nlargest(MAX_BARS, "_best")
    section["figure"] = figures.variant_bars(shown, variants)
    section["figure_note"] = f"the {MAX_BARS} best of {len(table)} configurations" if len(table) > MAX_BARS else ""
    return section


def eval_rows(eval_dir: Path) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Rows of ``reports/eval/*.json``: ``(rows, class names seen, problems)``.

    A file is one result (``accuracy`` at the top level) or several under
    ``datasets`` / ``results`` (a list, or a mapping of dataset name to result).
    """
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    classes: list[str] = []
    for path in sorted(eval_dir.glob("*.json")) if eval_dir.is_dir() else []:
        data, problem = read_json(path)
        if problem:
            problems.append(problem)
            continue
        results = _results(data, path.stem)
        if not results:
            problems.append(f"{path}: no accuracy found (not a fer-eval result?)")
        for name, result in results:
            recall = result.get("per_class_recall")
            if isinstance(recall, list) and isinstance(result.get("class_names"), list):
                recall = dict(zip(result["class_names"], recall))
            recall = {str(k): v for k, v in recall.items() if is_number(v)} if isinstance(recall, dict) else {}
            classes += [c for c in recall if c not in classes]
            rows.append(
                {
                    "file": path.name,
                    "dataset": name,
                    "model": result.get("model") or (data.get("model") if isinstance(data, dict) else None),
                    "n": result.get("n", result.get("count", result.get("samples"))),
                    "accuracy": result.get("accuracy"),
                    "macro_f1": result.get("macro_f1"),
                    "per_class_recall": recall,
                    "raw": raw(result),
                }
            )
    return rows, classes, problems


def _results(data: Any, stem: str) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(data, dict):
        return []
    if is_number(data.get("accuracy")):
        return [(str(data.get("dataset") or data.get("name") or data.get("data") or stem), data)]
    out = []
    for key in ("datasets", "results"):
        group = data.get(key)
        items = group.items() if isinstance(group, dict) else enumerate(group) if isinstance(group, list) else []
        for name, result in items:
            if isinstance(result, dict) and is_number(result.get("accuracy")):
                label = (
                    result.get("dataset")
                    or result.get("name")
                    or (name if isinstance(name, str) else f"{stem}[{name}]")
                )
                out.append((str(label), result))
    return out
