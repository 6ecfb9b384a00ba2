"""Report section 1: the dataset — class distribution, colour modes, balancing, cleaning.

The inputs come from other tools (``fer-data stats``, ``fer-data clean``,
``fer-balance``), so they are read defensively: every field through ``.get``, a
few plausible layouts accepted, and whatever is not understood shown as raw JSON
rather than dropped or crashed on. Without a stats file, class counts come from
folder scanning alone (no image is opened).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fer_keras.constants import BALANCE_MANIFEST_FILE, CLEAN_REPORT_FILE, DATASET_STATS_FILE, SPLITS
from fer_keras.report import figures
from fer_keras.validation import is_int

# Looked for in the report's input folder (default reports/), as fer-data writes them.
STATS_FILE = Path(DATASET_STATS_FILE).name
CLEAN_FILE = Path(CLEAN_REPORT_FILE).name
MANIFEST_FILE = BALANCE_MANIFEST_FILE
_MANIFEST_KEYS = ("status", "recipe_file", "recipe", "recipe_sha256", "counts", "counts_before", "counts_after")
RAW_LIMIT = 20_000  # characters of raw JSON shown per file
# fer-data stats keeps grayscale/rgb per split under "color" and PIL modes under "modes".
_MODE_KEYS = ("color", "color_modes", "colour_modes", "color_mode", "modes", "pil_modes")
_COUNT_KEYS = ("counts", "class_counts", "per_class", "classes")


def read_json(path: Path) -> tuple[Any, str | None]:
    """``(data, None)`` or ``(None, reason)``: an unreadable optional input is reported, not raised."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"{path}: unreadable ({type(err).__name__}: {err})"


def raw(data: Any) -> str:
    text = json.dumps(data, indent=2, default=str)
    return text if len(text) <= RAW_LIMIT else text[:RAW_LIMIT] + f"\n... ({len(text) - RAW_LIMIT} more characters)"


def _int_map(value: Any) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    for key in _COUNT_KEYS:  # {"counts": {...}, "total": n} → the inner mapping
        if isinstance(value.get(key), dict):
            value = value[key]
            break
    # Totals are derived numbers, not a class or a mode.
    out = {str(k): int(v) for k, v in value.items() if is_int(v) and k not in ("total", "all")}
    return out or None


def split_class_counts(stats: Any) -> dict[str, dict[str, int]] | None:
    """``{split: {class: n}}`` from a stats file in any of the layouts we accept."""
    if not isinstance(stats, dict):
        return None
    for key in (*_COUNT_KEYS, "per_split", "splits", None):
        candidate = stats if key is None else stats.get(key)
        if isinstance(candidate, list):  # [{"split": s, "class": c, "count": n}, ...]
            table: dict[str, dict[str, int]] = {}
            for row in candidate:
                if isinstance(row, dict) and is_int(row.get("count")):
                    table.setdefault(str(row.get("split", "all")), {})[str(row.get("class"))] = row["count"]
            if table:
                return table
        elif isinstance(candidate, dict):
            table = {s: m for s, v in candidate.items() if (key is not None or s in SPLITS) and (m := _int_map(v))}
            if table and all(len(m) > 1 for m in table.values()):
                return table
    return None


def color_mode_counts(stats: Any) -> dict[str, dict[str, int]] | None:
    """``{split or "all": {mode: n}}`` of grayscale/RGB files, wherever the stats keep them."""
    if not isinstance(stats, dict):
        return None
    for key in _MODE_KEYS:
        value = stats.get(key)
        if isinstance(value, dict):
            if all(is_int(v) for v in value.values()):
                return {"all": dict(value)}
            nested = {str(s): m for s, v in value.items() if (m := _int_map(v))}
            if nested:
                return nested
    per_split = stats.get("splits") if isinstance(stats.get("splits"), dict) else {}
    out = {}
    for split, value in per_split.items():
        for key in _MODE_KEYS:
            if isinstance(value, dict) and (m := _int_map(value.get(key))):
                out[str(split)] = m
                break
    if out:
        return out
    flat = {k: stats[k] for k in ("grayscale", "rgb") if is_int(stats.get(k))}
    return {"all": flat} if flat else None


def folder_counts(data_dir: Path) -> dict[str, dict[str, int]]:
    """Class counts per split from the folder layout alone."""
    from fer_keras.data.folders import list_classes, scan_split_lenient
    from fer_keras.errors import FerError

    out = {}
    for split in SPLITS:
        split_dir = data_dir / split
        if not split_dir.is_dir():
            continue
        classes = list_classes(split_dir)
        try:
            out[split] = scan_split_lenient(data_dir, split, classes).counts() if classes else {}
        except FerError:
            out[split] = dict.fromkeys(classes, 0)
    return out


