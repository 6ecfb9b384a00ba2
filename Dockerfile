# fer-serve: the facial expression web service (page at /, JSON API at /api/predict).
#
#   docker build -t fer-serve .
#   docker run --rm -p 8000:8000 fer-serve
#   docker run --rm -p 8000:8000 fer-serve fer-serve --host 0.0.0.0 --runtime onnx
#
# The model folder models/best_model/ (fer-train + fer-export) must exist when building.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    NO_ALBUMENTATIONS_UPDATE=1

# An unprivileged user with a home (Keras keeps its config in ~/.keras).
RUN groupadd --system --gid 10001 fer \
    && useradd --system --uid 10001 --gid fer --create-home --home-dir /home/fer fer

WORKDIR /app

# Dependencies first, so this (large) layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The package itself (the page's html/js/css ship as package data).
COPY pyproject.toml README.md ./
COPY fer_keras ./fer_keras
RUN pip install --no-deps . && rm -rf /app/fer_keras /app/build

COPY models/best_model ./models/best_model

USER fer
EXPOSE 8000

# /health answers once the model is loaded; the start period covers TensorFlow's start-up.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]

# One uvicorn process, no --reload: the model is loaded once and shared by the worker threads.
CMD ["fer-serve", "--host", "0.0.0.0", "--port", "8000", "--model", "/app/models/best_model"]
