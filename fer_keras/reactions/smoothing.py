"""Smoothing a track's emotion probabilities over time, so one odd frame is not a reaction.

Two methods over ``--smooth`` seconds, both causal (a sample is smoothed from itself and
the samples before it, so a video is processed as it is read and the smoothed value at
a moment never depends on what comes after it):

- ``ema``: an exponential moving average with time constant ``seconds``; a gap between
  two samples of a track (the viewer looked away) weighs the new sample more, as
  ``1 - exp(-gap / seconds)``.
- ``median``: the per-class median of the samples of the last ``seconds`` seconds,
  renormalised to sum to 1.

``seconds == 0`` leaves the probabilities as the model gave them. Each track has its own state.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from fer_keras.validation import check_choice, check_float

SMOOTH_METHODS: tuple[str, ...] = ("ema", "median")
DEFAULT_SMOOTH_S = 1.0
DEFAULT_SMOOTH_METHOD = "ema"
MAX_SMOOTH_S = 60.0


class Smoother:
    """Per-track smoothing of probability vectors.

    Example:
        >>> s = Smoother("ema", 1.0)
        >>> s.add(1, 0.0, np.array([1.0, 0.0]))
        array([1., 0.])
        >>> s.add(1, 1.0, np.array([0.0, 1.0])).round(3)
        array([0.368, 0.632])
    """

    def __init__(self, method: str = DEFAULT_SMOOTH_METHOD, seconds: float = DEFAULT_SMOOTH_S):
        self.method = check_choice("smooth_method", method, SMOOTH_METHODS)
        self.seconds = check_float("smooth", seconds, low=0.0, high=MAX_SMOOTH_S)
        self._ema: dict[int, tuple[float, np.ndarray]] = {}
        self._windows: dict[int, deque[tuple[float, np.ndarray]]] = {}

    def add(self, track: int, time_s: float, probs: np.ndarray) -> np.ndarray:
        """The smoothed probabilities of ``track`` at ``time_s`` (samples of a track come in time order)."""
        probs = np.asarray(probs, dtype=np.float64)
        if self.seconds == 0:
            return probs
        if self.method == "ema":
            last = self._ema.get(track)
            if last is None:
                value = probs
            else:
                weight = 1.0 - math.exp(-max(0.0, time_s - last[0]) / self.seconds)
                value = last[1] + weight * (probs - last[1])
            self._ema[track] = (time_s, value)
            return value
        window = self._windows.setdefault(track, deque())
        window.append((time_s, probs))
        while window and window[0][0] < time_s - self.seconds - 1e-9:
            window.popleft()
        value = np.median(np.stack([p for _, p in window]), axis=0)
        total = value.sum()
        return value / total if total > 0 else probs
