"""Inputs of fer-reactions: sources from paths, video sampling, and unreadable videos."""

import cv2
import numpy as np
import pytest

from fer_keras.reactions.sources import (
    PhotoSet,
    UnreadableVideo,
    VideoSource,
    collect_sources,
    open_video,
    sample_frames,
)
from tests.reactions.videos import blank_video, photo


def test_folders_give_photo_sets_per_sub_folder_and_videos(tmp_path):
    root = tmp_path / "campaign"
    for group in ("ad_a", "ad_b"):
        (root / group / "more").mkdir(parents=True)
        photo("happy").save(root / group / "p1.jpg")
        photo("sad").save(root / group / "more" / "p2.png")
    photo("happy").save(root / "top.jpg")
    blank_video(root / "ad_a" / "viewer.mp4", seconds=0.5)
    (root / ".hidden").mkdir()
    photo("happy").save(root / ".hidden" / "x.jpg")
    (root / "notes.txt").write_text("not an input")
    sources, warnings = collect_sources([root, tmp_path / "missing.mp4"])
    assert warnings == [f"{tmp_path / 'missing.mp4'}: not found; skipped"]
    kinds = [(type(s), s.name, s.group) for s in sources]
    assert kinds == [
        (PhotoSet, "campaign", None),
        (PhotoSet, "campaign/ad_a", "ad_a"),
        (PhotoSet, "campaign/ad_b", "ad_b"),
        (VideoSource, "campaign/ad_a/viewer.mp4", "ad_a"),
    ]
    assert [name for _, name in sources[1].photos] == ["p1.jpg", "more/p2.png"]


def test_empty_folder_is_a_warning_and_names_stay_unique(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        blank_video(tmp_path / folder / "v.mp4", seconds=0.3)
    sources, warnings = collect_sources([tmp_path / "empty", tmp_path / "a" / "v.mp4", tmp_path / "b" / "v.mp4"])
    assert warnings == [f"{tmp_path / 'empty'}: no images or videos in this folder; skipped"]
    assert [s.name for s in sources] == ["v.mp4", "v.mp4 (2)"]


def test_sampling_takes_fps_frames_per_second(tmp_path):
    path = blank_video(tmp_path / "v.mp4", seconds=3.0, fps=30)
    capture, info = open_video(path)
    frames = list(sample_frames(capture, info, 5, str(path)))
    assert [f.index for f in frames] == list(range(0, 90, 6))
    assert [round(f.time_s, 3) for f in frames[:3]] == [0.0, 0.2, 0.4]
    assert info.frame_count == 90 and info.duration_s == pytest.approx(3.0)
    assert frames[0].bgr.shape == (480, 640, 3)


def test_a_slower_video_gives_every_frame(tmp_path):
    path = blank_video(tmp_path / "v.mp4", seconds=2.0, fps=4)
    capture, info = open_video(path)
    assert len(list(sample_frames(capture, info, 10, str(path)))) == 8


def _avi_with_unknown_codec(path):
    writer = cv2.VideoWriter(str(path.with_suffix(".tmp.avi")), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), i * 40, np.uint8))
    writer.release()
    path.write_bytes(path.with_suffix(".tmp.avi").read_bytes().replace(b"MJPG", b"ZZZZ"))
    return path


@pytest.mark.parametrize(
    ("make", "reason", "words"),
    [
        (lambda p: p.write_bytes(b""), "empty", "empty file (0 bytes)"),
        (lambda p: p.write_bytes(b"not a video " * 100), "unreadable", "cannot open it as a video"),
        (_avi_with_unknown_codec, "unreadable", "codec OpenCV's FFmpeg cannot decode"),
        (
            lambda p: cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48)).release(),
            "undecodable",
            "no frame could be decoded (a zero-length video",
        ),
    ],
    ids=["empty", "garbage", "unknown-codec", "zero-frames"],
)
def test_unreadable_videos_are_one_line(tmp_path, make, reason, words):
    path = tmp_path / "bad.avi"
    make(path)
    with pytest.raises(UnreadableVideo) as err:
        capture, info = open_video(path)
        list(sample_frames(capture, info, 5, str(path)))
    assert err.value.reason == reason
    assert len(err.value.problems) == 1 and err.value.problems[0].startswith(f"{path}: ")
    assert words in str(err.value)
