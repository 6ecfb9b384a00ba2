"""The reaction report: one self-contained ``report.html`` over a fer-reactions output folder.

Built only from the folder's files (``summary.json``, ``timeline.csv`` and the
``peaks/`` thumbnails), so it can be regenerated from an existing output folder at
any time: :func:`write_reaction_report`. Same conventions as fer-report: one HTML
file, images embedded as data URIs, figures drawn as inline SVG
(:mod:`fer_keras.reactions.report_figures`), no script, font or request to the network.
It is written for the person who commissioned the study, not for a programmer:
plain-language headings and one sentence under each figure saying how to read it.
"""

from __future__ import annotations

import base64
import csv
import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import fer_keras
from fer_keras.atomic import write_text_atomic
from fer_keras.constants import CLASS_NAMES, REACTIONS_REPORT_FILE, REACTIONS_SUMMARY_FILE, TIMELINE_FILE
from fer_keras.errors import FerError, problem
from fer_keras.reactions import report_figures as fig
from fer_keras.templating import template_environment
from fer_keras.validation import read_json_file

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "reaction_report.html.j2"
MAX_SUMMARY_BYTES = 64 * 2**20
MAX_THUMBNAIL_BYTES = 2 * 2**20
# A page per viewer would bury the overview: the busiest tracks get a chart, the rest a line.
MAX_TRACKS_SHOWN = 6
# Longer tracks are averaged into this many points: a 1-hour video stays a few hundred KB of SVG.
MAX_POINTS = 600
PEAKS_SHOWN = 3
# An emotion's strongest moments are shown when it was the top emotion at some point, or reached this
# probability: "the strongest moment of happy, 7%" would tell a reader about a happiness nobody showed.
PEAK_MIN_PROBABILITY = 0.5
_MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
# Plain words for the comparison sentences ("Happiest: ad B").
_SUPERLATIVE = {
    "angry": "Angriest",
    "disgust": "Most disgusted",
    "fear": "Most fearful",
    "happy": "Happiest",
    "neutral": "Most neutral",
    "sad": "Saddest",
    "surprise": "Most surprised",
}
_ADJECTIVE = {"disgust": "disgusted", "fear": "afraid", "surprise": "surprised"}

Sample = tuple[float, dict[str, float]]


def write_reaction_report(out_dir: str | os.PathLike, summary: Mapping[str, Any] | None = None) -> Path:
    """Write ``report.html`` into a fer-reactions output folder (atomically) and return its path.

    Args:
        out_dir: the folder holding ``summary.json``, ``timeline.csv`` and ``peaks/``.
        summary: the summary already in memory (default: read ``summary.json``).

    Raises:
        FerError: a missing or malformed ``summary.json`` or ``timeline.csv``.

    Example:
        >>> write_reaction_report("reactions/ad_test")  # doctest: +SKIP
        PosixPath('reactions/ad_test/report.html')
    """
    out_dir = Path(out_dir)
    if summary is None:
        summary = read_json_file(out_dir / REACTIONS_SUMMARY_FILE, "reaction summary", max_bytes=MAX_SUMMARY_BYTES)
    check_summary(summary, str(out_dir / REACTIONS_SUMMARY_FILE))
    html = render_reaction_report(summary, read_timeline(out_dir / TIMELINE_FILE), out_dir)
    path = out_dir / REACTIONS_REPORT_FILE
    write_text_atomic(path, html)
    return path


def check_summary(summary: Any, where: str) -> None:
    """Refuse a summary the report cannot read (one FerError line naming the field)."""
    if not isinstance(summary, Mapping):
        raise FerError(problem(where, "expected a JSON object"))
    if summary.get("format_version") != 1:
        raise FerError(problem(where, f"format_version: expected 1, got {summary.get('format_version')!r}"))
    sources = summary.get("sources")
    if not isinstance(sources, list) or not all(isinstance(s, Mapping) for s in sources):
        raise FerError(problem(where, "sources: expected a list of objects"))


def read_timeline(path: str | os.PathLike) -> dict[str, dict[str, list[Sample]]]:
    """``timeline.csv`` -> ``{source: {track_id: [(time_s, {emotion: probability}), ...]}}`` in time order.

    Rows without a face (empty probabilities) are left out; a missing file gives ``{}``
    (the report then shows the summary without timelines).
    """
    path = Path(path)
    if not path.is_file():
        return {}
    out: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: defaultdict(list))
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            emotions = [c for c in reader.fieldnames or () if c in CLASS_NAMES or c not in _NON_EMOTION]
            for row in reader:
                probs = {e: _float(row.get(e)) for e in emotions}
                time_s = _float(row.get("time_s"))
                if any(v is None for v in probs.values()) or time_s is None:
                    continue
                out[row.get("source") or ""][row.get("track_id") or ""].append((time_s, probs))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise FerError(problem(str(path), f"cannot read the timeline: {err}")) from None
    for tracks in out.values():
        for samples in tracks.values():
            samples.sort(key=lambda s: s[0])
    return {source: dict(tracks) for source, tracks in out.items()}


