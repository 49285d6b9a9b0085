"""``petseg predict``: segment studies with the trained 3D network (fold ensemble)."""

from __future__ import annotations

import argparse
from pathlib import Path

from petseg.cli._common import add_force_argument, add_study_arguments, load_study_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    from petseg.engine import ENGINES

    parser = subparsers.add_parser(
        "predict",
        help="segment with the 3D network (sliding window, fold ensemble, post-processing)",
        description="Predict lesion probabilities with each chosen fold (Gaussian sliding "
        "window), average them, threshold at 0.5, remove segmentation outside the PET body "
        "contour and components < 0.1 mL, and write the same outputs as petseg segment, plus "
        "uncertainty.nii.gz (the folds' mutual information, bits) and per-lesion uncertainty "
        "columns in lesions.csv (docs/network.md). "
        "STUDY may also be a dataset folder (dataset.json or case folders): each case goes "
        "to OUT/<case>. --folds crossval predicts each dataset case with the fold that did "
        "not train on it. Without --model the shipped demonstration model is used "
        "(synthetic training data, demonstration only).",
    )
    add_study_arguments(parser)
    parser.add_argument(
        "--model", type=Path, help="model folder from petseg train (default: demo model)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--folds", default="all", help="all (ensemble), e.g. 0 or 0,2, or crossval (dataset only)"
    )
    parser.add_argument(
        "--save-probabilities",
        action="store_true",
        help="also write probabilities.nii.gz (ensemble) and nnunet_fold_<k>.npz (each fold)",
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="builtin",
        help="nnunet: a model trained with petseg train --engine nnunet (docs/nnunet.md)",
    )
    parser.add_argument(
        "--no-mirroring",
        action="store_true",
        help="nnU-Net: no test-time mirroring (about 8x faster on CPU)",
    )
    parser.add_argument("--no-rtstruct", action="store_true", help="do not write rtstruct.dcm")
    add_force_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from petseg.engine import get_engine, predict_dataset, predict_to_folder
    from petseg.io.dataset import is_dataset

    options = {"use_mirroring": not args.no_mirroring} if args.engine == "nnunet" else {}
    engine = get_engine(args.engine, **options)
    if is_dataset(args.study):
        results = predict_dataset(
            engine,
            args.study,
            args.model,
            args.out,
            folds=args.folds,
            device=args.device,
            force=args.force,
            save_probabilities=args.save_probabilities,
        )
        for case_id, result in results.items():
            p = result.patient
            print(f"{case_id}: {p.lesion_count} lesions, TTV {p.total_tumour_volume_ml:.2f} mL")
        print(f"{len(results)} cases -> {args.out}")
        return 0
    if args.folds == "crossval":
        raise ValueError("--folds crossval needs a dataset folder (cases of the training split)")
    from petseg.io.atomic import check_writable_target

    check_writable_target(args.out, args.force)  # before the network runs
    study = load_study_from_args(args)
    model = engine.load(args.model, args.folds, device=args.device)
    result = predict_to_folder(
        engine,
        study,
        model,
        args.out,
        force=args.force,
        save_probabilities=args.save_probabilities,
        rtstruct=not args.no_rtstruct,
    ).result
    p = result.patient
    flagged = sum(u.review_first for u in result.lesion_uncertainty or [])
    print(
        f"{study.patient_id}: {args.engine} folds {model.folds} of {model.path}, "
        f"{p.lesion_count} lesions ({flagged} to review first), "
        f"TTV {p.total_tumour_volume_ml:.2f} mL -> {args.out}"
    )
    return 0
