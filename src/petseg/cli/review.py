"""``petseg review``: the browser page to check and correct segmentations."""

from __future__ import annotations

import argparse

from petseg.cli._config import call_with_args

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``petseg review``: the local review server and its page.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parent command's subcommands.
    """
    from petseg.review.preview import PREVIEW_VOXELS  # numpy only: light at start-up

    parser = subparsers.add_parser(
        "review",
        help="review and correct segmentations in the browser (local web server)",
        description=(
            "Serve a review page for a case output folder of `petseg segment` (or a cohort "
            "folder of such folders): PET/CT with the lesion overlay, remove and add lesions, "
            "score with Carlsen Table 1, save a new version beside the original. The server "
            "binds 127.0.0.1; another --host makes the review reachable from other machines: "
            "it prints a warning and needs an access token (--token, or one is generated and "
            "printed in the URL). See docs/review.md."
        ),
    )
    parser.add_argument(
        "folder", metavar="OUT_OR_COHORT", help="case output folder or cohort folder"
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1); anything else requires an access token",
    )
    parser.add_argument("--token", default=None, help="access token for a non-loopback --host")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument(
        "--preview-voxels",
        type=int,
        default=PREVIEW_VOXELS,
        help=(
            "studies larger than this are first shown reduced, then at full resolution "
            f"(default {PREVIEW_VOXELS}, for browsers without a GPU; 0 always loads full "
            "resolution)"
        ),
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from petseg.review.server import serve

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be 0..65535, got {args.port}")
    if args.preview_voxels < 0:
        raise ValueError(
            f"--preview-voxels must be 0 (no preview) or a positive voxel count, got {args.preview_voxels}"
        )
    call_with_args(serve, args, root=args.folder, open_browser=not args.no_browser)
    return 0
