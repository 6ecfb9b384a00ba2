"""fer_keras.data.csv_import: the FER2013 CSV round-trips losslessly; bad rows name their line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fer_keras.data.csv_import import EMOTION_CODES, import_csv
from fer_keras.errors import FerError
from fer_keras.data.stats import dataset_stats

USAGES = ["Training", "Training", "PublicTest", "PrivateTest", "Training", "Training", "PublicTest", "Training"]


def write_csv(path, rows):
    lines = ["emotion,pixels,Usage"] + [f"{code},{pixels},{usage}" for code, pixels, usage in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def good_rows(n=8, seed=0):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(n)]
    rows = [(str(i % 7), " ".join(map(str, img.ravel())), USAGES[i % len(USAGES)]) for i, img in enumerate(images)]
    return images, rows


def test_round_trip_is_lossless(tmp_path):
    images, rows = good_rows()
    result = import_csv(write_csv(tmp_path / "fer.csv", rows), tmp_path / "out")
    assert result.written == 8 and result.skipped == []
    split_of = {"Training": "train", "PublicTest": "valid", "PrivateTest": "test"}
    for i, (code, _, usage) in enumerate(rows):
        path = tmp_path / "out" / split_of[usage] / EMOTION_CODES[code] / f"{usage}_{i}.png"
        with Image.open(path) as img:
            assert img.mode == "L" and img.size == (48, 48)
            np.testing.assert_array_equal(np.asarray(img), images[i])
    # Row 6 is code 6 = neutral (FER2013 order), not CLASS_NAMES[6] = surprise.
    assert (tmp_path / "out/valid/neutral/PublicTest_6.png").is_file()
    assert dataset_stats(tmp_path / "out")["counts"] == result.counts


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("3,1 2 3,Training", r"fer\.csv:3: 'pixels' must be 2304 space-separated integers \(48x48\); got 3 values"),
        ("7,{px},Training", r"fer\.csv:3: 'emotion' must be one of 0=angry, .*6=neutral; got '7'"),
        (
            "3,{px},Validation",
            r"fer\.csv:3: 'Usage' must be one of Training, PublicTest, PrivateTest; got 'Validation'",
        ),
        ("3,{bad},Training", r"fer\.csv:3: 'pixels' must be integers in 0\.\.255; got 256"),
        ("3,{word},Training", r"fer\.csv:3: 'pixels' must be integers in 0\.\.255; got 'x'"),
        ("3", r"fer\.csv:3: expected 3 columns; got 1"),
    ],
)
def test_a_bad_row_is_named_by_line_and_nothing_is_written(tmp_path, line, message):
    _, rows = good_rows(2)
    px = " ".join(["1"] * 2304)
    bad = line.format(px=px, bad=px[:-1] + "256", word=px[:-1] + "x")
    path = tmp_path / "fer.csv"
    path.write_text("emotion,pixels,Usage\n" + f"{','.join(rows[0])}\n{bad}\n{','.join(rows[1])}\n")
    with pytest.raises(FerError, match=message) as err:
        import_csv(path, tmp_path / "out")
    assert err.value.problems[-1] == "nothing written; fix the rows or pass --skip-bad"
    assert not (tmp_path / "out").exists()


def test_skip_bad_writes_the_good_rows_and_lists_the_bad(tmp_path):
    _, rows = good_rows(3)
    rows.insert(1, ("9", rows[0][1], "Training"))
    result = import_csv(write_csv(tmp_path / "fer.csv", rows), tmp_path / "out", skip_bad=True)
    assert result.written == 3
    assert len(result.skipped) == 1 and result.skipped[0].startswith(f"{tmp_path / 'fer.csv'}:3: 'emotion'")


def test_header_and_existing_output_checks(tmp_path):
    path = tmp_path / "fer.csv"
    path.write_text("label,pixels,Usage\n0,1,Training\n")
    with pytest.raises(FerError, match=r"fer\.csv:1: header must have the columns emotion, pixels, Usage"):
        import_csv(path, tmp_path / "out")
    with pytest.raises(FerError, match="CSV file not found"):
        import_csv(tmp_path / "missing.csv", tmp_path / "out")
    _, rows = good_rows(2)
    write_csv(path, rows)
    import_csv(path, tmp_path / "out")
    with pytest.raises(FerError, match="already holds files; pass --force"):
        import_csv(path, tmp_path / "out")
    assert import_csv(path, tmp_path / "out", force=True).written == 2


# --- runaway input (issue 16): one FerError line naming the file (and line), never another exception ---


def _import_error(tmp_path, content) -> list[str]:
    path = tmp_path / "fer.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(FerError) as info:
        import_csv(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    return [line.replace(str(path), "{p}") for line in info.value.problems]


def test_a_binary_file_is_not_a_csv(tmp_path):
    content = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64
    assert _import_error(tmp_path, content) == [
        "{p}: is not UTF-8 text; expected the FER2013 CSV (emotion,pixels,Usage)"
    ]


def test_a_20_mb_line_or_field_stops_at_its_line(tmp_path):
    _, rows = good_rows(1)
    good = ",".join(rows[0])
    huge_line = f"emotion,pixels,Usage\n{good}\n3,{'1 ' * 10_000_000},Training\n"
    assert _import_error(tmp_path, huge_line) == [
        "{p}:3: line length: got more than 131,072 characters; limit 131,072 characters"
    ]
    # A quoted field may span lines: csv's own field limit names the line where it stops.
    lines = "1\n" * 100_000
    quoted = f'emotion,pixels,Usage\n{good}\n3,"{lines}",Training\n'
    assert _import_error(tmp_path, quoted) == ["{p}:65539: not valid CSV: field larger than field limit (131072)"]
    # A NUL byte (Python 3.11's csv accepts it) is just a bad row, named by its line.
    assert _import_error(tmp_path, f"emotion,pixels,Usage\n{good}\n3,1\x002,Training\n")[0] == (
        "{p}:3: 'pixels' must be 2304 space-separated integers (48x48); got 1 values"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("3,{px},Training,extra", "{p}:2: expected 3 columns; got 4"),
        ("3,{px},", "{p}:2: 'Usage' must be one of Training, PublicTest, PrivateTest; got ''"),
        ("3,{long},Training", "{p}:2: 'pixels' must be integers in 0..255; got 99999999999999999999"),
        ("3,{digit},Training", "{p}:2: 'pixels' must be integers in 0..255; got '²'"),
    ],
    ids=["too-many-columns", "empty-usage", "5000-digit-pixel", "unicode-digit"],
)
def test_rows_with_extra_columns_or_odd_values_are_bad_rows(tmp_path, line, message):
    px = " ".join(["1"] * 2304)
    bad = line.format(px=px, long=px[:-1] + "9" * 5000, digit=px[:-1] + "²")
    problems = _import_error(tmp_path, f"emotion,pixels,Usage\n{bad}\n")
    assert problems[0].startswith(message) and problems[-1] == "nothing written; fix the rows or pass --skip-bad"
    assert all("\n" not in p and len(p) < 400 for p in problems)
