"""default_model_dir(): FER_KERAS_MODEL, then the packaged copy, then the checkout's models/best_model.

The packaged and installed cases run the real module in a subprocess over a copy of the
package laid out as an install would be (the checkout itself never holds ``fer_keras/_model``).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer_keras.constants import BEST_MODEL_DIR, METADATA_FILE
from fer_keras.model import shipped
from tests.model_fixtures import REPO_ROOT

PRINT_DEFAULT = "from fer_keras.model.shipped import default_model_dir; print(default_model_dir())"


def _copy_package(root: Path, with_packaged_model: bool) -> Path:
    """A copy of fer_keras under ``root/site`` (optionally with ``_model/metadata.json``)."""
    site = root / "site"
    shutil.copytree(REPO_ROOT / "fer_keras", site / "fer_keras", ignore=shutil.ignore_patterns("__pycache__"))
    if with_packaged_model:
        (site / "fer_keras" / shipped.PACKAGED_MODEL).mkdir()
        (site / "fer_keras" / shipped.PACKAGED_MODEL / METADATA_FILE).write_text("{}")
    return site


def _default_in(site: Path, cwd: Path, env_value: str | None = None) -> Path:
    env = {k: v for k, v in os.environ.items() if k not in {shipped.MODEL_ENV, "PYTHONPATH"}}
    env["PYTHONPATH"] = str(site)
    if env_value is not None:
        env[shipped.MODEL_ENV] = env_value
    done = subprocess.run(
        [sys.executable, "-c", PRINT_DEFAULT], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def test_checkout_has_no_committed_packaged_copy():
    # models/best_model is the one source; the wheel's copy is made at build time (setup.py).
    assert not (REPO_ROOT / "fer_keras" / shipped.PACKAGED_MODEL).exists()
    assert shipped.packaged_model_dir() is None


def test_checkout_default_is_the_repository_model(monkeypatch):
    monkeypatch.delenv(shipped.MODEL_ENV, raising=False)
    assert shipped.default_model_dir() == REPO_ROOT / BEST_MODEL_DIR
    assert (shipped.default_model_dir() / METADATA_FILE).is_file()


def test_environment_variable_wins(monkeypatch, tmp_path):
    monkeypatch.setenv(shipped.MODEL_ENV, str(tmp_path / "mine"))
    # Returned even when it does not exist, so the loader's error names the folder the user set.
    assert shipped.default_model_dir() == tmp_path / "mine"


def test_order_env_then_packaged_then_repository_then_relative(tmp_path):
    installed = _copy_package(tmp_path / "installed", with_packaged_model=True)
    work = tmp_path / "work"
    work.mkdir()
    # An install: the packaged copy, whatever the working folder.
    assert _default_in(installed, work) == installed / "fer_keras" / shipped.PACKAGED_MODEL
    # The environment variable overrides the packaged copy.
    assert _default_in(installed, work, env_value="/somewhere/else") == Path("/somewhere/else")

    # A checkout (package folder beside models/best_model), no packaged copy: the checkout's model.
    checkout = tmp_path / "checkout"
    _copy_package(checkout, with_packaged_model=False)
    shutil.move(checkout / "site" / "fer_keras", checkout / "fer_keras")
    (checkout / BEST_MODEL_DIR).mkdir(parents=True)
    (checkout / BEST_MODEL_DIR / METADATA_FILE).write_text(json.dumps({}))
    assert _default_in(checkout, work) == checkout / BEST_MODEL_DIR

    # Neither: models/best_model relative to the working folder, the path the error message names.
    bare = _copy_package(tmp_path / "bare", with_packaged_model=False)
    assert _default_in(bare, work) == Path(BEST_MODEL_DIR)


def test_setup_py_packages_the_same_files():
    tree = ast.parse((REPO_ROOT / "setup.py").read_text())
    assigned = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id.isupper()
        and isinstance(node.value, ast.Tuple)
    }
    assert assigned["PACKAGED_FILES"] == shipped.PACKAGED_FILES


@pytest.mark.parametrize("name", shipped.PACKAGED_FILES)
def test_every_packaged_file_exists_in_the_source(name):
    assert (REPO_ROOT / BEST_MODEL_DIR / name).is_file(), f"{BEST_MODEL_DIR}/{name} is missing: the wheel needs it"
