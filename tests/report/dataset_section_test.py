"""Dataset and comparison sections: inputs from other tools are read defensively."""

from __future__ import annotations

import json

import pytest

from fer_keras.report.comparisons import eval_rows, variant_table
from fer_keras.report.dataset_section import (
    clean_counts,
    color_mode_counts,
    dataset_section,
    folder_counts,
    manifest_counts,
    split_class_counts,
)
from fer_keras.report.runs import load_runs, runs_frame
from fer_keras.report.synthetic import dump, write_synthetic_histories


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from fer_keras.data.demo import make_demo_dataset

    root = tmp_path_factory.mktemp("ds") / "data"
    counts = make_demo_dataset(root, {"train": 3, "valid": 2, "test": 1}, seed=2, classes=("angry", "happy", "sad"))
    return root, counts


def test_folder_counts_match_the_generated_dataset(demo):
    root, counts = demo
    assert folder_counts(root) == counts


def test_real_fer_data_stats_output_is_understood(demo):
    stats_mod = pytest.importorskip("fer_keras.data.stats")
    root, counts = demo
    stats = json.loads(json.dumps(stats_mod.dataset_stats(root, workers=1)))
    assert split_class_counts(stats) == counts
    modes = color_mode_counts(stats)
    assert set(modes) == {"train", "valid", "test"}
    assert sum(sum(m.values()) for m in modes.values()) == 3 * (3 + 2 + 1)


def test_real_fer_data_clean_output_is_understood(demo, tmp_path):
    clean_mod = pytest.importorskip("fer_keras.data.clean")
    import shutil

    root = tmp_path / "data"
    shutil.copytree(demo[0], root)
    src = next((root / "train" / "angry").glob("*.png"))
    shutil.copy(src, root / "train" / "angry" / "copy.png")  # an exact duplicate
    report = json.loads(json.dumps(clean_mod.find_problems(root, workers=1)))
    counts = clean_counts(report)
    assert counts["duplicate"]["train"] == 1
    assert sum(counts["duplicate"].values()) == 1


@pytest.mark.parametrize(
    "stats, expected",
    [
        (
            {"counts": {"train": {"a": 1, "b": 2}, "test": {"a": 3, "b": 4}}},
            {"train": {"a": 1, "b": 2}, "test": {"a": 3, "b": 4}},
        ),
        ({"splits": {"train": {"counts": {"a": 1, "b": 2}, "total": 3}}}, {"train": {"a": 1, "b": 2}}),
        ({"train": {"a": 5, "b": 6, "total": 11}}, {"train": {"a": 5, "b": 6}}),
        ({"counts": [{"split": "valid", "class": "a", "count": 7}]}, {"valid": {"a": 7}}),
        ({"something": "else"}, None),
        ([1, 2, 3], None),
        ({"counts": {"train": "many"}}, None),
    ],
)
def test_split_class_counts_layouts(stats, expected):
    assert split_class_counts(stats) == expected


def test_color_and_clean_and_manifest_layouts():
    assert color_mode_counts({"color": {"train": {"grayscale": 3, "rgb": 1}}}) == {"train": {"grayscale": 3, "rgb": 1}}
    assert color_mode_counts({"grayscale": 9, "rgb": 2}) == {"all": {"grayscale": 9, "rgb": 2}}
    assert color_mode_counts({"modes": {"L": 4, "RGB": 1}}) == {"all": {"L": 4, "RGB": 1}}
    assert color_mode_counts({"nothing": 1}) is None
    assert clean_counts({"findings": {"blank": ["a", "b"], "leak": [["x", "y"]]}}) == {
        "blank": {"all": 2},
        "leak": {"all": 1},
    }
    assert clean_counts({"findings": [{"kind": "small", "split": "test"}, {"kind": "small", "split": "test"}]}) == {
        "small": {"test": 2}
    }
    assert clean_counts({"counts": {"corrupt": 3}}) == {"corrupt": {"all": 3}}
    assert clean_counts("garbage") is None
    fer_balance = {"counts_before": {"angry": 3, "happy": 9}, "counts_after": {"angry": 5, "happy": 5}}
    assert manifest_counts(fer_balance) == {"before": {"angry": 3, "happy": 9}, "after": {"angry": 5, "happy": 5}}
    nested = {"counts": {"before": {"train": {"a": 1, "b": 1}}, "after": {"train": {"a": 2, "b": 2}}}}
    assert manifest_counts(nested) == {"before": {"a": 1, "b": 1}, "after": {"a": 2, "b": 2}}
    assert manifest_counts({"counts_before": {"a": 1}}) is None


