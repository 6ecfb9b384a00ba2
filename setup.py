"""Build hook: the shipped model travels in the wheel as package data (``fer_keras/_model``).

``models/best_model/`` stays the one source (the repository's fixed layout); no second
copy is committed inside ``fer_keras/``. At build time (``python -m build``: the sdist
carries ``models/best_model`` through MANIFEST.in, and the wheel built from it copies the
files below into ``fer_keras/_model``). Editable installs copy nothing: there
``fer_keras.model.shipped.default_model_dir()`` finds the checkout's ``models/best_model``.

Everything else about the package is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = Path(__file__).resolve().parent / "models" / "best_model"
TARGET = Path("fer_keras") / "_model"
# Keep in step with fer_keras.model.shipped.PACKAGED_FILES (tests/packaging/wheel_test.py compares
# the built wheel with it). model.weights.h5 is left out: model.keras already holds the weights.
PACKAGED_FILES = ("metadata.json", "model.onnx", "model.onnx.json", "model.keras", "architecture.json")


class BuildPyWithModel(build_py):
    """``build_py`` that also copies the shipped model folder into the built package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads models/best_model from the checkout itself
        missing = [name for name in PACKAGED_FILES if not (SOURCE / name).is_file()]
        if missing:
            raise SystemExit(f"error: {SOURCE}: missing {', '.join(missing)} (the shipped model must be in the build)")
        target = Path(self.build_lib) / TARGET
        target.mkdir(parents=True, exist_ok=True)
        for name in PACKAGED_FILES:
            shutil.copyfile(SOURCE / name, target / name)


setup(cmdclass={"build_py": BuildPyWithModel})
