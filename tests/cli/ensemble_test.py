"""fer-ensemble: thin over fer_keras.training.ensemble; --dry-run loads no model and writes nothing."""

from fer_keras.cli.ensemble import main
from tests.model_fixtures import shared_model_folder


def test_dry_run_names_members_and_writes_nothing(tmp_path_factory, tmp_path, tiny_data, capsys):
    members = [str(shared_model_folder(tmp_path_factory, seed=s)) for s in (0, 1)]
    out = tmp_path / "pair"
    assert main([*members, "--out", str(out), "--data", str(tiny_data), "--tta", "flip", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "would write ensemble 'pair' of 2 models" in text and "TTA flip" in text and not out.exists()


def test_one_member_is_a_one_line_error(tmp_path_factory, tmp_path, tiny_data, capsys):
    member = str(shared_model_folder(tmp_path_factory, seed=0))
    assert main([member, "--out", str(tmp_path / "x"), "--data", str(tiny_data)]) == 1
    assert "an ensemble needs 2 to 8 model folders; got 1" in capsys.readouterr().err


def test_class_prior_is_shown_by_dry_run_and_checked_first(tmp_path_factory, tmp_path, tiny_data, capsys):
    members = [str(shared_model_folder(tmp_path_factory, seed=s)) for s in (0, 1)]
    args = [*members, "--out", str(tmp_path / "pair"), "--data", str(tiny_data), "--dry-run"]
    assert main([*args, "--class-prior", "auto"]) == 0
    assert "class-prior correction auto" in capsys.readouterr().out
    assert main([*args, "--class-prior", "1.5"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: '--class-prior' must be \"auto\" or a tau in [0, 1]; got '1.5'"


def test_export_with_class_prior_prints_the_chosen_tau(tmp_path_factory, tmp_path, tiny_data, capsys):
    members = [str(shared_model_folder(tmp_path_factory, seed=s)) for s in (0, 1)]
    out = tmp_path / "pair"
    assert main([*members, "--out", str(out), "--data", str(tiny_data), "--class-prior", "auto", "-q"]) == 0
    text = capsys.readouterr().out
    assert (
        "class-prior correction tau " in text
        and "valid ensemble: accuracy" in text
        and (out / "metadata.json").is_file()
    )
