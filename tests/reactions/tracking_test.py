"""Track identity with norfair: stable ids through a crossing and through missed frames."""

import pytest

from fer_keras.inference.faces import Box

pytest.importorskip("norfair")

from fer_keras.reactions.tracking import FaceTracker  # noqa: E402


def test_two_faces_swapping_sides_keep_their_ids():
    tracker = FaceTracker(fps=5)
    seen = {}
    for step in range(21):
        x = 30 + step * 22  # 30 -> 470 and back, crossing in the middle
        upper, lower = Box(x, 20, 140, 140), Box(500 - x, 300, 140, 140)
        ids = tracker.update([upper, lower] if step % 2 else [lower, upper])
        by_row = dict(zip(["upper", "lower"] if step % 2 else ["lower", "upper"], ids))
        for row, track in by_row.items():
            seen.setdefault(row, set()).add(track)
    assert len(seen["upper"]) == 1 and len(seen["lower"]) == 1
    assert seen["upper"] != seen["lower"]


def test_a_face_missed_for_a_moment_keeps_its_id():
    tracker = FaceTracker(fps=5)
    first = tracker.update([Box(100, 100, 120, 120)])
    for _ in range(5):  # a track seen for a second survives TRACK_MEMORY_S without detections
        assert tracker.update([Box(100, 100, 120, 120)]) == first
    for _ in range(3):
        assert tracker.update([]) == []
    assert tracker.update([Box(104, 100, 120, 120)]) == first


def test_a_new_face_gets_a_new_id():
    tracker = FaceTracker(fps=5)
    [a] = tracker.update([Box(0, 0, 100, 100)])
    a2, b = tracker.update([Box(2, 0, 100, 100), Box(400, 300, 100, 100)])
    assert a2 == a and b != a
