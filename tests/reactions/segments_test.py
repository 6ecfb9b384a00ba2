"""Segment files (--align): parsing, and one error line naming the file and row per problem."""

import pytest

from fer_keras.errors import FerError
from fer_keras.reactions.segments import Segment, parse_segments, read_segments, segment_warnings


def test_reads_segments_sorted_by_start(tmp_path):
    path = tmp_path / "times.csv"
    path.write_text("name,start_s,end_s,note\nproduct,5,12.5,x\nintro,0,5,y\n\n")
    assert read_segments(path) == [Segment("intro", 0.0, 5.0), Segment("product", 5.0, 12.5)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name,start_s,end_s\na,0,5\nb,4,8\n", "times.csv, row 3: segment 'b' (4-8 s) overlaps segment 'a' of row 2"),
        ("name,start_s,end_s\na,-1,5\n", "times.csv, row 2: start_s must be >= 0; got -1"),
        ("name,start_s,end_s\na,5,5\n", "times.csv, row 2: end_s (5) must be after start_s (5)"),
        ("name,start_s,end_s\na,zero,5\n", "times.csv, row 2: times must be finite numbers of seconds; got 'zero'"),
        ("name,start_s,end_s\na,0,inf\n", "times.csv, row 2: times must be finite numbers of seconds; got 'inf'"),
        ("name,start_s,end_s\n,0,5\n", "times.csv, row 2: the segment has no name"),
        ("name,start_s,end_s\na,0,5\na,6,7\n", "times.csv, row 3: segment 'a' is already defined in row 2"),
        (
            "name,start\na,0\n",
            "times.csv, row 1: the header must name the columns name, start_s, end_s; missing start_s, end_s",
        ),
        ("name,start_s,end_s\n", "times.csv: no segments"),
    ],
)
def test_bad_segment_files_name_the_file_and_row(tmp_path, text, expected):
    path = tmp_path / "times.csv"
    path.write_text(text)
    with pytest.raises(FerError) as err:
        read_segments(path)
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith(f"{path.parent}/{expected}")


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(FerError, match="no such file"):
        read_segments(tmp_path / "nope.csv")


def test_segments_beyond_the_video_are_warnings():
    segments = parse_segments("name,start_s,end_s\na,0,4\nb,4,12\nc,20,30\n")
    warnings = segment_warnings(segments, 10.0)
    assert len(warnings) == 2
    assert "'b' (4-12 s) ends after the video ends (10.0 s)" in warnings[0]
    assert "'c' (20-30 s) starts after the video ends" in warnings[1]
