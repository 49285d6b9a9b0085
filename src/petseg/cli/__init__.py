"""The ``petseg`` command. Each subcommand lives in its own module of this package and
calls one library function; this module only collects them and reports errors.

Subcommand modules expose ``register(subparsers)``, which adds a parser whose
``func(args) -> int`` default runs the command. Heavy libraries are imported inside
``func`` so that ``petseg --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

from petseg import __version__

__all__ = ["main"]

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
    parser = argparse.ArgumentParser(
        prog="petseg",
        description="Total tumour segmentation and quantification in PET/CT.",
    )
    parser.add_argument("--version", action="version", version=f"petseg {__version__}")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``petseg`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(_attach_number_lists(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("petseg: interrupted", file=sys.stderr)
        return 130
    except (
        ValueError,
        OSError,
        ImportError,
    ) as err:  # OSError: missing/existing files, permissions
        print(f"petseg {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
