"""fer_keras.model.ensemble: members must agree; the ensemble returns their mean probability."""

import numpy as np
import pytest

from fer_keras.errors import FerError
from fer_keras.model.ensemble import average_models, ensemble_architecture, ensemble_problems
from fer_keras.model.model_folder import load_keras_model, read_model_info
from tests.model_fixtures import shared_model_folder


@pytest.fixture(scope="module")
def two_members(tmp_path_factory):
    return [read_model_info(shared_model_folder(tmp_path_factory, seed=s)) for s in (0, 1)]


def test_members_that_agree_have_no_problems(two_members):
    assert ensemble_problems(two_members) == []


def test_member_count_and_duplicates_are_reported(two_members):
    assert ensemble_problems(two_members[:1]) == ["an ensemble needs 2 to 8 model folders; got 1"]
    assert "given twice" in ensemble_problems([two_members[0], two_members[0]])[0]


def test_members_that_disagree_are_named(tmp_path_factory, two_members):
    rgb = read_model_info(shared_model_folder(tmp_path_factory, color_mode="rgb"))
    problems = ensemble_problems([two_members[0], rgb])
    assert any("color_mode is rgb but" in p and str(rgb.path) in p for p in problems)


def test_the_ensemble_returns_the_mean_of_its_members(two_members):
    models = [load_keras_model(info) for info in two_members]
    ensemble = average_models(models, "pair")
    pixels = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1)).astype(np.float32)
    expected = (models[0].predict_on_batch(pixels) + models[1].predict_on_batch(pixels)) / 2
    np.testing.assert_allclose(ensemble.predict_on_batch(pixels), expected, atol=1e-6)
    assert ensemble.name == "pair" and ensemble.output_shape == (None, 7)


def test_average_needs_two_models(two_members):
    with pytest.raises(FerError, match="at least 2 models; got 1"):
        average_models([load_keras_model(two_members[0])], "one")


def test_architecture_lists_member_specs():
    arch = ensemble_architecture("pair", [{"name": "a"}, {"name": "b"}])
    assert arch["ensemble"] == [{"name": "a"}, {"name": "b"}] and arch["name"] == "pair"
