"""A fer-reactions run: checked first, built aside, swapped in whole, or nothing written."""

import json

import pytest

from fer_keras.constants import REACTIONS_SUMMARY_FILE, TIMELINE_FILE
from fer_keras.errors import FerError
from fer_keras.inference.predictor import Predictor
from fer_keras.model.shipped import default_model_dir
from fer_keras.reactions.analyze import Settings
from fer_keras.reactions.run import plan_reactions, run_reactions
from tests.reactions.videos import segment_video

pytest.importorskip("norfair")

FAST = Settings(fps=2, smooth=0, detector="haar")


@pytest.fixture(scope="module")
def predictor():
    return Predictor.load(default_model_dir(), runtime="onnx")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return segment_video(tmp_path_factory.mktemp("v") / "v.mp4", [("angry", 1.0)])


def _plan(paths, out):
    return plan_reactions(paths, out, settings=FAST, runtime="onnx")


class Interrupt:
    """A progress bar whose first update is Ctrl-C."""

    def update(self, n):
        raise KeyboardInterrupt


def test_an_interrupted_run_leaves_the_previous_output(tmp_path, predictor, video):
    out = tmp_path / "out"
    run_reactions(_plan([video], out), predictor=predictor)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(KeyboardInterrupt):
        run_reactions(_plan([video], out), predictor=predictor, progress=Interrupt())
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_nothing_analysable_is_an_error_and_writes_nothing(tmp_path, predictor):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"")
    out = tmp_path / "out"
    warnings = []
    with pytest.raises(FerError) as err:
        run_reactions(_plan([bad], out), predictor=predictor, warn=warnings.append)
    assert warnings == [f"{bad}: empty file (0 bytes); skipped"]
    assert err.value.problems == ["none of the 1 source(s) could be analysed; nothing written"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4"]


def test_refuses_to_replace_a_folder_that_is_not_an_output(tmp_path, video):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    with pytest.raises(FerError, match="refusing to replace it"):
        _plan([video], tmp_path / "mine")


def test_out_inside_an_input_folder_is_refused(tmp_path, video):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "v.mp4").write_bytes(video.read_bytes())
    with pytest.raises(FerError, match="must not be inside the input folder"):
        _plan([folder], folder / "out")


def test_no_inputs_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FerError) as err:
        _plan([tmp_path / "empty"], tmp_path / "out")
    assert err.value.problems[0] == f"{tmp_path / 'empty'}: no images or videos in this folder; skipped"
    assert err.value.problems[-1].startswith("no videos or images to analyse in")


def test_a_rerun_replaces_an_earlier_output(tmp_path, predictor, video):
    out = tmp_path / "out"
    run_reactions(_plan([video], out), predictor=predictor)
    (out / "stale.txt").write_text("from an earlier run")
    result = run_reactions(_plan([video], out), predictor=predictor)
    assert not (out / "stale.txt").exists() and (out / TIMELINE_FILE).is_file()
    assert json.loads((out / REACTIONS_SUMMARY_FILE).read_text())["sources"][0]["frames_sampled"] == 2
    assert result.summary["settings"]["fps"] == 2
