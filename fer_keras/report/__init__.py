"""Stage 5, reporting: the analysis report (`fer-report`), one self-contained HTML file over a grid of runs.

Sections: dataset, ranking, grid plots, the best model on the test split,
comparisons, and per-run details. Entry point: :func:`build_report`. Importing
this package is cheap: pandas, matplotlib, scikit-learn and Keras load on use.
May import: the core modules, ``fer_keras.data``, ``fer_keras.model``,
``fer_keras.training`` and ``fer_keras.inference``.
"""

from fer_keras.report.build import build_report

__all__ = ["build_report"]
