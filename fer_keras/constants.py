"""Fixed names shared by every fer_keras module: classes, splits, artifact files."""

from __future__ import annotations

# Canonical class order: alphabetical, which is also the MMAFEDB folder order.
# Every model records the order it was trained with in its metadata.
CLASS_NAMES: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "neutral",
    "sad",
    "surprise",
)
SPLITS: tuple[str, ...] = ("train", "valid", "test")
COLOR_MODES: dict[str, int] = {"rgb": 3, "grayscale": 1}
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
DEFAULT_IMAGE_SIZE: tuple[int, int] = (48, 48)

# Dataset variants and the suffix the reference project used in run names.
VARIANTS: tuple[str, ...] = ("augment", "balanced", "balanced-2")

# Training artifacts.
HISTORY_DIR = "history"
HISTORY_SUFFIX = "_history.json"
RUNS_DIR = "runs"
RUN_CONFIG_FILE = "config.json"
BEST_CHECKPOINT_FILE = "best.keras"
LAST_CHECKPOINT_FILE = "last.keras"
FINAL_MODEL_FILE = "final.keras"

# The exported, shipped model.
BEST_MODEL_DIR = "models/best_model"
ARCHITECTURE_FILE = "architecture.json"
WEIGHTS_FILE = "model.weights.h5"
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"

# Run statuses recorded in history files.
STATUS_RUNNING = "running"
STATUS_DONE = "done"
STATUS_FAILED = "failed"
STATUS_INTERRUPTED = "interrupted"
ONNX_FILE = "model.onnx"
TFLITE_FILE = "model.tflite"
SAVEDMODEL_DIR = "saved_model"

# Reports and evaluation outputs.
REPORTS_DIR = "reports"
EVAL_DIR = "reports/eval"

# Tensor names of the exported ONNX / TFLite / SavedModel graphs (fer-export), and
# the suffix of the JSON sidecar recorded beside each export.
EXPORT_INPUT_NAME = "pixels"
EXPORT_OUTPUT_NAME = "probabilities"
EXPORT_SIDECAR_SUFFIX = ".json"

# Data tools (fer-data): default report paths and the quarantine layout.
DATASET_STATS_FILE = "reports/dataset_stats.json"
CLEAN_REPORT_FILE = "reports/clean_report.json"
QUARANTINE_SUFFIX = ".quarantine"
QUARANTINE_MANIFEST_FILE = "manifest.json"
QUARANTINE_JOURNAL_FILE = "journal.jsonl"
# Written by `clean --apply` before its journal: names the dataset a quarantine folder belongs to.
QUARANTINE_MARKER_FILE = "fer_quarantine.json"

# Balanced datasets (fer-balance): recipe folder and the manifest written into each build.
BALANCING_DIR = "balancing"
BALANCE_MANIFEST_FILE = "manifest.json"

# fer-report outputs (written into the report's folder, default reports/).
REPORT_HTML_FILE = "report.html"
REPORT_SUMMARY_FILE = "summary.json"
REPORT_RANKING_FILE = "ranking.csv"

# fer-reactions outputs (written into its --out folder; see fer_keras/reactions/summary.py).
TIMELINE_FILE = "timeline.csv"
REACTIONS_SUMMARY_FILE = "summary.json"
REACTIONS_REPORT_FILE = "report.html"
PEAKS_DIR = "peaks"
ANNOTATED_SUFFIX = ".annotated.mp4"
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv")
