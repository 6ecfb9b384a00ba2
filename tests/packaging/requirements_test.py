"""pyproject.toml's extras, requirements*.txt and requirements-lock.txt say the same thing.

- the core install stays TensorFlow-free;
- requirements.txt (the full training environment) = core + [train] + [serve];
- requirements-dev.txt = requirements.txt + the rest of [dev] and the other extras;
- the lock pins every package of requirements-dev.txt at a version its range allows;
- every console script points at a module of the package, and the missing-extra message
  names the extra the commands need.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fer_keras.errors import FerError
from fer_keras.extras import EXTRAS, MISSING_EXTRA, require
from tests.packaging.install import LOCK_FILE, REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
EXTRA_DEPS = PROJECT["optional-dependencies"]
TENSORFLOW_FREE_FORBIDDEN = {"tensorflow", "tensorflow-cpu", "keras", "tf2onnx", "albumentations"}


def _read_requirements(path: Path) -> list[str]:
    """Requirement lines of a requirements file, following ``-r`` includes."""
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            lines += _read_requirements(path.parent / line[3:].strip())
        else:
            lines.append(line)
    return lines


def _normalised(requirements: list[str]) -> set[str]:
    return {str(Requirement(r)) for r in requirements}


def _self_extras(requirements: list[str]) -> tuple[list[str], set[str]]:
    """``fer_keras[a,b]`` lines resolved: (the other requirements, the extras named)."""
    others, extras = [], set()
    for line in requirements:
        req = Requirement(line)
        if canonicalize_name(req.name) == canonicalize_name(PROJECT["name"]):
            extras |= req.extras
        else:
            others.append(line)
    return others, extras


def _lock() -> dict[str, str]:
    pins = {}
    for line in LOCK_FILE.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(3)
    return pins


def test_core_install_is_tensorflow_free():
    names = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    assert not names & TENSORFLOW_FREE_FORBIDDEN
    assert {"numpy", "pillow", "opencv-python-headless", "onnxruntime"} <= names


def test_requirements_txt_is_core_train_and_serve():
    expected = _normalised(PROJECT["dependencies"] + EXTRA_DEPS["train"] + EXTRA_DEPS["serve"])
    assert _normalised(_read_requirements(REPO_ROOT / "requirements.txt")) == expected


def test_requirements_dev_txt_is_the_dev_extra():
    tools, named = _self_extras(EXTRA_DEPS["dev"])
    assert named == set(EXTRAS) - {"dev"}, "[dev] must include every other extra"
    expected = _normalised(PROJECT["dependencies"] + tools + [r for extra in named for r in EXTRA_DEPS[extra]])
    assert _normalised(_read_requirements(REPO_ROOT / "requirements-dev.txt")) == expected


def test_extras_module_knows_every_extra():
    assert set(EXTRA_DEPS) == set(EXTRAS)


def test_lock_pins_every_requirement_within_its_range():
    pins = _lock()
    assert pins, f"{LOCK_FILE.name} has no pins"
    for line in _read_requirements(REPO_ROOT / "requirements-dev.txt"):
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in {LOCK_FILE.name}: run bash scripts/lock.sh"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{LOCK_FILE.name} pins {req.name}=={pins[name]}, outside {req}: run bash scripts/lock.sh"
        )


def test_console_scripts_point_at_package_modules():
    for command, target in PROJECT["scripts"].items():
        module, _, function = target.partition(":")
        path = REPO_ROOT.joinpath(*module.split(".")).with_suffix(".py")
        assert command.startswith("fer-") and function == "main", target
        assert path.is_file(), f"{command} = {target}: {path.relative_to(REPO_ROOT)} does not exist"
        assert re.search(rf"^def {function}\(", path.read_text(), re.M), f"{command}: no {function}() in {path}"


def test_require_returns_the_module():
    assert require("json", "train").__name__ == "json"
    assert require("os.path", "train").__name__ in {"posixpath", "ntpath"}


def test_require_names_the_extra_in_one_line():
    with pytest.raises(FerError) as err:
        require("fer_keras_no_such_module.sub", "train", who="fer-train")
    assert str(err.value) == (
        "fer-train needs the [train] extra (No module named 'fer_keras_no_such_module'): pip install 'fer_keras[train]'"
    )
    assert "\n" not in str(err.value)
    assert "{extra}" in MISSING_EXTRA and "pip install" in MISSING_EXTRA


def test_require_keeps_a_broken_install_visible(tmp_path, monkeypatch):
    # The module exists but one of *its* imports is missing: not a missing extra, so not hidden.
    (tmp_path / "half_installed_mod.py").write_text("import fer_keras_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="fer_keras_no_such_dependency"):
        require("half_installed_mod", "video")


def test_require_rejects_an_unknown_extra():
    with pytest.raises(ValueError, match="unknown extra"):
        require("json", "gpu")