_NON_EMOTION = {"source", "kind", "time_s", "frame", "track_id", "x", "y", "w", "h", "detected", "top_emotion"}


def render_reaction_report(
    summary: Mapping[str, Any], timeline: Mapping[str, Mapping[str, list[Sample]]], out_dir: str | os.PathLike
) -> str:
    """The report's HTML from a summary, its timeline (:func:`read_timeline`) and the folder of its thumbnails."""
    from markupsafe import Markup

    sources = summary.get("sources") or []
    emotions = _emotions(summary)
    rows, leaders = _comparison(summary, emotions)
    context = {
        "title": "How viewers reacted",
        "version": fer_keras.__version__,
        "model": summary.get("model") or {},
        # Scalars only: the segment list is shown as the shaded bands and the per-part table.
        "settings": {k: v for k, v in (summary.get("settings") or {}).items() if isinstance(v, (str, int, float))},
        "emotions": [(e, fig.colour(e)) for e in emotions],
        "comparison": rows,
        "comparison_kind": "group" if len(summary.get("groups") or []) > 1 else "video or photo set",
        "comparison_svg": Markup(fig.stacked_rows_svg([(r["name"], r["share"]) for r in rows], emotions))
        if rows
        else "",
        "leaders": leaders,
        "sources": [_source_context(i, s, timeline, emotions, Path(out_dir), Markup) for i, s in enumerate(sources)],
        "warnings": [str(w) for w in summary.get("warnings") or []],
    }
    env = template_environment(TEMPLATE_DIR)
    env.filters.update(pct=_pct, when=_when)
    return env.get_template(TEMPLATE).render(**context)


def _source_context(index: int, source: Mapping, timeline: Mapping, emotions: list[str], out_dir: Path, markup) -> dict:
    name = str(source.get("name") or source.get("path") or "unnamed")
    overall = source.get("overall") or {}
    share, mean = _probs(overall.get("share")), _probs(overall.get("mean"))
    tracks = sorted(source.get("tracks") or [], key=lambda t: -(t.get("samples") or 0))
    samples_of = timeline.get(name) or timeline.get(str(source.get("path") or "")) or {}
    video = source.get("kind") == "video"
    segments = [s for s in source.get("segments") or [] if isinstance(s, Mapping)]
    charts = []
    for track in tracks[:MAX_TRACKS_SHOWN] if video else []:
        track_id = str(track.get("track_id"))
        samples = _thin(samples_of.get(track_id, []))
        label = f"emotions of viewer {track_id} over time in {name}"
        svg = fig.timeline_svg(
            samples, emotions, duration=_float(source.get("duration_s")), segments=segments, label=label
        )
        charts.append({"track_id": track_id, "svg": markup(svg), "first_s": track.get("first_s"),
                       "last_s": track.get("last_s"), "samples": track.get("samples")})  # fmt: skip
    if video and not tracks:
        charts.append({"track_id": None, "svg": markup(fig.timeline_svg([], emotions, label=name)), "samples": 0})
    sampled, faceless = source.get("frames_sampled") or 0, source.get("frames_without_face") or 0
    return {
        "name": name,
        "anchor": f"source-{index + 1}",
        "kind": source.get("kind") or "video",
        "group": source.get("group"),
        "duration_s": _float(source.get("duration_s")),
        "frames_sampled": sampled,
        "frames_without_face": faceless,
        "faceless_share": faceless / sampled if sampled else None,
        "viewers": len(tracks),
        "faces": source.get("faces"),
        "headline": _headline(share, overall.get("peaks") or {}, video),
        "timelines": charts,
        "hidden_tracks": max(len(tracks) - MAX_TRACKS_SHOWN, 0) if video else 0,
        "segments": [_segment_row(s, emotions) for s in segments],
        "share_svg": markup(fig.bars_svg(share, emotions, label=f"share of time per emotion in {name}")),
        "mean_svg": markup(fig.bars_svg(mean, emotions, label=f"average probability per emotion in {name}")),
        "peaks": _peaks(overall.get("peaks") or {}, share, emotions, out_dir),
        "warnings": [str(w) for w in source.get("warnings") or []],
    }


def _comparison(summary: Mapping, emotions: list[str]) -> tuple[list[dict], list[dict]]:
    """Rows to compare (the groups when there are several, else the sources) and each emotion's leader."""
    groups = [g for g in summary.get("groups") or [] if isinstance(g, Mapping)]
    if len(groups) > 1:
        rows = [{"name": str(g.get("name")), "share": _probs(g.get("share")), "mean": _probs(g.get("mean")),
                 "count": len(g.get("sources") or [])} for g in groups]  # fmt: skip
    else:
        sources = [s for s in summary.get("sources") or [] if isinstance(s, Mapping)]
        rows = [{"name": str(s.get("name")), "share": _probs((s.get("overall") or {}).get("share")),
                 "mean": _probs((s.get("overall") or {}).get("mean")), "count": 1} for s in sources]  # fmt: skip
    if len(rows) < 2:
        return [], []
    leaders = []
    for emotion in emotions:
        best = max(rows, key=lambda r: r["share"].get(emotion, 0.0))
        value = best["share"].get(emotion, 0.0)
        if value > 0:
            best.setdefault("leads", set()).add(emotion)
        leaders.append({"emotion": emotion, "colour": fig.colour(emotion), "name": best["name"], "share": value,
                        "words": _SUPERLATIVE.get(emotion, f"Most {emotion}"), "adjective": _adjective(emotion)})  # fmt: skip
    for row in rows:
        row.setdefault("leads", set())
    # happy and surprise first: the questions marketing asks most.
    leaders.sort(key=lambda item: (item["emotion"] not in ("happy", "surprise"), emotions.index(item["emotion"])))
    return rows, leaders


