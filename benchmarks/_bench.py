"""What every benchmark script shares: paths, environment, the machine, CPU time, the results file.

Importing this module puts the repository on ``sys.path`` and sets the quiet
TensorFlow/albumentations environment (:func:`fer_keras.environment.quiet_environment`),
so a script imports it before anything that may load TensorFlow. The leading
underscore keeps ``tests/benchmarks_test.py``, which runs every ``bench_*.py --quick``,
from taking it for a benchmark.

A full run writes ``benchmarks/results/<name>.md`` (:func:`write_results`) starting with
the same lines in every benchmark (:func:`header`)::

    # <title>

    Measured <date> on <machine>, with `<command>`.
    Versions: python 3.11.7, fer_keras 0.1.0, tensorflow 2.21.0, keras 3.15.1, numpy ...

A benchmark that cannot run here (no FER2013) returns :func:`skip`'s exit code.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the scripts run as files, not as an installed package

from fer_keras.environment import quiet_environment  # noqa: E402

quiet_environment()

FER2013 = ROOT.parent / "shared" / "datasets" / "fer2013"
RESULTS_DIR = ROOT / "benchmarks" / "results"
EXIT_SKIP = 77  # the automake convention: tests/benchmarks_test.py skips a benchmark that exits with it

_VECTOR_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def results_path(name: str) -> Path:
    """``benchmarks/results/<name>.md``, the file a benchmark's full run writes."""
    return RESULTS_DIR / f"{name}.md"


def skip(reason: str) -> int:
    """Print ``skipped: <reason>`` on stderr and return :data:`EXIT_SKIP` (for ``main`` to return).

    Example:
        >>> code = skip(f"{FER2013} not found (use --quick for generated data)")  # doctest: +SKIP
    """
    print(f"skipped: {reason}", file=sys.stderr)
    return EXIT_SKIP


def machine_description() -> str:
    """The CPU as /proc/cpuinfo reports it: model, family/model, cores, vector extensions, GPU.

    Family and model are given because VMs often report a generic model name; AMX is
    named because bfloat16 speed depends on it.
    """
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        return f"{platform.processor() or 'unknown CPU'}, {os.cpu_count()} cores"
    flags = set(info.get("flags", "").split())
    vector = [f for f in _VECTOR_FLAGS if f in flags]
    amx = "" if "amx_tile" in flags else ", no AMX"
    virt = ", VM" if "hypervisor" in flags else ""
    # Checked without importing TensorFlow; the project's TensorFlow is the CPU build anyway.
    gpu = "NVIDIA GPU" if Path("/proc/driver/nvidia/gpus").is_dir() else "no GPU"
    return (
        f"{info.get('model name', 'unknown CPU')} (family {info.get('cpu family', '?')} model "
        f"{info.get('model', '?')}), {os.cpu_count()} cores{virt}; {' '.join(vector)}{amx}; {gpu}"
    )


def software_versions() -> str:
    """``python 3.11.7, fer_keras 0.1.0, tensorflow ..., keras ..., numpy ...``, without importing TensorFlow."""
    from fer_keras.training.history import library_versions

    return ", ".join(f"{name} {version}" for name, version in library_versions().items())


def background_jobs(exclude: str) -> str:
    """Other busy Python processes on the machine (a training job skews every number).

    A stopped process (``kill -STOP``, state ``T``: paused for a clean measurement) is not busy.

    Args:
        exclude: a substring of the benchmark's own command line, so it does not list itself.
    """
    try:
        out = subprocess.run(["ps", "-eo", "stat,pcpu,args", "--sort=-pcpu"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    busy = []
    for line in out.splitlines()[1:]:
        state, cpu, cmd = (line.split(None, 2) + ["", ""])[:3]
        if not state.startswith("T") and float(cpu or 0) >= 20 and "python" in cmd and exclude not in cmd:
            busy.append(f"`{cmd.strip()[:80]}` ({cpu}% CPU)")
    return "; ".join(busy[:4]) or "none"


def load_average() -> float:
    """The 1-minute load average (on a shared machine it says how much other jobs competed)."""
    return os.getloadavg()[0]


def load_note(before: float, after: float) -> str:
    """One sentence on the load during a measurement, from :func:`load_average` before and after."""
    cores = os.cpu_count()
    return (
        f"1-minute load average {before:.1f} at the start and {after:.1f} at the end "
        f"({cores} cores: above {cores} means other jobs competed for the CPU)"
    )


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children (pool workers, subprocesses)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Clock:
    """Wall time and CPU time (:func:`cpu_seconds`) of a block, as ``clock.wall`` and ``clock.cpu``.

    The machine is shared, so wall-clock speed moves with other jobs' load; CPU
    seconds are the steadier number to compare methods by.

    Example:
        >>> with Clock() as clock:
        ...     work()  # doctest: +SKIP
        >>> clock.wall, clock.cpu  # doctest: +SKIP
    """

    wall: float
    cpu: float

    def __enter__(self) -> Clock:
        self._wall0, self._cpu0 = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self._wall0, cpu_seconds() - self._cpu0


def command_line(script: str | os.PathLike, argv: Sequence[str] | None = None) -> str:
    """``python benchmarks/<script> <arguments>``: the command a results file names.

    Args:
        script: the benchmark's ``__file__``.
        argv: the arguments ``main`` was given; ``None`` means ``sys.argv[1:]``.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join(["python", f"benchmarks/{Path(script).name}", *args])


def header(title: str, command: str) -> list[str]:
    """The opening lines of every results file: title, date, machine, command and versions."""
    return [
        f"# {title}",
        "",
        f"Measured {dt.date.today().isoformat()} on {machine_description()}, with `{command}`.",
        f"Versions: {software_versions()}.",
    ]


def write_results(path: str | os.PathLike, lines: str | Sequence[str]) -> Path:
    """Write a results file (Markdown, ending in one newline) atomically, creating its folder; say where.

    Args:
        path: usually :func:`results_path` or the script's ``--out``.
        lines: the text, or its lines.

    Returns:
        The path written.
    """
    from fer_keras.atomic import write_text_atomic

    text = lines if isinstance(lines, str) else "\n".join(lines)
    path = Path(path)
    write_text_atomic(path, text.rstrip("\n") + "\n")
    print(f"wrote {path}")
    return path
