"""Per-track smoothing: exponential and median windows over seconds, causal, tracks independent."""

import numpy as np
import pytest

from fer_keras.errors import FerError
from fer_keras.reactions.smoothing import Smoother

A, B = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])


def test_ema_weighs_by_time_gap():
    s = Smoother("ema", 1.0)
    assert np.allclose(s.add(1, 0.0, A), A)
    np.testing.assert_allclose(s.add(1, 1.0, B), [np.exp(-1), 1 - np.exp(-1), 0])
    # A long gap (the viewer looked away) makes the new sample count almost fully.
    assert s.add(1, 20.0, A)[0] > 0.99


def test_tracks_are_smoothed_independently():
    s = Smoother("ema", 2.0)
    s.add(1, 0.0, A)
    assert np.allclose(s.add(2, 0.2, B), B)


def test_median_window_removes_a_single_odd_frame_and_sums_to_one():
    s = Smoother("median", 1.0)
    out = [s.add(7, t, B if t == 0.4 else A) for t in (0.0, 0.2, 0.4, 0.6)]
    assert all(o.argmax() == 0 for o in out)
    assert all(abs(o.sum() - 1) < 1e-9 for o in out)
    # Samples older than the window are forgotten.
    assert np.allclose(s.add(7, 3.0, B), B)


def test_zero_seconds_is_off():
    s = Smoother("median", 0)
    assert np.allclose(s.add(1, 0.0, A), A) and np.allclose(s.add(1, 0.1, B), B)


def test_bad_settings():
    with pytest.raises(FerError, match="'smooth_method' must be one of"):
        Smoother("mean", 1.0)
    with pytest.raises(FerError, match="'smooth' must be in"):
        Smoother("ema", -1)
