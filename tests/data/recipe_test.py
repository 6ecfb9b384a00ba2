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
    assert error_of("balancing/none.json") == "balancing/none.json: no such file"
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


# --- runaway input (issue 16) ---


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (1_000_000_000, "balancing/x.json: target: got 1,000,000,000; limit 100,000"),
        ({"happy": 100_001}, "balancing/x.json: target.happy: got 100,001; limit 100,000"),
        ({f"c{i}": 1 for i in range(1001)}, "balancing/x.json: target classes: got 1,001; limit 1,000"),
        (
            1e9,
            "balancing/x.json: 'target' must be a positive integer or a mapping of class to integer; got 1000000000.0",
        ),
        (True, "balancing/x.json: 'target' must be a positive integer or a mapping of class to integer; got True"),
    ],
)
def test_target_is_limited_per_class(tmp_path, monkeypatch, target, expected):
    monkeypatch.chdir(tmp_path)
    assert error_of(write_recipe(tmp_path, {"target": target, "augmentations": PIPELINE})) == expected


def test_target_at_the_limit_is_accepted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_recipe(write_recipe(tmp_path, {"target": 100_000, "augmentations": PIPELINE})).target == 100_000


def test_non_finite_numbers_anywhere_in_the_pipeline_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "balancing").mkdir()
    text = json.dumps({"target": 10, "seed": 1, "augmentations": PIPELINE}).replace('"p": 0.5', '"p": NaN')
    text = text.replace("[-40, 40]", "[-Infinity, 1e999]")
    (tmp_path / "balancing" / "x.json").write_text(text)
    assert error_of("balancing/x.json").splitlines() == [
        "balancing/x.json: augmentations.transforms[0].rotate[0]: must be a finite number; got -Infinity",
        "balancing/x.json: augmentations.transforms[0].rotate[1]: must be a finite number; got inf",
        "balancing/x.json: augmentations.transforms[1].p: must be a finite number; got NaN",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[" * 10_000 + "]" * 10_000, "balancing/x.json: nesting depth: got 10,000; limit 64"),
        ('{"target": ' + "1" * 5000 + "}", "balancing/x.json: line 1, column 12: integer: got 5,000 digits"),
        (b"\x1f\x8b\x08\x00\xff\xfe gzip", "balancing/x.json: is not UTF-8 text"),
        ('{"target": 1, "pad": "' + "x" * 2_000_000 + '"}', "balancing/x.json: file size: got 2,000,024 bytes"),
        ('"a string"', "balancing/x.json: 'recipe' must be a JSON object; got 'a string'"),
    ],
    ids=["deep", "long-integer", "binary", "2-MB", "string"],
)
def test_unreadable_recipe_files_are_one_line_naming_the_file(tmp_path, monkeypatch, content, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "balancing").mkdir()
    path = tmp_path / "balancing" / "x.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    message = error_of("balancing/x.json")
    assert message.startswith(expected) and "\n" not in message
