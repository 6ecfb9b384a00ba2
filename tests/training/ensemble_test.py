"""fer_keras.training.ensemble: plan without TensorFlow, then build, measure on valid, test once, write."""

import json
import shutil

import numpy as np
import pytest

from fer_keras.constants import ARCHITECTURE_FILE, METADATA_FILE
from fer_keras.errors import FerError
from fer_keras.inference.predictor import Predictor
from fer_keras.model.model_folder import MODEL_FOLDER_FILES
from fer_keras.training.ensemble import export_ensemble, plan_ensemble
from tests.model_fixtures import shared_model_folder


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    return [shared_model_folder(tmp_path_factory, seed=s) for s in (0, 1)]


def test_plan_reports_every_problem_at_once(tmp_path, members):
    with pytest.raises(FerError) as err:
        plan_ensemble([members[0], tmp_path / "missing"], members[0], tmp_path, name="bad name!")
    text = str(err.value)
    assert "name" in text and str(tmp_path / "missing") in text and "valid/" in text


def test_plan_refuses_a_member_as_out_and_a_bad_tta(tiny_data, members):
    with pytest.raises(FerError, match="is one of the members"):
        plan_ensemble(members, members[1], tiny_data)
    with pytest.raises(FerError, match="tta"):
        plan_ensemble(members, "unused", tiny_data, tta=["mirror"])


def test_plan_refuses_to_replace_a_folder_that_is_not_a_model(tmp_path, tiny_data, members):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FerError, match="model folder"):
        plan_ensemble(members, tmp_path, tiny_data)


def test_export_measures_members_and_ensemble_and_writes_a_runnable_folder(tmp_path, tiny_data, members):
    out = tmp_path / "pair"
    meta = export_ensemble(plan_ensemble(members, out, tiny_data, tta=["flip"]), quiet=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(MODEL_FOLDER_FILES)
    written = json.loads((out / METADATA_FILE).read_text())
    assert written["inference"] == {"tta": ["flip"]} and written["name"] == "pair"
    assert [m["name"] for m in written["ensemble"]["members"]] == ["tiny_test_model"] * 2
    assert written["valid_metrics"]["n"] == 28 and written["test_metrics"]["n"] == 28
    assert len(json.loads((out / ARCHITECTURE_FILE).read_text())["ensemble"]) == 2
    # The folder runs like any other, and gives the mean of the members (flip TTA included).
    pixels = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1)).astype(np.float32)
    pair = Predictor.load(out, runtime="keras").predict(pixels)
    single = [Predictor.load(m, runtime="keras", tta=["flip"]).predict(pixels) for m in members]
    np.testing.assert_allclose(pair, (single[0] + single[1]) / 2, atol=1e-5)
    assert meta["valid_metrics"] == written["valid_metrics"]


def test_an_ensemble_with_a_given_class_prior_applies_it_to_the_mean(tmp_path, tiny_data, members):
    from fer_keras.model.class_prior import apply_class_bias

    with pytest.raises(FerError, match="'class_prior' must be"):
        plan_ensemble(members, tmp_path / "x", tiny_data, class_prior="always")
    data = tmp_path / "data"  # unequal training counts, so the correction is not zero
    shutil.copytree(tiny_data, data)
    for image in sorted((data / "train" / "happy").iterdir())[2:]:
        image.unlink()
    out = tmp_path / "pair"
    meta = export_ensemble(plan_ensemble(members, out, data, class_prior=0.5), quiet=True)
    assert meta["class_prior"]["tau"] == 0.5 and len(meta["inference"]["class_bias"]) == 7
    assert max(meta["inference"]["class_bias"]) > 0.5
    pixels = np.random.default_rng(1).integers(0, 256, (4, 48, 48, 1)).astype(np.float32)
    plain = Predictor.load(out, runtime="keras", class_prior=False).predict(pixels)
    corrected = Predictor.load(out, runtime="keras").predict(pixels)
    np.testing.assert_allclose(corrected, apply_class_bias(plain, meta["inference"]["class_bias"]), atol=1e-6)


def test_an_ensemble_folder_given_as_a_member_is_flattened(tmp_path, tmp_path_factory, tiny_data, members):
    pair = tmp_path / "pair"
    export_ensemble(plan_ensemble(members, pair, tiny_data), quiet=True)
    third = shared_model_folder(tmp_path_factory, seed=2)
    with pytest.raises(FerError, match="which .* holds too"):
        plan_ensemble([pair, members[0]], tmp_path / "x", tiny_data)
    plan = plan_ensemble([pair, third], tmp_path / "trio", tiny_data)
    assert [p.index for p in plan.parts] == [0, 1, None] and len(plan.members) == 2
    meta = export_ensemble(plan, quiet=True)
    records = meta["ensemble"]["members"]
    assert [r.get("from") for r in records] == [str(pair), str(pair), None]
    assert [r["path"] for r in records[:2]] == [str(m) for m in members]
    assert len(json.loads((tmp_path / "trio" / ARCHITECTURE_FILE).read_text())["ensemble"]) == 3
    # Each of the three models has an equal share of the mean, as if the three folders were given.
    pixels = np.random.default_rng(2).integers(0, 256, (3, 48, 48, 1)).astype(np.float32)
    trio = Predictor.load(tmp_path / "trio", runtime="keras").predict(pixels)
    single = [Predictor.load(m, runtime="keras").predict(pixels) for m in [*members, third]]
    np.testing.assert_allclose(trio, sum(single) / 3, atol=1e-5)
