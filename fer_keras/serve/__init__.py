"""fer-serve: the FastAPI web service and page (see :func:`fer_keras.serve.app.create_app`)."""
