"""Install footprint: installed size and `fer-predict` cold start, core (ONNX) install vs the full one.

    python benchmarks/bench_install.py            # builds the wheel, two fresh venvs; writes results/install.md
    python benchmarks/bench_install.py --quick    # CI smoke run: sizes of this environment's packages, one start

Full mode builds the wheel (``python -m build``, as CI's ``tests/packaging/wheel_test.py``),
installs it in two fresh venvs outside the repository, at the locked versions: the core
install (``pip install fer_keras``: onnxruntime, no TensorFlow) and the full one
(``fer_keras[train,serve]``: TensorFlow, Keras, ...). It reports each venv's installed size
(the bytes of every file in site-packages) and the cold-start wall time of
``fer-predict face.jpg`` in an empty folder (a new process each time: interpreter, imports,
model loading, face detection, one prediction): the core venv with ``--runtime onnx``, the
full one with ``--runtime keras``.

Peers: ``fer`` resolves to PyTorch with its CUDA wheels (several GB of ``nvidia-*``) and
``deepface`` to TensorFlow plus weights it downloads from the network on first use, so
neither is installed here; the results file says so.

Quick mode (``tests/benchmarks_test.py``) installs nothing: it sums the installed files of
the core and full requirement sets in *this* environment and times one ONNX cold start.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from _bench import ROOT, command_line, cpu_seconds, header, load_average, load_note, results_path, write_results

from tests.model_fixtures import face_photo
from tests.packaging.install import build_dist, clean_env, install, make_venv, site_packages_bytes

PEERS_NOTE = (
    "Peers not installed here: `fer` (25.10.3) resolves to PyTorch with its CUDA wheels (several GB of "
    "`nvidia-*` packages), and `deepface` to TensorFlow + tf-keras and downloads its model weights from "
    "the network at first use, which this machine cannot reach; so neither size nor start-up is measured."
)


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def _requirement_closure(requirements: list[str]) -> set[str]:
    """Names of the installed distributions ``requirements`` need, transitively (this environment)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        key = canonicalize_name(req.name) + "[" + ",".join(sorted(req.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue
        for line in dist.requires or []:
            sub = Requirement(line)
            # A dependency applies when its marker holds for no extra or for one of the extras asked for.
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in (req.extras or {""})):
                todo.append(sub)
    return {key.split("[")[0] for key in seen}


def _dist_bytes(names: set[str]) -> int:
    """Bytes of the files of the installed distributions ``names`` (their RECORD entries)."""
    total = 0
    for name in names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for file in dist.files or []:
            path = Path(dist.locate_file(file))
            if path.is_file():
                total += path.stat().st_size
    return total


def _project_requirements() -> tuple[list[str], list[str]]:
    """(core, core + [train] + [serve]) requirement lines of pyproject.toml."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return project["dependencies"], project["dependencies"] + extras["train"] + extras["serve"]


def cold_start(fer_predict: Path, workdir: Path, runtime: str, venv: Path | None) -> tuple[float, float, str]:
    """One ``fer-predict face.jpg --runtime <runtime>`` in a new process: wall and CPU seconds, first line.

    CPU seconds (user + system of the process) are the steadier number on a shared machine.
    """
    env = clean_env(venv) if venv else clean_env()
    cpu_before, started = cpu_seconds(), time.perf_counter()
    done = subprocess.run(
        [str(fer_predict), "face.jpg", "--runtime", runtime],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_before
    if done.returncode != 0:
        raise RuntimeError(f"{fer_predict} face.jpg --runtime {runtime} failed:\n{done.stderr[-1500:]}")
    return wall, cpu, done.stdout.splitlines()[0]


def quick() -> int:
    core, full = _project_requirements()
    core_names, full_names = _requirement_closure(core), _requirement_closure(full)
    print(f"core requirement set in this environment: {len(core_names)} packages, {_mib(_dist_bytes(core_names))} MiB")
    print(f"full requirement set in this environment: {len(full_names)} packages, {_mib(_dist_bytes(full_names))} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        face_photo(("happy",)).save(Path(tmp) / "face.jpg")
        fer_predict = Path(sys.executable).parent / "fer-predict"
        if not fer_predict.is_file():
            print("skipped: fer-predict is not installed in this environment", file=sys.stderr)
            return 77
        wall, cpu, line = cold_start(fer_predict, Path(tmp), "onnx", None)
        print(f"fer-predict face.jpg --runtime onnx (this environment): {wall:.2f} s wall, {cpu:.2f} s CPU, {line}")
    return 0


def _measure(tmp: Path, wheel: Path, work: Path, name: str, requirement: str, runtime: str, repeats: int) -> dict:
    """Install ``requirement`` into a fresh venv ``tmp/name``; its size and fer-predict cold starts."""
    venv = tmp / name
    install(make_venv(venv), [requirement])
    python = str(venv / "bin" / "python")
    has_tf = subprocess.run([python, "-c", "import tensorflow"], capture_output=True).returncode == 0
    runs = [cold_start(venv / "bin" / "fer-predict", work, runtime, venv) for _ in range(repeats)]
    return {
        "size": site_packages_bytes(venv),
        "packages": len(list((venv / "lib").glob("python3*/site-packages/*.dist-info"))),
        "tensorflow": has_tf,
        "runtime": runtime,
        "wall": statistics.median(r[0] for r in runs),
        "cpu": statistics.median(r[1] for r in runs),
        "answer": re.sub(r"^Emotion: ", "", runs[-1][2]),
    }


def full(repeats: int, out: str, argv: list[str]) -> int:
    load_before = load_average()
    setups = [
        ("core: `pip install fer_keras`", "core", "", "onnx"),
        ("full: `pip install 'fer_keras[train,serve]'`", "full", "[train,serve]", "keras"),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "dist").mkdir()
        wheel, _ = build_dist(tmp / "dist")
        work = tmp / "work"
        work.mkdir()
        face_photo(("happy",)).save(work / "face.jpg")
        for label, name, extras, runtime in setups:
            row = _measure(tmp, wheel, work, name, f"{wheel}{extras}", runtime, repeats)
            rows.append((label, row))
            print(
                f"{label}: {_mib(row['size'])} MiB, {row['packages']} packages, {row['wall']:.2f} s, {row['cpu']:.2f} s CPU"
            )
    load_after = load_average()
    core = rows[0][1]
    lines = header("Install size and fer-predict cold start", command_line(__file__, argv))
    lines += [
        load_note(load_before, load_after) + ".",
        f"Medians of {repeats} cold start(s): a new `fer-predict face.jpg --runtime R` process in an empty "
        "folder (interpreter, imports, model loading, Haar face detection, one prediction) on a 640x480 photo "
        "with one drawn face. Venvs are fresh, outside the repository, installed from the built wheel with uv "
        "at the versions of requirements-lock.txt; size = every file in site-packages. CPU = user + system "
        "seconds of the fer-predict process: steadier than wall time when other jobs share the machine.",
        "",
        "| install | packages | installed size (MiB) | TensorFlow | runtime | cold start wall (s) | CPU (s) |"
        " size vs core | CPU vs core |",
        "|---|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for label, row in rows:
        lines.append(
            f"| {label} | {row['packages']} | {_mib(row['size'])} | {'yes' if row['tensorflow'] else 'no'} | "
            f"{row['runtime']} | {row['wall']:.2f} | {row['cpu']:.2f} | {row['size'] / core['size']:.1f}x | "
            f"{row['cpu'] / core['cpu']:.1f}x |"
        )
    answers = "; ".join(f"{row['runtime']}: {row['answer']}" for _, row in rows)
    lines += ["", f"Answers on the photo: {answers}.", "", PEERS_NOTE]
    write_results(out, lines)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="no installs (CI smoke run); prints, writes nothing")
    p.add_argument("--repeats", type=int, default=3, help="cold starts per install (default 3)")
    p.add_argument("--out", default=str(results_path("install")), help="Markdown results (full mode)")
    args = p.parse_args(argv)
    return quick() if args.quick else full(args.repeats, args.out, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
