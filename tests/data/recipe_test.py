"""Balancing recipes: the shipped recipes load, and every bad field is one line naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_keras.errors import FerError
from fer_keras.data.recipe import build_pipeline, load_recipe, parse_recipe, reseed

ROOT = Path(__file__).resolve().parents[2]

PIPELINE = {
    "__class_fullname__": "Compose",
    "p": 1.0,
    "transforms": [
        {"__class_fullname__": "Affine", "rotate": [-40, 40], "border_mode": 1, "p": 1.0},
        {"__class_fullname__": "HorizontalFlip", "p": 0.5},
    ],
}


def write_recipe(folder: Path, data: dict, name: str = "x.json") -> str:
    """Write ``balancing/<name>`` under ``folder`` and return its relative path."""
    (folder / "balancing").mkdir(exist_ok=True)
    (folder / "balancing" / name).write_text(json.dumps(data))
    return f"balancing/{name}"


def error_of(path: str) -> str:
    with pytest.raises(FerError) as info:
        load_recipe(path)
    return str(info.value)


@pytest.mark.parametrize(("name", "target"), [("balanced", 10000), ("balanced-2", 30000)])
def test_shipped_recipes_load_and_build_the_reference_augmentation(name, target):
    import albumentations as A
    import cv2

    recipe = load_recipe(ROOT / "balancing" / f"{name}.json")
    assert recipe.name == name
    assert recipe.target_for("disgust") == target
    assert recipe.trim == "smallest_first" and recipe.output_format == "png"
    pipeline = recipe.build_pipeline()
    affine, flip = pipeline.transforms
    assert isinstance(affine, A.Affine) and isinstance(flip, A.HorizontalFlip)
    assert affine.border_mode == cv2.BORDER_REPLICATE  # Keras fill_mode='nearest'
    assert tuple(affine.rotate) == (-40, 40)
    assert tuple(affine.shear["x"]) == (-0.2, 0.2)  # Keras shear_range is in degrees
    assert flip.p == 0.5


def test_both_shipped_recipes_share_one_pipeline_and_differ_in_hash():
    one = load_recipe(ROOT / "balancing" / "balanced.json")
    two = load_recipe(ROOT / "balancing" / "balanced-2.json")
    assert one.augmentations == two.augmentations
    assert one.sha256() != two.sha256()


def test_bad_target_names_file_and_field(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_recipe(tmp_path, {"target": -5, "augmentations": PIPELINE})
    assert error_of(path) == (
        "balancing/x.json: 'target' must be a positive integer or a mapping of class to integer; got -5"
    )


def test_bad_per_class_target(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_recipe(tmp_path, {"target": {"happy": 10, "sad": 0}, "augmentations": PIPELINE})
    assert error_of(path) == "balancing/x.json: 'target.sad' must be a positive integer; got 0"


def test_unknown_augmentation_suggests_the_right_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = json.loads(json.dumps(PIPELINE))
    bad["transforms"][1]["__class_fullname__"] = "HorizontalFlipp"
    path = write_recipe(tmp_path, {"target": 10, "augmentations": bad})
    assert error_of(path) == (
        "balancing/x.json: augmentations.transforms[1]: unknown albumentations transform 'HorizontalFlipp'; "
        "did you mean 'HorizontalFlip'?"
    )


def test_full_to_dict_form_reports_its_real_path(tmp_path, monkeypatch):
    import albumentations as A

    monkeypatch.chdir(tmp_path)
    wrapped = A.to_dict(A.Compose([A.HorizontalFlip(p=0.5), A.Affine(rotate=(-10, 10), p=1.0)]))
    assert load_recipe(write_recipe(tmp_path, {"target": 10, "augmentations": wrapped})).build_pipeline()
    wrapped["transform"]["transforms"][0]["__class_fullname__"] = "Rotatee"
    message = error_of(write_recipe(tmp_path, {"target": 10, "augmentations": wrapped}))
    assert message.startswith("balancing/x.json: augmentations.transform.transforms[0]: unknown albumentations")
    assert message.endswith("did you mean 'Rotate'?")


def test_bad_transform_arguments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = json.loads(json.dumps(PIPELINE))
    bad["transforms"][0]["rotat"] = 5
    assert error_of(write_recipe(tmp_path, {"target": 10, "augmentations": bad})) == (
        "balancing/x.json: augmentations.transforms[0]: Affine has no argument 'rotat'; did you mean 'rotate'?"
    )
    bad = json.loads(json.dumps(PIPELINE))
    bad["transforms"][0]["border_mode"] = 99
    message = error_of(write_recipe(tmp_path, {"target": 10, "augmentations": bad}))
    assert message.startswith("balancing/x.json: augmentations.transforms[0]: invalid Affine arguments: 'border_mode'")
    assert message.endswith("got 99")
    assert "\n" not in message


def test_every_problem_reported_in_one_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_recipe(tmp_path, {"target": 10, "trim": "largest", "seeed": 3, "output_format": "gif"})
    lines = error_of(path).splitlines()
    assert "balancing/x.json: unknown field 'seeed'; did you mean 'seed'?" in lines
    assert "balancing/x.json: missing field 'augmentations'" in lines
    assert any(line.startswith("balancing/x.json: 'trim' must be one of 'smallest_first', 'random'") for line in lines)
    assert any(line.startswith("balancing/x.json: 'output_format' must be one of") for line in lines)


def test_unreadable_recipes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert error_of("balancing/none.json") == "balancing/none.json: recipe file not found"
    (tmp_path / "balancing").mkdir()
    (tmp_path / "balancing" / "broken.json").write_text('{"target": 10,\n oops}')
    assert error_of("balancing/broken.json").startswith("balancing/broken.json: invalid JSON at line 2")


def test_hash_covers_output_fields_only():
    base = parse_recipe({"name": "a", "target": 10, "seed": 1, "augmentations": PIPELINE})
    renamed = parse_recipe({"name": "b", "description": "x", "target": 10, "seed": 1, "augmentations": PIPELINE})
    reseeded = parse_recipe({"name": "a", "target": 10, "seed": 2, "augmentations": PIPELINE})
    assert base.sha256() == renamed.sha256() != reseeded.sha256()


def test_reseed_makes_each_image_reproducible():
    pipeline = build_pipeline(PIPELINE)
    image = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    outputs = []
    for seed in (5, 6, 5):
        reseed(pipeline, seed)
        outputs.append(pipeline(image=image)["image"])
    assert np.array_equal(outputs[0], outputs[2])
    assert not np.array_equal(outputs[0], outputs[1])
    assert outputs[0].shape == image.shape
