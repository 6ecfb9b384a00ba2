"""Collect benchmarks/results/*.md into benchmarks/RESULTS.md (run after any full benchmark).

.venv/bin/python benchmarks/collect.py
"""

from __future__ import annotations

import platform

from _bench import RESULTS_DIR

RESULTS = RESULTS_DIR.parent / "RESULTS.md"
ORDER = ["accuracy", "train", "pipeline", "clean", "balance", "report", "serve"]


def main() -> None:
    files = {p.stem: p for p in RESULTS_DIR.glob("*.md")}
    names = [n for n in ORDER if n in files] + sorted(set(files) - set(ORDER))
    lines = [
        "# Benchmark results",
        "",
        "All numbers were measured on the project's development machine: a 2-core AMD EPYC VM (Zen 4,",
        "AVX-512 with VNNI and BF16, no AMX), 24 GiB RAM, no GPU, Python "
        f"{platform.python_version()}, TensorFlow 2.21 (CPU), Keras 3.15. Each section below is copied from",
        "`benchmarks/results/<name>.md`, which the benchmark's full run writes; each names its exact command",
        "and whether other jobs shared the machine. Every script has a `--quick` mode that CI runs",
        "(`tests/benchmarks_test.py`). Regenerate this file with `.venv/bin/python benchmarks/collect.py`.",
        "",
        "Contents: " + ", ".join(f"[{n}](#{n})" for n in names),
        "",
    ]
    for name in names:
        body = files[name].read_text(encoding="utf-8").strip().splitlines()
        title = body[0].lstrip("# ").strip() if body and body[0].startswith("#") else name
        lines += [f'<a id="{name}"></a>', "", f"## {title}", "", *body[1:], ""]
    RESULTS.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    print(f"wrote {RESULTS} ({len(names)} sections)")


if __name__ == "__main__":
    main()
