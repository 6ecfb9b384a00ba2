"""Stage 5, serving: the ``fer-serve`` FastAPI web service and page.

Owns the application (``app``, see :func:`fer_keras.serve.app.create_app`), what its
routes share (``uploads``: the app's ``EmotionRecognizer``, upload decoding, 4xx errors),
the route modules (``predict_routes``: ``/api/predict``; ``reactions_api``:
``/api/reactions``, a video's reaction summary), each an ``APIRouter`` registered in
``create_app`` with one line, and the JSON shapes of its API (``schemas``). May import:
the core modules, ``fer_keras.data``, ``fer_keras.inference`` and ``fer_keras.reactions``;
with the onnx runtime it never imports TensorFlow.
"""