def _segment_row(segment: Mapping, emotions: list[str]) -> dict:
    share = _probs(segment.get("share"))
    top = max(emotions, key=lambda e: share.get(e, 0.0)) if share else None
    return {"name": str(segment.get("name", "")), "start_s": _float(segment.get("start_s")),
            "end_s": _float(segment.get("end_s")), "share": share, "top": top,
            "samples": segment.get("samples") or 0}  # fmt: skip


def _peaks(peaks: Mapping, share: Mapping[str, float], emotions: list[str], out_dir: Path) -> list[dict]:
    out = []
    for emotion in emotions:
        items = [p for p in peaks.get(emotion) or [] if isinstance(p, Mapping)][:PEAKS_SHOWN]
        strongest = max((_float(p.get("probability")) or 0.0 for p in items), default=0.0)
        # Moments far weaker than the strongest are other faces' ordinary expressions, not reactions.
        items = [p for p in items if (_float(p.get("probability")) or 0.0) >= strongest / 2]
        if items and (share.get(emotion, 0.0) > 0 or strongest >= PEAK_MIN_PROBABILITY):
            out.append({"emotion": emotion, "colour": fig.colour(emotion), "moments": [
                {"time_s": _float(p.get("time_s")), "probability": _float(p.get("probability")),
                 "track_id": p.get("track_id"), "frame": str(p.get("frame") or ""),
                 "uri": _thumbnail_uri(out_dir, p.get("thumbnail"))}
                for p in items]})  # fmt: skip
    return out


def _thumbnail_uri(out_dir: Path, name: Any) -> str | None:
    """A thumbnail inside the output folder as a data URI; None when absent, too large or outside the folder."""
    if not name or not isinstance(name, str):
        return None
    root = out_dir.resolve()
    path = (root / name).resolve()
    mime = _MIME.get(path.suffix.lower())
    if mime is None or not path.is_relative_to(root) or not path.is_file():
        return None
    if path.stat().st_size > MAX_THUMBNAIL_BYTES:
        return None
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _headline(share: Mapping[str, float], peaks: Mapping, video: bool) -> str:
    """One plain sentence: the dominant emotion and, for a video, its strongest moment."""
    if not share or max(share.values()) <= 0:
        return "No face was analysed, so there is no reaction to show."
    top = max(share, key=share.get)
    text = f"Viewers looked mostly {_adjective(top)} ({_pct(share[top])} of the time)"
    others = [e for e in sorted(share, key=share.get, reverse=True) if e != top and share[e] >= 0.1]
    if others:
        text += ", then " + " and ".join(f"{_adjective(e)} ({_pct(share[e])})" for e in others[:2])
    if video:
        best = [(p.get("probability") or 0, e, p) for e in share if e != "neutral" for p in (peaks.get(e) or [])[:1]]
        if best:
            prob, emotion, peak = max(best, key=lambda b: b[0])
            text += f"; the strongest reaction was {_adjective(emotion)} at {_when(peak.get('time_s'))}"
    return text + "."


def _emotions(summary: Mapping) -> list[str]:
    seen: set[str] = set()
    for source in summary.get("sources") or []:
        for key in ("share", "mean"):
            seen.update(_probs(((source or {}).get("overall") or {}).get(key)))
    known = [e for e in CLASS_NAMES if e in seen] or list(CLASS_NAMES)
    return known + sorted(seen - set(known))


def _thin(samples: Sequence[Sample]) -> list[Sample]:
    """At most MAX_POINTS samples: consecutive samples averaged (their probabilities still sum to 1)."""
    if len(samples) <= MAX_POINTS:
        return list(samples)
    size = math.ceil(len(samples) / MAX_POINTS)
    out = []
    for i in range(0, len(samples), size):
        chunk = samples[i : i + size]
        keys = chunk[0][1].keys()
        out.append((sum(t for t, _ in chunk) / len(chunk), {k: sum(p[k] for _, p in chunk) / len(chunk) for k in keys}))
    return out


def _probs(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in ((k, _float(v)) for k, v in value.items()) if v is not None}


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _adjective(emotion: str) -> str:
    return _ADJECTIVE.get(emotion, emotion)


def _pct(value: Any) -> str:
    number = _float(value)
    return "—" if number is None else f"{100 * number:.0f}%"


def _when(seconds: Any) -> str:
    number = _float(seconds)
    return "—" if number is None else fig.time_label(number)