def test_dataset_section_with_every_input(tmp_path, demo):
    root, counts = demo
    reports = tmp_path / "reports"
    dump(
        reports / "dataset_stats.json",
        {
            "counts": {"train": {"a": 10, "b": 20}},
            "color": {"train": {"grayscale": 25, "rgb": 5}},
            "sizes": {"width": {"min": 48}},
        },
    )
    dump(reports / "clean_report.json", {"counts": {"blank": {"train": 2, "test": 1, "total": 3}}})
    balanced = tmp_path / "balanced"
    dump(
        balanced / "manifest.json",
        {"counts_before": {"a": 10, "b": 20}, "counts_after": {"a": 15, "b": 15}, "generated": {}},
    )
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{", encoding="utf-8")
    section = dataset_section(reports, root, {"balanced": balanced, "balanced-2": broken, "other": tmp_path / "none"})
    assert section["counts"] == {"train": {"a": 10, "b": 20}}  # the stats file wins over folder counting
    assert section["modes"] == {"train": {"grayscale": 25, "rgb": 5}}
    assert section["clean"]["counts"] == {"blank": {"train": 2, "test": 1}}
    by_variant = {b["variant"]: b for b in section["balancing"]}
    assert by_variant["balanced"]["counts"]["after"] == {"a": 15, "b": 15}
    assert by_variant["balanced"]["figure"].startswith("data:image/png;base64,")
    assert "unreadable" in by_variant["balanced-2"]["problem"]
    assert any("other: no manifest.json" in n for n in section["notes"])

    garbled = tmp_path / "garbled_reports"
    garbled.mkdir()
    (garbled / "dataset_stats.json").write_text("not json", encoding="utf-8")
    fallback = dataset_section(garbled, root, {})
    assert fallback["counts"] == counts and "folder counts" in fallback["counts_source"]
    assert any("unreadable" in n for n in fallback["notes"])


def test_eval_rows_layouts(tmp_path):
    folder = tmp_path / "eval"
    dump(
        folder / "fer2013.json",
        {
            "dataset": "fer2013",
            "accuracy": 0.61,
            "macro_f1": 0.55,
            "n": 3589,
            "per_class_recall": {"angry": 0.5, "happy": 0.85},
        },
    )
    dump(
        folder / "multi.json",
        {
            "model": "m",
            "datasets": {"ck+": {"accuracy": 0.7, "per_class_recall": [0.1, 0.2], "class_names": ["angry", "sad"]}},
        },
    )
    dump(folder / "nothing.json", {"hello": "world"})
    (folder / "broken.json").write_text("{", encoding="utf-8")
    rows, classes, problems = eval_rows(folder)
    assert [(r["dataset"], r["accuracy"]) for r in rows] == [("fer2013", 0.61), ("ck+", 0.7)]
    assert rows[1]["model"] == "m" and rows[1]["per_class_recall"] == {"angry": 0.1, "sad": 0.2}
    assert classes == ["angry", "happy", "sad"]
    assert len(problems) == 2
    assert eval_rows(tmp_path / "missing") == ([], [], [])


def test_variant_table_pairs_same_configuration(tmp_path):
    folder = tmp_path / "history"
    write_synthetic_histories(
        folder, n_runs=9, epochs=4, variants=("augment", "balanced", "balanced-2"), failed=0, interrupted=0
    )
    frame = runs_frame(load_runs(folder).runs)
    table = variant_table(frame)
    assert len(table) == 3  # 3 configurations x 3 variants
    for row in table.to_dict(orient="records"):
        same = frame[
            (frame["model"] == row["model"])
            & (frame["batch_size"].astype(str) == row["batch_size"])
            & (frame["optimizer"] == row["optimizer"])
            & (frame["color_mode"] == row["color_mode"])
        ]
        for variant in ("augment", "balanced", "balanced-2"):
            assert row[variant] == same.loc[same["variant"] == variant, "max_val_accuracy"].item()
        assert row["balanced - augment"] == pytest.approx(row["balanced"] - row["augment"])
    assert variant_table(frame[frame["variant"] == "augment"]).empty
