"""``petseg run``: one pipeline over a cohort of studies, in parallel on Dask, resumable."""

from __future__ import annotations

import argparse
from pathlib import Path

from petseg.cli._common import (
    add_force_argument,
    add_method_arguments,
    given_method_options,
    params_from_args,
)
from petseg.cli._config import call_with_args
from petseg.cohort.run import Pipeline
from petseg.io.organs import RUN_TOTALSEGMENTATOR
from petseg.progress import enabled

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``petseg run``: one pipeline over a cohort; threshold options as for ``segment``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``run`` is registered in.
    """
    from petseg.engine import ENGINES

    parser = subparsers.add_parser(
        "run",
        help="segment a whole cohort in parallel (Dask), resumable, with a cohort table",
        description="Run the threshold pipeline (or --method predict) on every study of "
        "COHORT and write OUT/<id>/ case folders, OUT/cohort.csv and per-study logs. "
        "Rerunning the same command skips finished studies (checked by input checksums "
        "and parameters) and redoes unfinished or failed ones. See docs/cohort.md.",
    )
    parser.add_argument(
        "cohort",
        type=Path,
        metavar="COHORT",
        help="folder of studies (NIfTI case folders with pet.nii.gz, or DICOM folders) or a CSV "
        "manifest with columns id, pet|dicom, optional ct, ref_sphere ('x,y,z,r' LPS mm), "
        "organs (an organ map, or 'totalsegmentator')",
    )
    parser.add_argument("--out", type=Path, required=True, help="run folder (resumed if it exists)")
    add_method_arguments(parser, extra_methods=("predict",))
    group = parser.add_argument_group("predict method")
    group.add_argument(
        "--model", type=Path, help="model folder made by petseg train (default: demo)"
    )
    group.add_argument("--folds", help="folds to ensemble: 'all' (default) or e.g. 0,1,2")
    group.add_argument(
        "--engine",
        choices=ENGINES,
        help="builtin (default): petseg's network; nnunet: a model of petseg train --engine "
        "nnunet (recorded in the run's parameters)",
    )
    group.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        help="cpu (default) or cuda: one GPU per worker process (set --workers to the number "
        "of GPUs)",
    )
    group.add_argument(
        "--save-probabilities", action="store_true", help="also write probabilities.nii.gz"
    )
    group = parser.add_argument_group("execution")
    group.add_argument(
        "--workers",
        type=int,
        help="local Dask worker processes, 1 thread each (default: one per core, at most one per "
        "4 GiB of memory; with --device cuda one per GPU); 0 runs in this process without Dask",
    )
    group.add_argument(
        "--scheduler", metavar="ADDRESS", help="use a running Dask cluster, e.g. tcp://host:8786"
    )
    group.add_argument(
        "--truth", type=Path, help="folder of true lesion maps: petseg evaluate runs at the end"
    )
    group.add_argument("--no-rtstruct", action="store_true", help="do not write rtstruct.dcm")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_force_argument(parser)
    parser.set_defaults(func=_run)


def pipeline_from_args(args: argparse.Namespace) -> Pipeline:
    """The cohort pipeline named by ``--method`` and its options.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``petseg run`` command line.

    Returns
    -------
    Pipeline
        :class:`~petseg.cohort.SegmentPipeline` or :class:`~petseg.cohort.PredictPipeline`.
    """
    from petseg.cohort import PredictPipeline, SegmentPipeline

    if args.ref_mask is not None or args.exclude:
        raise ValueError(
            "--ref-mask and --exclude name one study's masks; a cohort run places each "
            "reference VOI automatically, or takes a sphere per study from the CSV manifest's "
            "ref_sphere column"
        )
    if args.organs is not None and args.organs != RUN_TOTALSEGMENTATOR:
        raise ValueError(
            f"--organs {args.organs} names one study's organ map; a cohort run takes "
            "--organs totalsegmentator, or an organ map per study from the CSV manifest's "
            "organs column"
        )
    if args.organ_names is not None:
        raise ValueError(
            "--organ-names names one map's classes; in a cohort, put a JSON of names beside "
            "each organ map (<map>.json)"
        )
    if args.method == "predict":
        organ_options = [o for o in ("--organs", "--tracer") if getattr(args, o[2:]) is not None]
        threshold_options = given_method_options(args) + organ_options
        if threshold_options:
            raise ValueError(
                f"{', '.join(threshold_options)} do(es) not apply to --method predict (the "
                "network's own post-processing runs); drop them"
            )
        return PredictPipeline(
            model=str(args.model) if args.model is not None else None,
            folds=args.folds or "all",
            engine=args.engine or "builtin",
            device=args.device or "cpu",
            rtstruct=not args.no_rtstruct,
            save_probabilities=args.save_probabilities,
        ).with_checksum()
    network_options = [
        option
        for option, value in (
            ("--model", args.model),
            ("--folds", args.folds),
            ("--engine", args.engine),
            ("--device", args.device),
            ("--save-probabilities", args.save_probabilities or None),
        )
        if value is not None
    ]
    if network_options:
        raise ValueError(
            f"{', '.join(network_options)} apply to --method predict only; drop them or use "
            "--method predict"
        )
    return SegmentPipeline(
        params_from_args(args),
        rtstruct=not args.no_rtstruct,
        organs=args.organs,
        tracer=args.tracer,
    )


def _run(args: argparse.Namespace) -> int:
    from petseg.cohort import run_cohort

    result = call_with_args(
        run_cohort,
        args,
        out_dir=args.out,
        pipeline=pipeline_from_args(args),
        progress=not args.no_progress and enabled(),
    )
    c = result.counts
    print(
        f"{len(result.rows)} studies: {c['done']} done, {c['skipped']} skipped (already "
        f"finished), {c['failed']} failed in {result.seconds:.1f} s "
        f"(workers: {result.workers}) -> {result.out_dir / 'cohort.csv'}"
    )
    for row in result.rows:
        if row["status"] == "failed":
            print(f"  {row['id']}: {row['error']}")
    if args.truth is not None and result.evaluation is None:
        print("evaluation skipped: run the same command again to redo the failed studies")
    return 1 if c["failed"] else 0
