"""Planning a balanced build: which ``train`` files are kept, trimmed and generated, from what.

A :class:`BalancePlan` is deterministic: it depends only on the recipe and the source
files (names, sizes, mtimes), and its :attr:`~BalancePlan.key` identifies the output,
so the same plan always builds the same files. Generated image ``n`` of a class has a
source image and a seed fixed by the plan (:func:`augment_seed`). Planning reads the
source folder only and writes nothing; :mod:`fer_keras.data.balance` builds the plan.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fer_keras.constants import SPLITS
from fer_keras.data.folders import dataset_classes, is_image_file, list_classes
from fer_keras.data.recipe import Recipe, describe_target
from fer_keras.errors import FerError, did_you_mean, problem
from fer_keras.validation import MAX_IMAGES, field_name, shown

# Part of the build key: bump when the way images are derived changes.
BUILD_VERSION = 1
SEED_RULE = "numpy SeedSequence([recipe seed, crc32(class), 3, n]).generate_state(1)[0]"


@dataclass(frozen=True)
class ClassPlan:
    """What happens to one class of ``train``. Paths are relative to the source root."""

    name: str
    target: int
    kept: tuple[str, ...]
    trimmed: tuple[str, ...]
    sources: tuple[str, ...]  # the source image of generated image n, for n in range(len(sources))

    @property
    def before(self) -> int:
        return len(self.kept) + len(self.trimmed)


@dataclass(frozen=True)
class BalancePlan:
    """The full, deterministic plan of a build; see :func:`plan_balance`."""

    recipe: Recipe
    source: Path
    out: Path
    classes: tuple[ClassPlan, ...]
    carried: tuple[str, ...]  # valid/test files, relative to the source root
    source_sha256: str

    @property
    def key(self) -> str:
        """Identifies the output: same key, same files."""
        text = f"{BUILD_VERSION}:{self.recipe.sha256()}:{self.source_sha256}"
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def staging(self) -> Path:
        return self.out.parent / f".{self.out.name}.building-{self.key[:16]}"

    def aug_name(self, class_name: str, n: int) -> str:
        return f"{class_name}_aug_{n:06d}.{self.recipe.output_format}"


def augment_seed(recipe_seed: int, class_name: str, n: int) -> int:
    """The seed of generated image ``n`` of ``class_name`` (see ``SEED_RULE``)."""
    import numpy as np

    entropy = [recipe_seed, zlib.crc32(class_name.encode()), 3, n]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def _class_rng(recipe_seed: int, class_name: str, purpose: int):
    import numpy as np

    return np.random.default_rng([recipe_seed, zlib.crc32(class_name.encode()), purpose])


def image_entries(folder: Path) -> list[os.DirEntry]:
    """The image files directly in ``folder``, sorted by name."""
    return sorted((e for e in os.scandir(folder) if e.is_file() and is_image_file(e.name)), key=lambda e: e.name)


def plan_balance(recipe: Recipe, data: str | os.PathLike, out: str | os.PathLike) -> BalancePlan:
    """Work out which files are kept, trimmed and generated, without writing anything.

    Raises:
        FerError: missing/empty source folders, an output folder inside the source
            (or the reverse), a per-class ``target`` that doesn't match the classes, or
            targets above the limits (per class, and :data:`~fer_keras.validation.MAX_IMAGES`
            in total), checked before anything is planned.

    Example:
        >>> plan = plan_balance(load_recipe("balancing/balanced.json"), "data/fer2013", "/tmp/b")  # doctest: +SKIP
        >>> [(c.name, c.before, c.target) for c in plan.classes][:1]  # doctest: +SKIP
        [('angry', 3995, 10000)]
    """
    source, out = Path(data).resolve(), Path(out).resolve()
    if out == source or source in out.parents or out in source.parents:
        raise FerError(f"{out}: 'out' must be a new folder outside the source dataset {source}")
    classes = dataset_classes(source)
    _check_target_classes(recipe, classes, source)
    _check_target_limits(recipe, classes)
    fingerprint = hashlib.sha256()
    plans = []
    for name in classes:
        folder = source / "train" / name
        entries = image_entries(folder) if folder.is_dir() else []
        if not entries:
            raise FerError(f"{folder}: empty class folder (no image files to keep or augment)")
        sizes = {}
        for e in entries:
            st = e.stat()
            sizes[e.name] = st.st_size
            fingerprint.update(f"train/{name}/{e.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        plans.append(_plan_class(recipe, name, sizes))
    carried = []
    for split in SPLITS:
        if split == "train" or not (source / split).is_dir():
            continue
        for name in list_classes(source / split):
            for e in image_entries(source / split / name):
                st = e.stat()
                carried.append(f"{split}/{name}/{e.name}")
                fingerprint.update(f"{carried[-1]}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    plan = BalancePlan(recipe, source, out, tuple(plans), tuple(carried), fingerprint.hexdigest())
    for c in plan.classes:
        clash = {Path(p).name for p in c.kept} & {plan.aug_name(c.name, n) for n in range(len(c.sources))}
        if clash:
            raise FerError(
                f"{source / 'train' / c.name / sorted(clash)[0]}: source file name collides with a generated "
                "image name; balance the original dataset, not a balanced one"
            )
    return plan


def _check_target_classes(recipe: Recipe, classes: Sequence[str], source: Path) -> None:
    if isinstance(recipe.target, int):
        return
    where = recipe.file or "recipe"
    problems = [
        problem(
            where, f"{field_name('target.' + k)}: no class {shown(k)} in {source / 'train'}{did_you_mean(k, classes)}"
        )
        for k in recipe.target
        if k not in classes
    ]
    problems += [problem(where, f"'target' has no count for class '{c}'") for c in classes if c not in recipe.target]
    if problems:
        raise FerError(problems)


def _check_target_limits(recipe: Recipe, classes: Sequence[str]) -> None:
    where = recipe.file or "recipe"
    message = describe_target(recipe.target)
    if message is None:
        total = sum(recipe.target_for(c) for c in classes)
        if total > MAX_IMAGES:
            message = f"target: got {total:,} train images in total ({len(classes)} classes); limit {MAX_IMAGES:,}"
    if message:
        raise FerError(problem(where, message))


def _plan_class(recipe: Recipe, name: str, sizes: dict[str, int]) -> ClassPlan:
    target = recipe.target_for(name)
    files = sorted(sizes)
    extra = len(files) - target
    trimmed: list[str] = []
    if extra > 0:
        if recipe.trim == "smallest_first":
            # Smallest files first: in FER2013 these are mostly blank or near-uniform frames.
            trimmed = sorted(files, key=lambda f: (sizes[f], f))[:extra]
        else:
            trimmed = [files[i] for i in _class_rng(recipe.seed, name, 1).choice(len(files), extra, replace=False)]
    dropped = set(trimmed)
    kept = [f for f in files if f not in dropped]
    # Cycle through the originals in a seeded order: every original is used about
    # equally often, and a class needing fewer images than it has gets a random subset.
    order = _class_rng(recipe.seed, name, 2).permutation(len(kept))
    sources = [kept[order[n % len(kept)]] for n in range(max(0, -extra))]
    rel = f"train/{name}/"
    return ClassPlan(
        name,
        target,
        tuple(rel + f for f in kept),
        tuple(sorted(rel + f for f in trimmed)),
        tuple(rel + f for f in sources),
    )
