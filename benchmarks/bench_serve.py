"""Benchmark fer-serve and fer-predict: latency, concurrent throughput, folder throughput.

For the keras and onnx runtimes (keras is the baseline, ratios are onnx vs keras):

* ``/api/predict`` latency (p50/p99) for one 640x480 JPEG photo with one face, face
  detection on, sequential requests over loopback to ``fer-serve`` started as a
  subprocess on a free 127.0.0.1 port;
* requests/s with 8 concurrent clients (a bounded number of requests);
* images/s of fer-predict's batch path (``predict_files``) on a folder of such photos,
  model already loaded, plus the CLI's end-to-end wall time including start-up.

Every measurement is repeated and the median reported. The model is ``--model`` if
given, else ``models/best_model`` when it exists, else a representative 48x48
grayscale CNN (three conv blocks, ~0.3M parameters) built here with random weights
(speed does not depend on the weights).

Usage:
    python benchmarks/bench_serve.py --quick          # CI smoke run (~30 s idle, mostly start-up), prints a table
    python benchmarks/bench_serve.py                   # full run, writes benchmarks/results/serve.md
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# _bench first: it puts the repository (and so ``tests``) on sys.path.
from _bench import ROOT, command_line, header, load_average, load_note, results_path, write_results

from fer_keras.constants import BEST_MODEL_DIR, METADATA_FILE, ONNX_FILE
from tests.model_fixtures import face_photo, jpeg_bytes, subprocess_env

RUNTIMES = ("keras", "onnx")


def build_representative_model(out: Path) -> Path:
    """A model of the size fer-train produces for FER2013 (48x48 grayscale, 7 classes)."""
    import json

    import keras
    import numpy as np

    from fer_keras.constants import ARCHITECTURE_FILE, CLASS_NAMES, MODEL_FILE, WEIGHTS_FILE

    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    layers = [keras.Input((48, 48, 1), name="pixels"), keras.layers.Rescaling(1 / 255)]
    for filters in (32, 64, 128):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
        ]
    layers += [
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(len(CLASS_NAMES), activation="softmax"),
    ]
    model = keras.Sequential(layers, name="bench_cnn")
    model.predict(np.zeros((1, 48, 48, 1), np.float32), verbose=0)
    model.save(out / MODEL_FILE)
    model.save_weights(out / WEIGHTS_FILE)
    (out / ARCHITECTURE_FILE).write_text(json.dumps({"name": "bench_cnn", "layers": []}))
    meta = {"name": "bench_cnn", "class_names": list(CLASS_NAMES), "input_size": [48, 48], "color_mode": "grayscale"}
    (out / METADATA_FILE).write_text(json.dumps(meta))
    model.export(str(out / ONNX_FILE), format="onnx", verbose=False)
    return out


def prepare_model(arg: str | None, work: Path) -> tuple[Path, str]:
    if arg:
        model = Path(arg)
        label = str(model)
    elif (ROOT / BEST_MODEL_DIR / METADATA_FILE).is_file():
        model = ROOT / BEST_MODEL_DIR
        label = BEST_MODEL_DIR
    else:
        return build_representative_model(work / "model"), "representative CNN built by the benchmark (~0.29M params)"
    if not (model / ONNX_FILE).is_file():
        # Benchmark a copy with an ONNX export; never write into the model folder.
        import keras

        from fer_keras.constants import MODEL_FILE

        copy = shutil.copytree(model, work / "model")
        keras.saving.load_model(copy / MODEL_FILE).export(str(copy / ONNX_FILE), format="onnx", verbose=False)
        return copy, f"{label} (ONNX exported by the benchmark)"
    return model, label


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """fer-serve in a subprocess on 127.0.0.1."""

    def __init__(self, model: Path, runtime: str):
        self.model, self.runtime = model, runtime
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        import httpx

        cmd = [sys.executable, "-m", "fer_keras.cli.serve", "--model", str(self.model), "--runtime", self.runtime]
        cmd += ["--port", str(self.port), "-q"]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{self.url}/health", timeout=2).raise_for_status()
                return self
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"fer-serve did not start: {self.proc.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def post(client, url: str, photo: bytes) -> float:
    start = time.perf_counter()
    response = client.post(f"{url}/api/predict", files={"file": ("photo.jpg", photo, "image/jpeg")})
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    assert len(response.json()["faces"]) == 1
    return elapsed


def latency(url: str, photo: bytes, n: int) -> tuple[float, float]:
    import httpx

    with httpx.Client(timeout=60) as client:
        for _ in range(3):
            post(client, url, photo)  # warm-up: connection, thread pool, caches
        times = sorted(post(client, url, photo) for _ in range(n))
    p99 = times[min(n - 1, round(0.99 * (n - 1)))]
    return statistics.median(times) * 1000, p99 * 1000


def throughput(url: str, photo: bytes, total: int, clients: int) -> float:
    import httpx

    counter = iter(range(total))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker():
        with httpx.Client(timeout=120) as client:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                try:
                    post(client, url, photo)
                except BaseException as err:  # noqa: BLE001 - reported after the run
                    errors.append(err)
                    return

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return total / elapsed


def folder_speed(model: Path, runtime: str, folder: Path) -> float:
    from fer_keras.inference.predict import collect_files, predict_files
    from fer_keras.inference.predictor import Predictor

    predictor = Predictor.load(model, runtime=runtime)
    files, _ = collect_files([folder])
    predict_files(predictor, files[:8])  # warm-up
    start = time.perf_counter()
    results, failures = predict_files(predictor, files)
    elapsed = time.perf_counter() - start
    assert len(results) == len(files) and not failures
    return len(files) / elapsed


def cli_wall(model: Path, runtime: str, folder: Path, out: Path) -> float:
    cmd = [sys.executable, "-m", "fer_keras.cli.predict", str(folder), "--model", str(model), "--runtime", runtime]
    start = time.perf_counter()
    subprocess.run(cmd + ["--out", str(out), "-q"], cwd=ROOT, env=subprocess_env(), check=True, capture_output=True)
    return time.perf_counter() - start


def model_latency(model: Path, runtime: str, tta: list[str], n: int) -> tuple[float, float]:
    """p50 and p99 milliseconds of the model's own call on ONE face crop (no decoding, no detection)."""
    import numpy as np

    from fer_keras.inference.predictor import Predictor

    predictor = Predictor.load(model, runtime=runtime, tta=tta)
    face = np.random.default_rng(0).integers(0, 256, (1, *predictor.info.input_shape), dtype=np.uint8)
    for _ in range(5):
        predictor.predict(face)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        predictor.predict(face)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a few requests only (CI smoke run); prints, writes nothing")
    p.add_argument(
        "--model", help="model folder (default: models/best_model if present, else a built representative CNN)"
    )
    p.add_argument("--repeats", type=int, help="repetitions per measurement (default 3, quick 1)")
    p.add_argument("--out", default=str(results_path("serve")), help="Markdown results (full mode)")
    args = p.parse_args(argv)
    quick = args.quick
    load_start = load_average()
    repeats = args.repeats or (1 if quick else 3)
    n_latency, n_total, clients, n_images = (10, 16, 8, 16) if quick else (200, 400, 8, 200)

    with tempfile.TemporaryDirectory(prefix="bench_serve_") as tmp:
        work = Path(tmp)
        model, model_label = prepare_model(args.model, work)
        photo = jpeg_bytes(face_photo(("happy",), size=(640, 480), face_size=150))
        folder = work / "photos"
        folder.mkdir()
        emotions = ("angry", "fear", "happy", "neutral", "sad", "surprise")
        for i in range(n_images):
            face_photo((emotions[i % len(emotions)],), seed=i).save(folder / f"{i:04d}.jpg", quality=90)

        rows: dict[str, dict[str, float]] = {}
        for runtime in RUNTIMES:
            runs = {"p50": [], "p99": [], "rps": [], "ips": [], "wall": []}
            with Server(model, runtime) as server:
                for _ in range(repeats):
                    p50, p99 = latency(server.url, photo, n_latency)
                    runs["p50"].append(p50)
                    runs["p99"].append(p99)
                    runs["rps"].append(throughput(server.url, photo, n_total, clients))
            for _ in range(repeats):
                runs["ips"].append(folder_speed(model, runtime, folder))
                if not quick:  # start-up dominates and costs ~10 s per run: full mode only
                    runs["wall"].append(cli_wall(model, runtime, folder, work / "out.csv"))
            rows[runtime] = {k: statistics.median(v) if v else float("nan") for k, v in runs.items()}
            print(f"{runtime}: " + ", ".join(f"{k}={v:.1f}" for k, v in rows[runtime].items()), flush=True)
        model_rows = {}
        for runtime in RUNTIMES:
            for tta in ([], ["flip"], ["flip", "shift"]):
                p50s, p99s = zip(*(model_latency(model, runtime, tta, n_latency) for _ in range(repeats)))
                model_rows[(runtime, ", ".join(tta) or "none")] = (statistics.median(p50s), statistics.median(p99s))

    load = (load_start, load_average())
    lines = render(
        rows, model_label, repeats, n_latency, n_total, clients, n_images, load, command_line(__file__, argv)
    )
    base = model_rows[("keras", "none")][0]
    lines += [
        "",
        "The model's own time for one face (a 1-image batch of its input size; no decoding, no detection), "
        f"p50/p99 of {n_latency} calls, median of {repeats} run(s); the ratio is speed against keras without TTA:",
        "",
        "| runtime | test-time augmentation | p50 (ms) | p99 (ms) | speed vs keras, no TTA |",
        "|---|---|---:|---:|---:|",
        *(
            f"| {runtime} | {tta} | {p50:.2f} | {p99:.2f} | {base / p50:.2f}x |"
            for (runtime, tta), (p50, p99) in model_rows.items()
        ),
    ]
    print("\n".join(lines))
    if not quick:
        write_results(args.out, lines)
    return 0