def clean_counts(report: Any) -> dict[str, dict[str, int]] | None:
    """``{kind: {split or "all": n}}`` of cleaning findings."""
    if not isinstance(report, dict):
        return None
    for key in ("counts", "summary"):
        value = report.get(key)
        if isinstance(value, dict):
            out = {}
            for kind, v in value.items():
                if is_int(v):
                    out[str(kind)] = {"all": v}
                elif m := _int_map(v):
                    out[str(kind)] = m
            if out:
                return out
    findings = report.get("findings")
    if isinstance(findings, dict):
        return {
            str(kind): {"all": v if is_int(v) else len(v)}
            for kind, v in findings.items()
            if is_int(v) or isinstance(v, (list, dict))
        }
    if isinstance(findings, list):
        out: dict[str, dict[str, int]] = {}
        for item in findings:
            if isinstance(item, dict) and item.get("kind"):
                per = out.setdefault(str(item["kind"]), {})
                split = str(item.get("split", "all"))
                per[split] = per.get(split, 0) + 1
        return out or None
    return None


def manifest_counts(manifest: Any) -> dict[str, dict[str, int]] | None:
    """``{"before": {class: n}, "after": {class: n}}`` from a balanced dataset's manifest (train split)."""
    if not isinstance(manifest, dict):
        return None
    counts = manifest.get("counts") if isinstance(manifest.get("counts"), dict) else manifest
    out = {}
    for stage in ("before", "after"):
        value = counts.get(stage, counts.get(f"counts_{stage}", manifest.get(f"counts_{stage}")))
        if isinstance(value, dict) and isinstance(value.get("train"), dict):
            value = value["train"]
        if m := _int_map(value):
            out[stage] = m
    return out if len(out) == 2 else None


def dataset_section(reports_dir: Path, data_dir: Path | None, balanced_dirs: dict[str, Path]) -> dict[str, Any]:
    """The dataset section's context: tables, figures, notes and raw inputs."""
    section: dict[str, Any] = {
        "notes": [],
        "counts": None,
        "counts_source": None,
        "modes": None,
        "raw": {},
        "figures": {},
        "balancing": [],
        "clean": None,
    }
    stats_path = reports_dir / STATS_FILE
    stats = None
    if stats_path.is_file():
        stats, problem = read_json(stats_path)
        if problem:
            section["notes"].append(problem)
        else:
            section["raw"][str(stats_path)] = raw(stats)
            section["counts"] = split_class_counts(stats)
            section["counts_source"] = str(stats_path)
            section["modes"] = color_mode_counts(stats)
            sizes = stats.get("sizes", stats.get("image_sizes")) if isinstance(stats, dict) else None
            section["sizes"] = raw(sizes) if sizes is not None else None
    if section["counts"] is None and data_dir is not None and data_dir.is_dir():
        section["counts"] = folder_counts(data_dir)
        section["counts_source"] = f"{data_dir} (folder counts)"
    if section["counts"] is None:
        section["notes"].append(f"no class counts: {stats_path} not found and no dataset folder (--data)")
    if section["modes"] is None:
        section["notes"].append(f"grayscale/RGB counts need `fer-data stats DIR --json {stats_path}`")
    if section["counts"]:
        section["figures"]["counts"] = figures.grouped_counts(section["counts"], "images per class and split")

    for variant, folder in balanced_dirs.items():
        path = folder / MANIFEST_FILE
        if not path.is_file():
            section["notes"].append(f"{variant}: no {MANIFEST_FILE} in {folder}")
            continue
        manifest, problem = read_json(path)
        counts = manifest_counts(manifest) if problem is None else None
        entry = {
            "variant": variant,
            "path": str(path),
            "counts": counts,
            "problem": problem,
            "raw": raw({k: v for k, v in manifest.items() if k in _MANIFEST_KEYS})
            if isinstance(manifest, dict)
            else None,
        }
        if counts:
            entry["figure"] = figures.grouped_counts(counts, f"{variant}: train images per class", hue_name="stage")
        section["balancing"].append(entry)

    clean_path = reports_dir / CLEAN_FILE
    if clean_path.is_file():
        report, problem = read_json(clean_path)
        section["clean"] = {
            "path": str(clean_path),
            "problem": problem,
            "counts": clean_counts(report),
            "raw": raw(report) if problem is None else None,
        }
    return section


def balanced_dirs(runs, history_dir: str | os.PathLike) -> dict[str, Path]:
    """Dataset folders of balanced variants used by the runs, one per variant."""
    from fer_keras.report.model_section import resolve_data_dir

    out: dict[str, Path] = {}
    for run in runs:
        variant = run.config.get("variant")
        data = run.config.get("data")
        if variant and variant != "augment" and data and variant not in out:
            found = resolve_data_dir(data, history_dir)
            if found is not None:
                out[variant] = found
    return dict(sorted(out.items()))
