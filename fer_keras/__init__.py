"""fer_keras: a Keras/TensorFlow research toolkit for facial expression recognition.

The subpackages follow the pipeline, each importing only from the stages before it
(``tests/layering_test.py`` checks it):

- core modules here: ``constants``, ``errors`` (``FerError``), ``validation``, ``atomic``,
  ``metrics``;
- ``data``: dataset folders, statistics, cleaning, balancing, the ``tf.data`` pipeline;
- ``model``: architecture specs, the Keras models built from them, model folders;
- ``training``: run configs, training runs, grids, best-run selection;
- ``inference``: running a model folder on images, faces, export, evaluation;
- ``reactions``: emotion timelines of viewers in videos and reactions over photo sets
  (``fer-reactions``: sampling, face tracking, smoothing, ad segments, the reaction report);
- ``report`` and ``serve``: the HTML analysis and the web service;
- ``cli``: one thin module per command.

Importing the package is cheap: TensorFlow is only imported by the functions that
build, train or run models, so `--help`, spec checks and the data tools stay fast.

The Python API is one name, loaded on first use (PEP 562 module ``__getattr__``), so
``import fer_keras`` imports neither OpenCV nor a model runtime::

    from fer_keras import EmotionRecognizer
    EmotionRecognizer().analyze("photo.jpg")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fer_keras.inference.recognizer import EmotionRecognizer

__version__ = "0.1.0"
__all__ = ["EmotionRecognizer", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "EmotionRecognizer":
        from fer_keras.inference.recognizer import EmotionRecognizer

        return EmotionRecognizer
    raise AttributeError(f"module 'fer_keras' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
