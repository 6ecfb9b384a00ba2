"""fer_keras.data.stats: counts, colour modes and sizes match the files on disk."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fer_keras.constants import CLASS_NAMES
from fer_keras.data.demo import make_demo_dataset
from fer_keras.errors import FerError
from fer_keras.data.stats import dataset_stats, format_stats, list_dataset


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("stats") / "data"
    counts = make_demo_dataset(root, {"train": 5, "valid": 3, "test": 2}, seed=7)
    (root / "train" / "angry" / "notes.txt").write_text("not an image")  # ignored
    return root, counts


def test_counts_modes_and_sizes_match_the_files(demo):
    root, counts = demo
    stats = dataset_stats(root)
    assert stats["counts"] == counts
    assert stats["total"] == 7 * 10 and stats["split_totals"] == {"train": 35, "valid": 21, "test": 14}
    assert stats["classes"] == list(CLASS_NAMES) and stats["class_totals"]["happy"] == 10
    modes, sizes = {}, []
    for f in list_dataset(root):
        with Image.open(root / f.relpath) as img:
            modes[img.mode] = modes.get(img.mode, 0) + 1
            sizes.append(img.size)
    assert stats["modes"] == dict(sorted(modes.items())) and set(modes) == {"L", "RGB"}
    assert sum(c["grayscale"] for c in stats["color"].values()) == modes["L"]
    assert sum(c["rgb"] for c in stats["color"].values()) == modes["RGB"]
    widths = sorted(w for w, _ in sizes)
    assert stats["sizes"]["width"] == {"min": widths[0], "median": widths[(len(widths) - 1) // 2], "max": widths[-1]}
    top = stats["sizes"]["most_common"][0]
    assert top["count"] == max(sizes.count(s) for s in set(sizes)) and tuple(top["size"]) in sizes
    assert stats["sizes"]["distinct"] == len(set(sizes)) and stats["unreadable"] == []


def test_unreadable_headers_are_listed_not_raised(demo, tmp_path):
    root = tmp_path / "data"
    (root / "train" / "sad").mkdir(parents=True)
    Image.new("L", (30, 20), 128).save(root / "train" / "sad" / "a.png")
    (root / "train" / "sad" / "b.jpg").write_bytes(b"garbage")
    stats = dataset_stats(root)
    assert stats["counts"] == {"train": {"sad": 2}}
    assert [u["path"] for u in stats["unreadable"]] == ["train/sad/b.jpg"]
    assert stats["sizes"]["most_common"] == [{"size": [30, 20], "count": 1}]
    text = format_stats(stats)
    assert "unreadable headers: 1" in text and "30x20 (1)" in text


def test_the_table_has_a_row_per_split_and_totals(demo):
    root, _ = demo
    lines = format_stats(dataset_stats(root)).splitlines()
    assert lines[0].split() == ["split", *CLASS_NAMES, "total"]
    assert lines[1].split() == ["train", *["5"] * 7, "35"]
    assert lines[4].split() == ["total", *["10"] * 7, "70"]


def test_missing_or_empty_folders_are_clear_errors(tmp_path):
    with pytest.raises(FerError, match="dataset folder not found"):
        dataset_stats(tmp_path / "nope")
    with pytest.raises(FerError, match="no split folders"):
        dataset_stats(tmp_path)


def test_a_blurred_split_is_measured_and_flagged(tmp_path):
    from PIL import ImageFilter

    from fer_keras.data.sharpness import laplacian_variance

    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for split, radius in [("train", 3), ("valid", 0), ("test", 0)]:
        folder = root / split / "happy"
        folder.mkdir(parents=True)
        for i in range(6):
            img = Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8))
            (img.filter(ImageFilter.GaussianBlur(radius)) if radius else img).save(folder / f"{i}.png")
    stats = dataset_stats(root)
    sharp = stats["sharpness"]
    assert sharp["blurred"] == ["train"] and sharp["splits"]["valid"]["sampled"] == 6
    assert sharp["splits"]["train"]["median_sharpness"] < 0.05 * sharp["splits"]["valid"]["median_sharpness"]
    assert "warning: train is much blurrier" in format_stats(stats)
    flat = np.tile(np.arange(48, dtype=np.float64), (1, 48, 1))  # a linear ramp has no curvature
    assert laplacian_variance(flat)[0] == pytest.approx(0.0, abs=1e-9)


def test_sharpness_of_the_real_fer2013_flags_no_split(fer2013):
    from fer_keras.data.sharpness import split_sharpness

    paths = {s: sorted(str(p) for p in (fer2013 / s).glob("*/*.jpg")) for s in ("train", "valid", "test")}
    result = split_sharpness(paths, sample=200)
    assert result["blurred"] == []
    values = [s["median_sharpness"] for s in result["splits"].values()]
    assert min(values) > 0.8 * max(values)  # all three splits are the original, equally sharp images
