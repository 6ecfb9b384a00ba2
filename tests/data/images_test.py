"""fer_keras.data.images: every mode and format decodes to the requested size and channels; bad files are reported."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fer_keras.data.images import load_image, load_images, map_files

MODES = {
    "L": lambda: Image.new("L", (30, 20), 90),
    "RGB": lambda: Image.new("RGB", (64, 64), (200, 10, 10)),
    "RGBA": lambda: Image.new("RGBA", (40, 40), (0, 0, 0, 0)),  # fully transparent → white
    "P": lambda: Image.new("RGB", (50, 60), (10, 200, 10)).convert("P"),
}


@pytest.mark.parametrize("ext", ["png", "jpg", "bmp", "webp"])
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("color_mode,channels", [("rgb", 3), ("grayscale", 1)])
def test_any_mode_and_format_decodes_to_the_requested_shape(tmp_path, ext, mode, color_mode, channels):
    img = MODES[mode]()
    if ext == "jpg" and mode in ("RGBA", "P") or (ext == "bmp" and mode == "RGBA"):
        pytest.skip(f"PIL cannot save {mode} as {ext}")
    path = tmp_path / f"x.{ext}"
    img.save(path)
    arr = load_image(path, (48, 32), color_mode)
    assert arr.shape == (48, 32, channels) and arr.dtype == np.uint8


def test_transparency_is_composited_on_white(tmp_path):
    MODES["RGBA"]().save(tmp_path / "t.png")
    assert load_image(tmp_path / "t.png", (8, 8), "grayscale").min() == 255


def test_corrupt_and_truncated_files_are_reported_not_raised(tmp_path):
    good = tmp_path / "good.png"
    Image.new("L", (48, 48), 7).save(good)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"not an image")
    full = tmp_path / "full.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(full)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(full.read_bytes()[:200])
    paths = [str(corrupt), str(good), str(truncated)]
    images, ok, failures = load_images(paths, (48, 48), "grayscale")
    assert ok == [1] and images.shape == (1, 48, 48, 1) and int(images[0, 0, 0, 0]) == 7
    assert [p for p, _ in failures] == sorted([str(corrupt), str(truncated)])
    assert all(reason for _, reason in failures)


def test_map_files_reports_failures_sorted_and_updates_progress_per_file():
    class Bar:
        n = 0

        def update(self, k):
            self.n += k

    def work(i):
        if i % 2:
            raise ValueError(f"odd {i}")

    bar = Bar()
    failures = map_files(["d", "c", "b", "a"], work, workers=2, progress=bar)
    assert failures == [("a", "ValueError: odd 3"), ("c", "ValueError: odd 1")] and bar.n == 4
