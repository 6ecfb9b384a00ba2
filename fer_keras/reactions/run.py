"""A fer-reactions run: check everything first (:func:`plan_reactions`), then analyse and write (:func:`run_reactions`).

The plan reads no video and loads no model: it collects the sources, reads and
validates the segment file, checks the model folder's metadata and that ``--out`` may
be replaced, so ``--dry-run`` and a bad argument answer at once. The run builds the
whole output folder (layout: :mod:`fer_keras.reactions.summary`) in a temporary folder
beside ``--out`` and swaps it in only at the end (:func:`fer_keras.atomic.atomic_dir`):
an interrupted or failed run leaves the previous output, or nothing, never half of one.

A source that cannot be read (an empty, unreadable or undecodable video, a photo folder
whose photos are all unreadable) is a warning in ``summary.json`` and on stderr; the run
fails (:class:`FerError`, exit code 1, nothing written) only when no source at all could
be analysed. A readable video without a face is analysed: its summary says so.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_keras.atomic import atomic_dir, check_replaceable, remove_stale_temps, write_json_atomic, write_text_atomic
from fer_keras.constants import REACTIONS_REPORT_FILE, REACTIONS_SUMMARY_FILE, TIMELINE_FILE
from fer_keras.errors import FerError, problem
from fer_keras.inference.detectors import get_detector
from fer_keras.inference.predictor import Predictor, resolve_runtime
from fer_keras.model.model_folder import ModelInfo, read_model_info
from fer_keras.model.shipped import default_model_dir
from fer_keras.reactions.analyze import Settings, SourceResult, analyze_photos, analyze_video
from fer_keras.reactions.sources import PhotoSet, Source, VideoSource, collect_sources, open_video
from fer_keras.reactions.summary import FORMAT_VERSION, group_summaries, timeline_columns
from fer_keras.reactions.tracking import require_tracker
from fer_keras.validation import paths_overlap

REPORT_MODULE = "fer_keras.reactions.report"


@dataclass(frozen=True)
class ReactionPlan:
    """Everything a run needs, checked: the sources, the output folder, the model and the settings."""

    sources: tuple[Source, ...]
    out: Path
    model_dir: Path
    runtime: str
    model: ModelInfo
    settings: Settings
    warnings: tuple[str, ...]

    def describe(self) -> str:
        videos = sum(1 for s in self.sources if isinstance(s, VideoSource))
        photos = sum(len(s.photos) for s in self.sources if isinstance(s, PhotoSet))
        return (f"would analyse {videos} video(s) and {photos} photo(s) in "
                f"{len(self.sources) - videos} photo set(s) with {self.model.name} ({self.runtime}) at "
                f"{self.settings.fps:g} fps into {self.out}; nothing written")  # fmt: skip


@dataclass(frozen=True)
class ReactionResult:
    """What a run wrote: the output folder and the summary (as in ``summary.json``)."""

    out: Path
    summary: dict[str, Any]


def is_reactions_folder(path: Path) -> bool:
    """Whether ``path`` looks like an earlier fer-reactions output (its summary and timeline)."""
    return (path / REACTIONS_SUMMARY_FILE).is_file() and (path / TIMELINE_FILE).is_file()


def plan_reactions(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    settings: Settings | None = None,
    model_dir: str | os.PathLike | None = None,
    runtime: str = "auto",
) -> ReactionPlan:
    """Check a run without analysing anything.

    Raises:
        FerError: no input gave a source, the detector's package is not installed, a bad model folder, ``out`` is something that
            is not an earlier fer-reactions output, or ``out`` overlaps an input folder.
    """
    settings = Settings() if settings is None else settings
    sources, warnings = collect_sources(paths)
    if not sources:
        raise FerError(warnings + [f"no videos or images to analyse in {', '.join(map(str, paths))}"])
    out = Path(out)
    for raw in paths:
        if Path(raw).is_dir() and paths_overlap(str(raw), str(out)):
            raise FerError(problem(str(out), f"--out must not be inside the input folder {raw} or contain it"))
    check_replaceable(out, is_reactions_folder, "a fer-reactions output folder")
    get_detector(settings.detector)  # a detector whose package is missing: one line naming the extra, now
    if any(isinstance(s, VideoSource) for s in sources):
        require_tracker()
    folder = Path(model_dir) if model_dir is not None else default_model_dir()
    info = read_model_info(folder)
    return ReactionPlan(tuple(sources), out, folder, resolve_runtime(folder, runtime), info, settings, tuple(warnings))


def expected_frames(plan: ReactionPlan) -> int:
    """Sampled frames and photos the run will analyse (from the containers' frame counts), for a progress bar."""
    total = 0
    for source in plan.sources:
        if isinstance(source, PhotoSet):
            total += len(source.photos)
            continue
        try:
            capture, info = open_video(source.path)
            capture.release()
            total += info.expected_samples(plan.settings.fps)
        except FerError:
            pass
    return total


def run_reactions(
    plan: ReactionPlan,
    *,
    predictor: Predictor | None = None,
    progress=None,
    warn: Callable[[str], None] | None = None,
) -> ReactionResult:
    """Analyse every source of ``plan`` and write the output folder (timeline, summary, peaks, report).

    Args:
        plan: from :func:`plan_reactions`.
        predictor: an already loaded model (default: load ``plan.model_dir`` with ``plan.runtime``).
        progress: a tqdm-like object updated per analysed frame or photo.
        warn: called with each warning as it happens (the CLI prints them to stderr).

    Raises:
        FerError: no source could be analysed (nothing is written then; each source's
            problem went to ``warn`` first).

    Example:
        >>> plan = plan_reactions(["viewer1.mp4"], "reactions/ad1")  # doctest: +SKIP
        >>> run_reactions(plan).summary["sources"][0]["overall"]["share"]["happy"]  # doctest: +SKIP
        0.42
    """
    warn = warn or (lambda message: None)
    for message in plan.warnings:
        warn(message)
    remove_stale_temps(plan.out, is_ours_dir=is_reactions_folder)
    check_replaceable(plan.out, is_reactions_folder, "a fer-reactions output folder")
    predictor = predictor or Predictor.load(plan.model_dir, runtime=plan.runtime)
    failures: list[str] = []
    with atomic_dir(plan.out) as tmp:
        results: list[SourceResult] = []
        for index, source in enumerate(plan.sources, start=1):
            try:
                if isinstance(source, VideoSource):
                    result = analyze_video(predictor, source, plan.settings, index=index, out_dir=tmp,
                                           progress=progress)  # fmt: skip
                else:
                    result = analyze_photos(predictor, source, plan.settings, index=index, out_dir=tmp,
                                            progress=progress)  # fmt: skip
            except FerError as err:
                failures.extend(f"{line}; skipped" for line in err.problems)
                for line in err.problems:
                    warn(f"{line}; skipped")
                continue
            for message in result.entry["warnings"]:
                warn(problem(source.name, message))
            results.append(result)
        if not results:
            # Each failure was already reported through warn(), as it happened.
            raise FerError(f"none of the {len(plan.sources)} source(s) could be analysed; nothing written")
        summary = build_summary(results, predictor, plan.settings, [*plan.warnings, *failures])
        write_text_atomic(tmp / TIMELINE_FILE, timeline_csv(results, predictor.class_names))
        write_json_atomic(tmp / REACTIONS_SUMMARY_FILE, summary)
        _write_report(tmp, summary, warn)
    return ReactionResult(plan.out, summary)


def build_summary(
    results: Sequence[SourceResult], predictor: Predictor, settings: Settings, warnings: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``summary.json`` document of a run (schema: :mod:`fer_keras.reactions.summary`)."""
    entries = [r.entry for r in results]
    pooled = {r.entry["name"]: r.probs for r in results}
    info = predictor.info
    return {
        "format_version": FORMAT_VERSION,
        "model": {"name": info.name, "version": info.version, "runtime": predictor.runtime},
        "settings": settings.to_dict(),
        "sources": entries,
        "groups": group_summaries(entries, pooled, predictor.class_names),
        "warnings": list(warnings),
    }


def timeline_csv(results: Sequence[SourceResult], class_names: Sequence[str]) -> str:
    """The text of ``timeline.csv``: every source's rows, in source order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(timeline_columns(class_names))
    for result in results:
        writer.writerows(result.rows)
    return buffer.getvalue()


def _write_report(out_dir: Path, summary: dict[str, Any], warn: Callable[[str], None]) -> None:
    """``report.html`` by the report module, when it is installed; a failure there costs only the report."""
    if importlib.util.find_spec(REPORT_MODULE) is None:
        return
    from importlib import import_module

    try:
        import_module(REPORT_MODULE).write_reaction_report(out_dir, summary)
    except Exception as err:  # noqa: BLE001 - the analysis is done and valid; say what went wrong with the page
        warn(f"{REACTIONS_REPORT_FILE} not written: {type(err).__name__}: {err}")
