"""fer_keras.model.class_prior: the logit-adjustment bias, applying it, choosing tau on valid, validation."""

from __future__ import annotations

import numpy as np
import pytest

from fer_keras.errors import FerError
from fer_keras.model.class_prior import (
    TAUS,
    apply_class_bias,
    check_class_prior,
    choose_tau,
    class_bias_from_counts,
    class_bias_problems,
    class_prior_from_text,
    class_prior_record,
    describe_record,
)

COUNTS = [600, 60, 340]


def test_the_bias_is_minus_tau_log_prior_centred_and_zero_at_tau_0():
    assert class_bias_from_counts(COUNTS, 0.0) == [0.0, 0.0, 0.0]
    prior = np.asarray(COUNTS) / sum(COUNTS)
    bias = np.asarray(class_bias_from_counts(COUNTS, 0.5))
    np.testing.assert_allclose(bias, -0.5 * (np.log(prior) - np.log(prior).mean()), atol=1e-6)
    assert abs(bias.sum()) < 1e-5 and bias[1] > 0 > bias[0]  # the rare class is raised, the common one lowered


def test_applying_the_bias_divides_by_the_prior_to_the_power_tau():
    probs = np.random.default_rng(0).dirichlet(np.ones(3), size=50)
    prior = np.asarray(COUNTS) / sum(COUNTS)
    out = apply_class_bias(probs, class_bias_from_counts(COUNTS, 0.7))
    expected = probs / prior**0.7
    np.testing.assert_allclose(out, expected / expected.sum(axis=1, keepdims=True), atol=1e-5)
    assert out.dtype == np.float32 and np.allclose(out.sum(axis=1), 1)
    assert apply_class_bias(probs, ()) is probs  # no bias: untouched
    # A class given probability 0 stays finite and last.
    assert np.isfinite(apply_class_bias(np.array([[0.0, 1.0, 0.0]]), [5.0, 0.0, 0.0])).all()


def test_choose_tau_maximises_mean_of_accuracy_and_macro_f1_on_the_given_split():
    # A model that under-predicts the rare class 1: its probability for it is scaled down.
    rng = np.random.default_rng(1)
    labels = rng.choice(3, size=600, p=np.asarray(COUNTS) / sum(COUNTS))
    logits = rng.normal(size=(600, 3)) + 2.0 * np.eye(3)[labels]
    probs = np.exp(logits) * np.asarray(COUNTS)  # the training prior baked in
    probs /= probs.sum(axis=1, keepdims=True)
    record = choose_tau(labels, probs, COUNTS, ["a", "b", "c"])
    assert [c["tau"] for c in record["candidates"]] == list(TAUS)
    best = max(c["accuracy"] + c["macro_f1"] for c in record["candidates"])
    chosen = next(c for c in record["candidates"] if c["tau"] == record["tau"])
    assert chosen["accuracy"] + chosen["macro_f1"] == best and record["tau"] > 0
    assert chosen["macro_f1"] > record["candidates"][0]["macro_f1"]  # the rare class gained
    assert record["class_bias"] == class_bias_from_counts(COUNTS, record["tau"])
    assert record["train_counts"] == {"a": 600, "b": 60, "c": 340}
    assert describe_record(record).startswith(f"class-prior correction tau {record['tau']:g}: valid accuracy ")
    # Ties go to the smaller change: a model that is right whatever the bias keeps tau 0.
    sure = np.eye(3)[labels] * 0.98 + 0.01
    assert choose_tau(labels, sure, COUNTS, ["a", "b", "c"])["tau"] == 0.0


def test_a_given_tau_is_kept_and_scored_beside_tau_0():
    labels, probs = np.array([0, 1, 2]), np.full((3, 3), 1 / 3)
    record = class_prior_record(0.3, labels, probs, COUNTS, ["a", "b", "c"])
    assert record["tau"] == 0.3 and [c["tau"] for c in record["candidates"]] == [0.0, 0.3]
    assert record["objective"] == "given" and record["class_bias"] == class_bias_from_counts(COUNTS, 0.3)


@pytest.mark.parametrize("value", ["sometimes", 1.5, -0.1, True, [0.2]])
def test_bad_settings_are_one_error_saying_what_was_received(value):
    with pytest.raises(FerError, match=r"'class_prior' must be \"auto\" or a tau in \[0, 1\]; got "):
        check_class_prior(value)


def test_the_command_line_value_is_auto_or_a_number():
    assert class_prior_from_text(None) is None and class_prior_from_text("auto") == "auto"
    assert class_prior_from_text("0") == 0.0
    for text in ("high", "2"):
        with pytest.raises(FerError, match=rf"'--class-prior' must be .*; got '{text}'"):
            class_prior_from_text(text)


def test_metadata_bias_must_have_one_number_per_class():
    assert class_bias_problems(None, 3) == [] and class_bias_problems([0, 0.5, -0.5], 3) == []
    for bad in ([0.0, 1.0], "0.1", [0.0, float("nan"), 0.0]):
        (message,) = class_bias_problems(bad, 3)
        assert message.startswith("'inference.class_bias' must be a list of 3 finite numbers (one per class)")
