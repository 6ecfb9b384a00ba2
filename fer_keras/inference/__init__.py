"""Stage 4, inference: running a trained model folder on images.

Owns the one way to run a model on images, a model folder with the keras or onnx
runtime or any function (``predictor``), finding and cropping faces in photos
(``faces``), turning paths, PIL images and arrays into images (``inputs``), the Python API
and one inference path (``recognizer``: ``EmotionRecognizer``), prediction over image
files (``predict``), export to
ONNX/TFLite/SavedModel (``export``), metrics on a labelled image set for ``fer-eval``
(``labelled_eval``) and the ``fer`` package's model as a peer to compare against
(``fer_peer``).

May import: the core modules, ``fer_keras.data`` and ``fer_keras.model`` (model folders
and crop rules, ``fer_keras.model.model_folder``). TensorFlow is imported lazily and
only by the keras runtime and the exporters; the onnx runtime never imports it.
"""
