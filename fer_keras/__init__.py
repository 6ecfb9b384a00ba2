"""fer_keras: a Keras/TensorFlow research toolkit for facial expression recognition.

Importing the package is cheap: TensorFlow is only imported by the modules that
build, train or run models, so `--help`, spec checks and the data tools stay fast.
"""

__version__ = "0.1.0"
