"""The embedded demo dataset: small, deterministic, synthetic drawn faces.

Each emotion has its own mouth curve, mouth opening, brow angle and eye size, so a
small CNN learns it in a few epochs on a CPU, while noise, jitter, varied image
sizes and a mix of grayscale and RGB files exercise the real loading paths.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from fer_keras.constants import CLASS_NAMES, SPLITS
from fer_keras.errors import FerError
from fer_keras.validation import check_int

# Per emotion: mouth curvature (+ smile, - frown), mouth opening, brow tilt
# (+ inner ends down = angry), eye scale.
_FEATURES: dict[str, tuple[float, float, float, float]] = {
    "angry": (-0.4, 0.15, 0.8, 0.8),
    "disgust": (-0.8, 0.05, 0.3, 0.6),
    "fear": (-0.1, 0.6, -0.7, 1.4),
    "happy": (1.0, 0.25, 0.0, 1.0),
    "neutral": (0.0, 0.0, 0.0, 1.0),
    "sad": (-1.0, 0.0, -0.9, 0.9),
    "surprise": (0.0, 1.0, -0.4, 1.5),
}
DEFAULT_SPLIT_SIZES: dict[str, int] = {"train": 60, "valid": 15, "test": 15}


def draw_face(emotion: str, rng: np.random.Generator, size: int = 64, rgb: bool = False) -> Image.Image:
    """Draw one synthetic face for ``emotion`` with random jitter.

    Example:
        >>> img = draw_face("happy", np.random.default_rng(0))
        >>> img.size
        (64, 64)
    """
    curve, opening, brow, eye = _FEATURES[emotion]
    jit = lambda scale: float(rng.normal(0.0, scale))  # noqa: E731
    s = 256  # draw large, then downsample: smooth edges like a photo
    bg = int(rng.integers(20, 90))
    skin = tuple(int(v) for v in rng.integers([150, 110, 90], [240, 200, 170]))
    img = Image.new("RGB", (s, s), (bg, bg, bg))
    d = ImageDraw.Draw(img)
    cx, cy = s / 2 + jit(8), s / 2 + jit(8)
    rx, ry = s * (0.36 + jit(0.02)), s * (0.44 + jit(0.02))
    d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=skin)
    dark = (30, 25, 25)
    # Eyes.
    ex, ey, er = s * 0.15, cy - s * 0.08, s * 0.035 * (eye + jit(0.08))
    for sign in (-1, 1):
        x = cx + sign * ex
        d.ellipse([x - er * 1.6, ey - er, x + er * 1.6, ey + er], fill=(250, 250, 250))
        d.ellipse([x - er * 0.7, ey - er * 0.7, x + er * 0.7, ey + er * 0.7], fill=dark)
    # Brows: the inner end moves down by ``brow``.
    by = ey - s * 0.09
    tilt = s * 0.05 * (brow + jit(0.1))
    for sign in (-1, 1):
        outer, inner = cx + sign * s * 0.24, cx + sign * s * 0.07
        d.line([outer, by - tilt * 0.3, inner, by + tilt], fill=dark, width=int(s * 0.025))
    # Mouth: a curve whose middle sags (frown) or lifts (smile), opened by ``opening``.
    my, half = cy + s * 0.2, s * (0.14 + jit(0.01))
    c = s * 0.09 * (curve + jit(0.1))
    xs = np.linspace(cx - half, cx + half, 24)
    t = (xs - cx) / half
    upper = my + c * (1 - t**2) - c * 0.4
    lower = upper + s * 0.11 * max(0.0, opening + jit(0.05)) * (1 - t**2)
    outline = list(zip(xs, upper)) + list(zip(xs[::-1], lower[::-1]))
    if opening > 0.05:
        d.polygon(outline, fill=(90, 20, 30))
    d.line(list(zip(xs, upper)), fill=dark, width=int(s * 0.02))
    img = img.rotate(jit(6), resample=Image.BILINEAR, fillcolor=(bg, bg, bg))
    img = img.resize((size, size), Image.BILINEAR).filter(ImageFilter.GaussianBlur(0.4))
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, 8, (size, size, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return img if rgb else img.convert("L")


def make_demo_dataset(
    out: str | os.PathLike,
    split_sizes: dict[str, int] | None = None,
    seed: int = 0,
    classes: tuple[str, ...] = CLASS_NAMES,
) -> dict[str, dict[str, int]]:
    """Write the demo dataset to ``out`` in the ``{split}/{emotion}/*`` layout.

    Sizes vary (40–96 px), about a third of the files are RGB, formats alternate
    between jpg and png. Deterministic for a given ``seed``. Existing files are
    overwritten; other files in ``out`` are left alone.

    Args:
        out: the dataset root to create.
        split_sizes: images per class for each split (default 60/15/15).
        seed: random seed.
        classes: emotions to draw (default all seven).

    Returns:
        Counts per split and class.

    Example:
        >>> counts = make_demo_dataset("data/demo")  # doctest: +SKIP
        >>> counts["train"]["happy"]  # doctest: +SKIP
        60
    """
    sizes = dict(DEFAULT_SPLIT_SIZES if split_sizes is None else split_sizes)
    for split, n in sizes.items():
        if split not in SPLITS:
            raise FerError(f"split_sizes: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        check_int(f"split_sizes[{split!r}]", n, minimum=1)
    unknown = [c for c in classes if c not in _FEATURES]
    if unknown:
        raise FerError(f"classes: no drawing for {unknown}; expected names from {', '.join(CLASS_NAMES)}")
    out = Path(out)
    rng = np.random.default_rng(seed)
    counts: dict[str, dict[str, int]] = {}
    for split, n in sizes.items():
        counts[split] = {}
        for emotion in classes:
            folder = out / split / emotion
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                size = int(rng.integers(40, 97))
                rgb = bool(rng.random() < 0.35)
                img = draw_face(emotion, rng, size=size, rgb=rgb)
                ext = "png" if i % 2 else "jpg"
                img.save(folder / f"{emotion}_{i:04d}.{ext}", quality=92)
            counts[split][emotion] = n
    return counts
