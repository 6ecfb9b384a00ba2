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


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An ArgumentParser with the flags every command has (--debug, -q)."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    add_common(p)
    return p


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or per-epoch lines")


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
