"""Analysing generated videos and photo sets with the shipped model (ONNX runtime, no TensorFlow).

The videos show drawn demo faces whose emotion the shipped model reads (angry, surprise;
checked first), so the timeline must recover each segment's emotion; two faces that swap
sides must keep their track ids.
"""

import csv
import json

import numpy as np
import pytest

from fer_keras.constants import REACTIONS_SUMMARY_FILE, TIMELINE_FILE
from fer_keras.inference.faces import crop_faces, find_faces
from fer_keras.inference.predictor import Predictor
from fer_keras.model.shipped import default_model_dir
from fer_keras.reactions.analyze import Settings, analyze_video
from fer_keras.reactions.run import plan_reactions, run_reactions
from fer_keras.reactions.segments import parse_segments
from fer_keras.reactions.sources import VideoSource
from tests.reactions.videos import blank_video, photo, segment_video, swap_video

pytest.importorskip("norfair")

SEGMENTS = parse_segments("name,start_s,end_s\nfirst,0,2\nsecond,2,4\nafter,10,12\n")


@pytest.fixture(scope="module")
def predictor():
    return Predictor.load(default_model_dir(), runtime="onnx")


@pytest.fixture(scope="module")
def run(tmp_path_factory, predictor):
    """One run over a segment video, a swap video, a faceless video, a bad file and a photo folder."""
    root = tmp_path_factory.mktemp("reactions")
    inputs = root / "inputs"
    inputs.mkdir()
    segment_video(inputs / "segments.mp4", [("angry", 2.0), ("surprise", 2.0)])
    swap_video(inputs / "swap.mp4", "angry", "surprise", seconds=3.0)
    blank_video(inputs / "blank.mp4", seconds=1.0)
    (inputs / "broken.mp4").write_bytes(b"\0" * 100)
    for group, emotion in (("ad_a", "angry"), ("ad_b", "surprise")):
        (root / "photos" / group).mkdir(parents=True)
        for i in range(2):
            photo(emotion, seed=i).save(root / "photos" / group / f"{i}.png")
    (root / "photos" / "ad_b" / "broken.jpg").write_bytes(b"not a jpeg")
    settings = Settings(smooth=0.5, detector="haar", segments=tuple(SEGMENTS), align="times.csv", annotate=True)
    paths = [inputs / "segments.mp4", inputs / "swap.mp4", inputs / "blank.mp4", inputs / "broken.mp4", root / "photos"]
    plan = plan_reactions(paths, root / "out", settings=settings, model_dir=default_model_dir(), runtime="onnx")
    warnings = []
    result = run_reactions(plan, predictor=predictor, warn=warnings.append)
    with open(root / "out" / TIMELINE_FILE, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return result, rows, warnings, root / "out"


def _source(result, name):
    return next(s for s in result.summary["sources"] if s["name"] == name)


def test_shipped_model_reads_the_drawn_faces(predictor):
    from tests.reactions.videos import faces

    for emotion in ("angry", "surprise"):
        for bgr in faces(emotion):
            from PIL import Image

            img = Image.new("RGB", (400, 300), (120, 140, 160))
            img.paste(Image.fromarray(np.ascontiguousarray(bgr[..., ::-1])), (125, 75))
            found = [f for f in find_faces(img, detector="haar") if f.detected]
            if found:
                p = predictor.predict_images(crop_faces(img, found[:1], predictor.info.crop))[0]
                assert predictor.class_names[int(p.argmax())] in (emotion, "fear"), emotion


def test_the_output_folder_has_every_file(run):
    result, rows, _, out = run
    names = sorted(p.name for p in out.iterdir())
    assert {"peaks", TIMELINE_FILE, REACTIONS_SUMMARY_FILE, "segments.annotated.mp4", "swap.annotated.mp4"} <= set(
        names
    )
    summary = json.loads((out / REACTIONS_SUMMARY_FILE).read_text())
    assert summary == json.loads(json.dumps(result.summary))
    assert summary["format_version"] == 1 and summary["model"]["runtime"] == "onnx"
    assert summary["settings"]["segments"][0] == {"name": "first", "start_s": 0.0, "end_s": 2.0}
    for source in summary["sources"]:
        for peaks in source["overall"]["peaks"].values():
            for peak in peaks:
                assert (out / peak["thumbnail"]).is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out.")]


def test_annotated_video_has_the_sampled_frames(run):
    import cv2

    result, _, _, out = run
    capture = cv2.VideoCapture(str(out / "segments.annotated.mp4"))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = capture.read()
    capture.release()
    assert ok and first.shape == (480, 640, 3)
    assert frames == _source(result, "segments.mp4")["frames_sampled"]


def test_the_timeline_recovers_each_segments_emotion(run):
    result, rows, _, _ = run
    source = _source(result, "segments.mp4")
    assert source["frames_sampled"] == 20 and source["frames_without_face"] == 0
    assert [t["track_id"] for t in source["tracks"]] == [1]
    first, second, after = source["segments"]
    assert max(first["share"], key=first["share"].get) == "angry"
    assert max(second["share"], key=second["share"].get) == "surprise"
    assert after["samples"] == 0
    mine = [r for r in rows if r["source"] == "segments.mp4"]
    assert len(mine) == 20 and all(r["top_emotion"] == "angry" for r in mine[:8])
    for r in mine:
        assert abs(sum(float(r[e]) for e in result.summary["sources"][0]["overall"]["mean"]) - 1) < 1e-4
    assert any("'after' (10-12 s) starts after the video ends" in w for w in source["warnings"])


def test_segment_alignment_sums_correctly(run):
    result, rows, _, _ = run
    for name in ("segments.mp4", "swap.mp4"):
        source = _source(result, name)
        times = [float(r["time_s"]) for r in rows if r["source"] == name and r["detected"] == "yes"]
        assert len(times) == source["faces"]
        outside = sum(1 for t in times if not any(s.start_s <= t < s.end_s for s in SEGMENTS))
        assert sum(s["samples"] for s in source["segments"]) + outside == source["faces"]
        for segment in source["segments"]:
            if segment["samples"]:
                assert abs(sum(segment["share"].values()) - 1) < 1e-5
                assert abs(sum(segment["mean"].values()) - 1) < 1e-4


def test_track_ids_stay_stable_when_two_faces_swap_sides(run):
    result, rows, _, _ = run
    source = _source(result, "swap.mp4")
    assert len(source["tracks"]) == 2
    mine = [r for r in rows if r["source"] == "swap.mp4" and r["detected"] == "yes"]
    rows_of = {}
    for r in mine:
        rows_of.setdefault(r["track_id"], []).append(r)
    assert len(rows_of) == 2
    for track_rows in rows_of.values():
        ys = {int(r["y"]) < 240 for r in track_rows}
        assert len(ys) == 1, "a track jumped between the upper and the lower face"
        xs = [int(r["x"]) + int(r["w"]) / 2 for r in track_rows]
        assert abs(xs[-1] - xs[0]) > 300, "each face crossed the frame under one id"


def test_faceless_and_broken_inputs_are_warnings(run):
    result, rows, warnings, _ = run
    blank = _source(result, "blank.mp4")
    assert blank["faces"] == 0 and blank["frames_without_face"] == blank["frames_sampled"] == 5
    assert blank["tracks"] == [] and blank["overall"]["share"]["happy"] == 0.0
    assert "no face was found in any sampled frame" in blank["warnings"]
    assert [r["detected"] for r in rows if r["source"] == "blank.mp4"] == ["no"] * 5
    assert "broken.mp4" not in [s["name"] for s in result.summary["sources"]]
    assert any("broken.mp4: cannot open it as a video" in w for w in result.summary["warnings"])
    assert any("broken.mp4" in w for w in warnings)


def test_photo_sets_are_grouped_by_sub_folder(run):
    result, rows, _, _ = run
    groups = result.summary["groups"]
    assert [g["name"] for g in groups] == ["ad_a", "ad_b"]
    a, b = (_source(result, f"photos/{g}") for g in ("ad_a", "ad_b"))
    assert a["kind"] == "photo" and a["frames_sampled"] == 2 and a["duration_s"] is None
    assert b["frames_sampled"] == 2 and any("broken.jpg" in w for w in b["warnings"])
    assert groups[0]["share"]["angry"] > groups[1]["share"]["angry"]
    photo_rows = [r for r in rows if r["kind"] == "photo"]
    assert {r["frame"] for r in photo_rows} == {"0.png", "1.png"} and all(r["time_s"] == "" for r in photo_rows)


def test_analyze_video_without_an_output_folder(predictor, tmp_path):
    path = segment_video(tmp_path / "v.mp4", [("angry", 1.0)])
    result = analyze_video(predictor, VideoSource(path, "v.mp4"), Settings(fps=2, smooth=0))
    assert result.entry["frames_sampled"] == 2 and len(result.rows) == 2
    peaks = result.entry["overall"]["peaks"]["angry"]
    assert peaks and peaks[0]["thumbnail"] is None and not list(tmp_path.glob("peaks"))
