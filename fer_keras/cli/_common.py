"""What every fer_keras command shares: environment, common flags, error handling.

Commands stay thin: they parse arguments, call the library, and let :func:`run`
turn a :class:`~fer_keras.errors.FerError` into one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from fer_keras.environment import quiet_environment

# At import, before any command imports TensorFlow or albumentations: they read it only once.
quiet_environment()

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_INTERRUPTED = 130


DEBUG_HELP = "show full tracebacks"
QUIET_HELP = "no progress bars or per-epoch lines"


def parser(prog: str, description: str, **kwargs) -> argparse.ArgumentParser:
    """An ArgumentParser with the flags every command has (--debug, -q)."""
    p = argparse.ArgumentParser(prog=prog, description=description, **kwargs)
    add_common(p)
    return p


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)


def subcommands(p: argparse.ArgumentParser, metavar: str = "COMMAND") -> tuple[argparse._SubParsersAction, list]:
    """The subcommand table of a multi-command tool, and the ``parents`` every subcommand takes.

    Every subcommand accepts ``--debug`` and ``-q`` too (``fer-data stats DIR -q`` and
    ``fer-data -q stats DIR`` both work); their default is SUPPRESS so that a subcommand
    never resets a flag given before it.

    Example:
        >>> p = parser("fer-x", "a tool")
        >>> subs, parents = subcommands(p)
        >>> sub = subs.add_parser("show", parents=parents, help="show it")
        >>> p.parse_args(["-q", "show"]).quiet, p.parse_args(["show"]).quiet
        (True, False)
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=QUIET_HELP)
    return p.add_subparsers(dest="command", required=True, metavar=metavar, prog=p.prog), [common]


class _DeprecatedAlias(argparse.Action):
    """An old option name that still works, with a one-line warning on stderr (hidden from --help)."""

    def __init__(self, option_strings, dest, replacement: str, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.replacement = replacement

    def __call__(self, parser, namespace, values, option_string=None):
        print(
            f"warning: {option_string} is deprecated and will be removed in the next release; use {self.replacement}",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_deprecated_alias(p: argparse.ArgumentParser, old: str, new: str) -> None:
    """Accept ``old`` for one release as a synonym of the option ``new`` (same value and destination)."""
    action = p._option_string_actions[new]  # noqa: SLF001 - argparse has no public lookup by option string
    p.add_argument(
        old,
        action=_DeprecatedAlias,
        replacement=new,
        dest=action.dest,
        type=action.type,
        nargs=action.nargs,
        metavar=action.metavar,
        default=argparse.SUPPRESS,  # the new option's default stands unless the old name is given
        help=argparse.SUPPRESS,
    )


def run(
    p: argparse.ArgumentParser, handler: Callable[[argparse.Namespace], int | None], argv: Sequence[str] | None
) -> int:
    """Parse ``argv``, call ``handler(args)`` and map errors to exit codes.

    Returns 0 on success (or the handler's own code), 1 for a user error, 130 on Ctrl-C.
    """
    from fer_keras.errors import FerError

    args = p.parse_args(argv)
    try:
        code = handler(args)
        return EXIT_OK if code is None else int(code)
    except FerError as err:
        if getattr(args, "debug", False):
            raise
        for line in err.problems:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the CLI's last line of defence
        if getattr(args, "debug", False):
            raise
        print(f"error: {type(err).__name__}: {err} (rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_USER_ERROR


def progress(iterable=None, *, quiet: bool = False, **kwargs):
    """A tqdm progress bar that ``-q`` silences."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=quiet, dynamic_ncols=True, **kwargs)
