"""fer_keras.data.demo: the generated demo dataset is deterministic, complete and as varied as documented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_keras.constants import CLASS_NAMES
from fer_keras.data.demo import DEFAULT_SPLIT_SIZES, draw_face, make_demo_dataset
from fer_keras.errors import FerError

SIZES = {"train": 4, "valid": 2, "test": 1}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict[str, dict[str, int]]]:
    root = tmp_path_factory.mktemp("demo") / "data"
    return root, make_demo_dataset(root, SIZES, seed=3)


def test_layout_and_counts(demo):
    root, counts = demo
    assert counts == {split: dict.fromkeys(CLASS_NAMES, n) for split, n in SIZES.items()}
    for split, n in SIZES.items():
        assert sorted(p.name for p in (root / split).iterdir()) == sorted(CLASS_NAMES)
        for emotion in CLASS_NAMES:
            # Formats alternate: even indices jpg, odd png.
            expected = [f"{emotion}_{i:04d}.{'png' if i % 2 else 'jpg'}" for i in range(n)]
            assert sorted(p.name for p in (root / split / emotion).iterdir()) == expected
    assert sorted(p.name for p in root.iterdir()) == sorted(SIZES)


def test_images_mix_sizes_and_colour_modes_as_documented(demo):
    root, _ = demo
    modes, sides = [], []
    for path in sorted(root.rglob("*.*")):
        with Image.open(path) as img:
            assert img.width == img.height, path
            modes.append(img.mode)
            sides.append(img.width)
    assert set(modes) == {"L", "RGB"}
    assert 0.15 < modes.count("RGB") / len(modes) < 0.6  # "about a third"
    assert min(sides) >= 40 and max(sides) <= 96 and len(set(sides)) > 10


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    make_demo_dataset(a, {"valid": 2}, seed=7, classes=("happy", "sad"))
    make_demo_dataset(b, {"valid": 2}, seed=7, classes=("happy", "sad"))
    make_demo_dataset(c, {"valid": 2}, seed=8, classes=("happy", "sad"))
    assert _files(a) == _files(b)
    assert _files(a).keys() == _files(c).keys() and _files(a) != _files(c)


def test_default_sizes_and_a_subset_of_classes(tmp_path):
    counts = make_demo_dataset(tmp_path, classes=("surprise",))
    assert counts == {split: {"surprise": n} for split, n in DEFAULT_SPLIT_SIZES.items()}
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["surprise"]


def test_reruns_overwrite_their_files_and_leave_others_alone(tmp_path):
    make_demo_dataset(tmp_path, {"test": 1}, seed=1, classes=("fear",))
    own = tmp_path / "test" / "fear" / "fear_0000.jpg"
    own.write_bytes(b"spoiled")
    mine = tmp_path / "test" / "fear" / "mine.txt"
    mine.write_text("keep")
    make_demo_dataset(tmp_path, {"test": 1}, seed=1, classes=("fear",))
    assert own.read_bytes() != b"spoiled" and mine.read_text() == "keep"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split_sizes": {"training": 3}}, "split_sizes: unknown split 'training'; expected one of train, valid, test"),
        ({"split_sizes": {"train": 0}}, "split_sizes['train']"),
        ({"split_sizes": {"train": 2.5}}, "split_sizes['train']"),
        ({"classes": ("happy", "contempt")}, "classes: no drawing for ['contempt']"),
    ],
)
def test_bad_arguments_are_one_line_errors_and_write_nothing(tmp_path, kwargs, message):
    out = tmp_path / "out"
    with pytest.raises(FerError) as err:
        make_demo_dataset(out, **kwargs)
    [line] = err.value.problems
    assert message in line and "\n" not in line
    assert not out.exists()


def test_draw_face_size_mode_and_determinism():
    gray = draw_face("happy", np.random.default_rng(0), size=48)
    assert gray.size == (48, 48) and gray.mode == "L"
    rgb = draw_face("happy", np.random.default_rng(0), size=80, rgb=True)
    assert rgb.size == (80, 80) and rgb.mode == "RGB"
    again = draw_face("happy", np.random.default_rng(0), size=48)
    assert np.array_equal(np.asarray(gray), np.asarray(again))
    other = draw_face("sad", np.random.default_rng(0), size=48)
    assert not np.array_equal(np.asarray(gray), np.asarray(other))
