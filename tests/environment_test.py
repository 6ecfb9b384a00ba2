"""fer_keras.environment: the quiet defaults are set, and a value the user chose is kept."""

from __future__ import annotations

import os

from fer_keras.environment import QUIET_ENVIRONMENT, quiet_environment


def test_quiet_environment_sets_missing_values_and_keeps_the_users(monkeypatch):
    monkeypatch.delenv("NO_ALBUMENTATIONS_UPDATE", raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # debugging TensorFlow
    quiet_environment()
    assert os.environ["NO_ALBUMENTATIONS_UPDATE"] == QUIET_ENVIRONMENT["NO_ALBUMENTATIONS_UPDATE"] == "1"
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    quiet_environment()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
