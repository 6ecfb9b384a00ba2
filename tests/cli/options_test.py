"""Every command's parser, walked: shared option names, spelling and meaning agree across commands (issue 14)."""

from __future__ import annotations

import argparse
import importlib
import re

import pytest

from fer_keras.cli._common import _DeprecatedAlias
from tests.conftest import ROOT

# [project.scripts] of pyproject.toml (tomllib is Python 3.11+; the project supports 3.10).
_SCRIPTS_TABLE = (ROOT / "pyproject.toml").read_text().split("[project.scripts]")[1].split("\n[")[0]
SCRIPTS = dict(re.findall(r'^(fer-[a-z-]+) = "([a-z_.]+:main)"$', _SCRIPTS_TABLE, re.MULTILINE))
OPTION_RE = re.compile(r"^(-[a-z]|--[a-z0-9]+(-[a-z0-9]+)*)$")
# One name per concept: these spellings may only survive as hidden deprecated aliases of the canonical one.
SYNONYMS = {
    "--history-dir": "--history",
    "--out-dir": "--out",
    "--output": "--out",
    "--output-dir": "--out",
    "--model-dir": "--model",
    "--data-dir": "--data",
    "--dataset": "--data",
    "--run-dir": "--runs-dir",
}
# The concept each shared folder option names, the same in every command.
FOLDER_OPTIONS = {"--model": "DIR", "--history": "DIR", "--data": "DIR", "--runs-dir": "DIR"}
# Commands without --dry-run, and why (a test of the gaps, so a new command cannot forget it silently).
NO_DRY_RUN = {
    "fer-spec show": "prints only",
    "fer-spec check": "prints only",
    "fer-spec types": "prints only",
    "fer-data demo": "not yet: writes a dataset",
    "fer-data stats": "not yet: writes reports/dataset_stats.json",
    "fer-data import-csv": "not yet: writes a dataset",
}


def _commands() -> list[tuple[str, argparse.ArgumentParser]]:
    """(name, parser) of every command and subcommand."""
    out = []

    def walk(name: str, parser: argparse.ArgumentParser) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out.append((name, parser))
        for action in subs:
            for sub_name, sub in action.choices.items():
                walk(f"{name} {sub_name}", sub)

    for script, target in sorted(SCRIPTS.items()):
        module = importlib.import_module(target.split(":")[0])
        walk(script, module.build_parser())
    return out


COMMANDS = _commands()
IDS = [name for name, _ in COMMANDS]


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


def test_every_cli_module_is_a_command():
    modules = {target.split(":")[0] for target in SCRIPTS.values()}
    found = {f"fer_keras.cli.{p.stem}" for p in (ROOT / "fer_keras" / "cli").glob("*.py") if not p.stem.startswith("_")}
    assert found == modules


@pytest.mark.parametrize(("name", "parser"), COMMANDS, ids=IDS)
def test_every_command_has_debug_quiet_and_dry_run(name, parser):
    options = _options(parser)
    assert {"--debug", "-q", "--quiet"} <= set(options), name
    assert options["-q"] is options["--quiet"]
    assert ("--dry-run" in options) != (name in NO_DRY_RUN), f"{name}: --dry-run, or a reason in NO_DRY_RUN"


@pytest.mark.parametrize(("name", "parser"), COMMANDS, ids=IDS)
def test_option_spelling_and_help(name, parser):
    for flag, action in _options(parser).items():
        assert OPTION_RE.match(flag), f"{name} {flag}: lower-case words joined by '-'"
        if isinstance(action, _DeprecatedAlias):  # hidden, and sets what its replacement sets
            replacement = _options(parser)[action.replacement]
            assert action.help == argparse.SUPPRESS and action.dest == replacement.dest, f"{name} {flag}"
            assert SYNONYMS.get(flag, action.replacement) == action.replacement, f"{name} {flag}"
            continue
        assert flag not in SYNONYMS, f"{name} {flag}: the name of this concept is {SYNONYMS[flag]}"
        assert action.help and action.help != argparse.SUPPRESS, f"{name} {flag}: needs a help text"
        if flag in FOLDER_OPTIONS:
            assert action.metavar == FOLDER_OPTIONS[flag], f"{name} {flag}: metavar {FOLDER_OPTIONS[flag]}"
        if flag == "--out":
            assert action.metavar in ("FILE", "DIR", "PATH"), f"{name} --out: say what it writes (FILE/DIR/PATH)"


def test_a_shared_option_takes_the_same_kind_of_value_everywhere():
    seen: dict[str, tuple[str, object, object]] = {}
    for name, parser in COMMANDS:
        for flag, action in _options(parser).items():
            kind = (type(action).__name__, action.type)
            if isinstance(action, argparse._StoreAction | argparse._StoreTrueAction | argparse._AppendAction):
                first = seen.setdefault(flag, (name, *kind))
                assert first[1:] == kind, f"{flag}: {first[0]} takes {first[1:]}, {name} {kind}"


@pytest.mark.parametrize("command", ["fer-train", "fer-grid run"])
def test_mixed_precision_help_says_what_the_code_does(command):
    parser = dict(COMMANDS)[command]
    text = _options(parser)["--mixed-precision"].help
    # fer_keras.training.train.mixed_precision_policy: mixed_float16 with a GPU, else mixed_bfloat16.
    assert "float16" in text and "GPU" in text and "bfloat16" in text and "CPU" in text


@pytest.mark.parametrize(
    ("module", "argv", "dest", "old", "new"),
    [
        ("fer_keras.cli.train", ["--arch", "a.json", "--data", "d"], "history_dir", "--history-dir", "--history"),
        ("fer_keras.cli.eval", ["--data", "d"], "out", "--out-dir", "--out"),
        ("fer_keras.cli.data", ["stats", "d"], "out", "--json", "--out"),
    ],
)
def test_deprecated_aliases_still_work_with_a_one_line_warning(capsys, module, argv, dest, old, new):
    parser = importlib.import_module(module).build_parser()
    assert getattr(parser.parse_args([*argv, new, "x/new"]), dest) == "x/new"
    assert capsys.readouterr().err == ""
    assert getattr(parser.parse_args([*argv, old, "x/old"]), dest) == "x/old"
    err = capsys.readouterr().err
    assert err == f"warning: {old} is deprecated and will be removed in the next release; use {new}\n"
    assert old not in parser.format_help()
