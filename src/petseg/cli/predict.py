"""``petseg predict``: segment studies with the trained 3D network (fold ensemble)."""

from __future__ import annotations

import argparse
from pathlib import Path

from petseg.cli._common import add_force_argument, add_study_arguments, load_study_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="segment with the 3D network (sliding window, fold ensemble, post-processing)",
        description="Predict lesion probabilities with each chosen fold (Gaussian sliding "
        "window), average them, threshold at 0.5, remove segmentation outside the PET body "
        "contour and components < 0.1 mL, and write the same outputs as petseg segment. "
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
        "--save-probabilities", action="store_true", help="also write probabilities.nii.gz"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--engine",
        choices=("builtin", "nnunet"),
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
    if args.engine == "nnunet":
        return _run_nnunet(args)
    from petseg.io.dataset import is_dataset
    from petseg.nn.infer import load_model, predict_dataset, predict_to_folder

    if is_dataset(args.study):
        results = predict_dataset(
            args.study,
            args.model,
            args.out,
            folds=args.folds,
            force=args.force,
            save_probabilities=args.save_probabilities,
            device=args.device,
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
    model = load_model(args.model, args.folds, device=args.device)
    result = predict_to_folder(
        study,
        model,
        args.out,
        force=args.force,
        save_probabilities=args.save_probabilities,
        device=args.device,
        rtstruct=not args.no_rtstruct,
    )
    p = result.patient
    print(
        f"{study.patient_id}: folds {sorted(model.networks)} of {model.path}, {p.lesion_count} "
        f"lesions, TTV {p.total_tumour_volume_ml:.2f} mL -> {args.out}"
    )
    return 0


def _run_nnunet(args: argparse.Namespace) -> int:
    from petseg.io.dataset import is_dataset
    from petseg.nnunet.engine import predict_nnunet_dataset, predict_nnunet_to_folder

    if args.model is None:
        raise ValueError(
            "--engine nnunet needs --model, a folder made by petseg train --engine nnunet"
        )
    options = {
        "folds": args.folds,
        "use_mirroring": not args.no_mirroring,
        "device": args.device,
        "save_probabilities": args.save_probabilities,
        "force": args.force,
    }
    if is_dataset(args.study):
        results = predict_nnunet_dataset(args.study, args.model, args.out, **options)
        print(f"{len(results)} cases -> {args.out}")
        return 0
    result = predict_nnunet_to_folder(
        load_study_from_args(args), args.model, args.out, rtstruct=not args.no_rtstruct, **options
    )
    p = result.patient
    print(f"{p.lesion_count} lesions, TTV {p.total_tumour_volume_ml:.2f} mL -> {args.out}")
    return 0
