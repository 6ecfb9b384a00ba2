"""fer_keras: a Keras/TensorFlow research toolkit for facial expression recognition.

The subpackages follow the pipeline, each importing only from the stages before it
(``tests/layering_test.py`` checks it):

- core modules here: ``constants``, ``errors`` (``FerError``), ``validation``, ``atomic``,
  ``metrics``;
- ``data``: dataset folders, statistics, cleaning, balancing, the ``tf.data`` pipeline;
- ``model``: architecture specs, the Keras models built from them, model folders;
- ``training``: run configs, training runs, grids, best-run selection;
- ``inference``: running a model folder on images, faces, export, evaluation;
- ``report`` and ``serve``: the HTML analysis and the web service;
- ``cli``: one thin module per command.

Importing the package is cheap: TensorFlow is only imported by the functions that
build, train or run models, so `--help`, spec checks and the data tools stay fast.
"""

__version__ = "0.1.0"
