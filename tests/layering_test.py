"""The subpackages import only from the pipeline stages before them (see fer_keras/__init__.py)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fer_keras"
CORE = {"constants", "errors", "validation", "atomic", "metrics", "environment", "hashing", "extras", "templating"}
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "model": {"core"},
    "training": {"core", "data", "model"},
    # Inference and report read model folders (fer_keras.model.model_folder).
    "inference": {"core", "data", "model"},
    "report": {"core", "data", "model", "training", "inference"},
    # Reactions to videos and photo sets (fer-reactions): faces, tracking, the model per face.
    "reactions": {"core", "data", "model", "inference"},
    "serve": {"core", "data", "inference", "reactions"},
    "cli": {"core", "data", "model", "training", "inference", "report", "serve", "reactions"},
}
# The package's own __init__.py re-exports the Python API, imported lazily (module __getattr__).
PUBLIC_API = {"__init__.py": {"inference"}}


def _stage(parts: tuple[str, ...]) -> str:
    return parts[0] if len(parts) > 1 else "core"


def _imported_stages(path: Path) -> set[str]:
    stages = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "fer_keras" and len(parts) > 1:
                stages.add("core" if parts[1] in CORE else parts[1])
    return stages


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_only_earlier_stages(path):
    stage = _stage(path.relative_to(PACKAGE).parts)
    assert stage in ALLOWED, f"{path}: unknown stage {stage!r}"
    imported = _imported_stages(path) - {stage} - PUBLIC_API.get(str(path.relative_to(PACKAGE)), set())
    assert imported <= ALLOWED[stage], f"{path} imports {sorted(imported - ALLOWED[stage])}"


def test_every_subpackage_says_what_it_owns():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 60, f"{init} needs a docstring saying what the stage owns"