def render(rows, model_label, repeats, n_latency, n_total, clients, n_images, load, command) -> list[str]:
    """The results table and its notes, ratios against the keras runtime."""
    base = rows["keras"]
    lines = [
        *header("fer-serve / fer-predict benchmark", command),
        f"{load_note(*load)}.",
        f"Medians of {repeats} run(s). Model: {model_label}.",
        "Input: one 640x480 JPEG photo with one face; face detection on (the default detector, `ssd`: OpenCV's ResNet-10 SSD).",
        "",
        "| runtime | /api/predict p50 (ms) | p99 (ms) | req/s, 8 clients | fer-predict images/s | "
        f"fer-predict CLI wall, {n_images} images (s) |",
        "|---|---|---|---|---|---|",
    ]
    for runtime, r in rows.items():
        lines.append(
            f"| {runtime} | {r['p50']:.1f} ({base['p50'] / r['p50']:.2f}x) | {r['p99']:.1f} ({base['p99'] / r['p99']:.2f}x) "
            f"| {r['rps']:.1f} ({r['rps'] / base['rps']:.2f}x) | {r['ips']:.1f} ({r['ips'] / base['ips']:.2f}x) "
            + (
                f"| {r['wall']:.1f} ({base['wall'] / r['wall']:.2f}x) |"
                if r["wall"] == r["wall"]
                else "| n/a (full mode) |"
            )
        )
    lines += [
        "",
        f"Ratios in parentheses are speed relative to the keras runtime measured in the same run (>1 = faster). "
        f"Latency: {n_latency} sequential requests after 3 warm-up requests. Throughput: {n_total} requests from "
        f"{clients} concurrent clients (threads with their own connection). fer-predict images/s: "
        f"`predict_files` on {n_images} photos with the model already loaded; CLI wall time includes Python and "
        "runtime start-up and model loading.",
    ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
