"""The ``petseg`` command. Each subcommand lives in its own module of this package and
calls one library function; this module only collects them and reports errors.

Subcommand modules expose ``register(subparsers)``, which adds a parser whose
``func(args) -> int`` default runs the command. Heavy libraries are imported inside
``func`` so that ``petseg --help`` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from petseg import __version__

__all__ = ["EXIT_INTERNAL_ERROR", "EXIT_USER_ERROR", "main", "run_command"]

#: Subcommand modules, in the order of ``petseg --help``.
COMMAND_MODULES = (
    "petseg.cli.segment",
    "petseg.cli.phantom",
    "petseg.cli.demo",
    "petseg.cli.import_",
    "petseg.cli.evaluate",
    "petseg.cli.export",
    "petseg.cli.review",
    "petseg.cli.run",
    "petseg.cli.slices",
    "petseg.cli.nnunet",
    "petseg.cli.train",
    "petseg.cli.predict",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``petseg`` parser with every subcommand of :data:`COMMAND_MODULES`."""
    parser = argparse.ArgumentParser(
        prog="petseg",
        description="Total tumour segmentation and quantification in PET/CT.",
    )
    parser.add_argument("--version", action="version", version=f"petseg {__version__}")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars (give it before COMMAND)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


_NUMBER_LIST = re.compile(r"^-?\d*\.?\d+(,-?\d*\.?\d+)+$")


def _attach_number_lists(argv: Sequence[str]) -> list[str]:
    """Join ``--opt -66,-22,15`` into ``--opt=-66,-22,15`` so argparse does not read a
    comma-separated list that starts with a minus sign (a patient coordinate) as an option."""
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NUMBER_LIST.match(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


#: Exit status of a user error (bad option, missing or existing file, unreadable input).
EXIT_USER_ERROR = 2
#: Exit status of an unexpected internal error (its traceback goes to a log file).
EXIT_INTERNAL_ERROR = 3
#: Option destinations that name an output, not an input.
OUTPUT_OPTIONS = ("out", "raw")


def _input_paths(args: argparse.Namespace) -> list[Path]:
    """Every path among the parsed options that is not an output."""
    found: list[Path] = []

    def collect(value: object) -> None:
        if isinstance(value, Path):
            found.append(value)
        elif isinstance(value, list | tuple):
            for item in value:
                collect(item)

    for dest, value in vars(args).items():
        if dest not in OUTPUT_OPTIONS:
            collect(value)
    return found


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return (
        text
        if isinstance(err, ValueError | OSError | ImportError)
        else f"{type(err).__name__}: {text}"
    )


def run_command(name: str, command: Callable[[], int | None], argv: Sequence[str]) -> int:
    """Run one subcommand and turn every exception into one line on stderr and an exit status.

    A user error (:class:`ValueError`, :class:`OSError`, a missing optional dependency)
    prints ``petseg NAME: error: ...`` and returns :data:`EXIT_USER_ERROR`. Any other
    exception prints one line naming the log file that holds its traceback
    (:func:`petseg.crashlog.log_dir`) and returns :data:`EXIT_INTERNAL_ERROR`; with ``PETSEG_DEBUG=1`` it
    is raised instead.

    Parameters
    ----------
    name : str
        The subcommand, for the messages.
    command : callable
        Runs it; returns the exit status (None for 0).
    argv : sequence of str
        The command line, recorded with a traceback.
    """
    try:
        return int(command() or 0)
    except KeyboardInterrupt:
        print("petseg: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError) as err:  # bad input, files, missing extras
        print(f"petseg {name}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as err:
        if os.environ.get("PETSEG_DEBUG") == "1":
            raise
        from petseg.crashlog import write_crash_log

        log = write_crash_log([f"command: petseg {' '.join(argv)}"])
        print(
            f"petseg {name}: internal error ({_one_line(err)}); the full traceback is in "
            f"{log}; please report it with that file",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``petseg`` with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Before the subcommand runs, its ``--out`` is checked against every other path it was
    given (:func:`petseg.io.atomic.check_inputs`). Errors: see :func:`run_command`.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after ``petseg``.

    Returns
    -------
    int
        0, :data:`EXIT_USER_ERROR` or :data:`EXIT_INTERNAL_ERROR` (1 when a command reports failures).
    """
    tokens = _attach_number_lists(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(tokens)

    def command() -> int | None:
        from petseg.io.atomic import check_inputs
        from petseg.progress import quiet

        out = getattr(args, "out", None)
        if isinstance(out, Path):
            check_inputs(out, _input_paths(args))
        with quiet() if args.quiet else contextlib.nullcontext():
            result: int | None = args.func(args)
        return result

    return run_command(args.command, command, tokens)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
