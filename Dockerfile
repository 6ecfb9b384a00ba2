# fer-serve: the facial expression web service (page at /, JSON API at /api/predict), TensorFlow-free.
#
#   docker build -t fer-serve .
#   docker run --rm -p 8000:8000 fer-serve
#
# Installed the way users install it: stage 1 builds the wheel (python -m build: the sdist, then the
# wheel from it, with the shipped model models/best_model inside as fer_keras/_model); stage 2 installs
# that wheel with the [serve] extra at the versions of requirements-lock.txt. The image runs the ONNX
# model (onnxruntime), so it holds no TensorFlow. The model folder models/best_model/ must exist.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements-lock.txt ./
RUN pip install -c requirements-lock.txt build setuptools
COPY pyproject.toml setup.py MANIFEST.in README.md requirements.txt requirements-dev.txt ./
COPY fer_keras ./fer_keras
COPY models/best_model ./models/best_model
RUN python -m build --no-isolation --outdir /dist .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user with a home.
RUN groupadd --system --gid 10001 fer \
    && useradd --system --uid 10001 --gid fer --create-home --home-dir /home/fer fer

# The wheel with the [serve] extra, pinned by the lock (constraints: only what the wheel needs is installed).
COPY requirements-lock.txt /tmp/requirements-lock.txt
COPY --from=build /dist/ /tmp/dist/
RUN set -- /tmp/dist/fer_keras-*.whl \
    && pip install -c /tmp/requirements-lock.txt "$1[serve]" \
    && rm -rf /tmp/dist /tmp/requirements-lock.txt \
    && python -c "import fer_keras.model.shipped as s; assert s.packaged_model_dir(), 'no packaged model'"

USER fer
WORKDIR /home/fer
EXPOSE 8000

# /health answers once the model is loaded (onnxruntime starts in about a second).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]

# One uvicorn process: the model is loaded once and shared by the worker threads. The default model is
# the packaged one (FER_KERAS_MODEL or --model DIR, e.g. a mounted volume, override it).
CMD ["fer-serve", "--host", "0.0.0.0", "--port", "8000", "--runtime", "onnx"]
