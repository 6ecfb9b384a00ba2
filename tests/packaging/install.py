"""Building the package and installing it as users receive it, in fresh virtual environments.

Shared by ``tests/packaging/wheel_test.py`` and ``benchmarks/bench_install.py``. The wheel is
built from the sdist (``python -m build``), so what the sdist carries is tested too. Venvs are
made outside the repository and run with a clean environment (no ``PYTHONPATH``, no
``VIRTUAL_ENV``), from a folder that is not the checkout, so nothing of the repository leaks in.

Installs use ``uv`` (a dev dependency: it hard-links from its cache, so a repeated install takes
seconds) and fall back to pip, both constrained by ``requirements-lock.txt``: the versions CI and
the Dockerfile install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = REPO_ROOT / "requirements-lock.txt"
# Variables that would let the repository or the developer's venv leak into a fresh one.
LEAKY_VARIABLES = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE"}


def _run(cmd: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {done.returncode}:\n{tail}")
    return done


# What a build reads: the Dockerfile's build stage copies the same paths.
SOURCE_FILES = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "requirements.txt",
    "requirements-dev.txt",
    "requirements-lock.txt",
)
SOURCE_DIRS = ("fer_keras", "models/best_model")


def stage_source(dest: Path) -> Path:
    """Copy what the build reads into ``dest`` (builds write egg-info and a staging folder beside
    the sources: building a private copy keeps the checkout clean and concurrent builds apart)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCE_FILES:
        if (REPO_ROOT / name).is_file():
            shutil.copy2(REPO_ROOT / name, dest / name)
    for name in SOURCE_DIRS:
        shutil.copytree(REPO_ROOT / name, dest / name, ignore=ignore)
    return dest


def build_dist(out_dir: Path, timeout: float = 300) -> tuple[Path, Path]:
    """``python -m build`` of the checkout's sources: the sdist, then the wheel built from it.

    ``--no-isolation`` uses this environment's setuptools (a dev dependency) instead of
    downloading one per build; the build itself is the same.

    Returns:
        ``(wheel, sdist)`` paths in ``out_dir``.
    """
    source = stage_source(Path(tempfile.mkdtemp(prefix="fer_keras-src-", dir=out_dir.parent)))
    cmd = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out_dir), str(source)]
    try:
        _run(cmd, timeout, cwd=source)
    finally:
        shutil.rmtree(source, ignore_errors=True)
    (wheel,) = out_dir.glob("fer_keras-*.whl")
    (sdist,) = out_dir.glob("fer_keras-*.tar.gz")
    return wheel, sdist


def uv_binary() -> str | None:
    """The ``uv`` next to this interpreter, or on PATH, or ``None``."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else shutil.which("uv")


def make_venv(path: Path, timeout: float = 120) -> Path:
    """A fresh virtual environment at ``path`` (on the base interpreter, never this venv); its python."""
    uv = uv_binary()
    base = getattr(sys, "_base_executable", sys.executable)
    if uv:
        _run([uv, "venv", "--quiet", "--python", base, str(path)], timeout, env=clean_env())
    else:
        _run([base, "-m", "venv", str(path)], timeout, env=clean_env())
    return path / "bin" / "python"


def install(python: Path, requirements: list[str], timeout: float = 600) -> None:
    """Install ``requirements`` (e.g. ``["dist/fer_keras-0.1.0-py3-none-any.whl[serve]"]``) into a venv.

    Constrained by requirements-lock.txt, so the versions are the locked ones.
    """
    uv = uv_binary()
    constraints = ["-c", str(LOCK_FILE)] if LOCK_FILE.is_file() else []
    if uv:
        cmd = [uv, "pip", "install", "--quiet", "--python", str(python), *constraints, *requirements]
    else:
        cmd = [str(python), "-m", "pip", "install", "--quiet", *constraints, *requirements]
    _run(cmd, timeout, env=clean_env())


def clean_env(venv: Path | None = None) -> dict[str, str]:
    """This process's environment without what would leak the repository in; ``venv``'s bin first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_VARIABLES}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONNOUSERSITE": "1"})
    if venv is not None:
        env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
        env["VIRTUAL_ENV"] = str(venv)
    return env


def site_packages_bytes(venv: Path) -> int:
    """Bytes of the files installed in the venv's site-packages (a file hard-linked from uv's cache counts in full)."""
    total = 0
    for site in venv.glob("lib/python3*/site-packages"):
        for root, _, files in os.walk(site):
            for name in files:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    total += os.stat(path).st_size
    return total
