"""Stage 5, serving: the ``fer-serve`` FastAPI web service and page.

Owns the application (``app``, see :func:`fer_keras.serve.app.create_app`) and the JSON
shapes of its API (``schemas``). May import: the core modules, ``fer_keras.data`` and
``fer_keras.inference``; with the onnx runtime it never imports TensorFlow.
"""
