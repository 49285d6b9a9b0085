"""``petseg slices build|experiment|predict``: the Rainio 2023 2D slice methods."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def _build(args: argparse.Namespace) -> int:
    from petseg.io.atomic import check_writable_target
    from petseg.slices.build import build_slice_set
    from petseg.slices.dataset import iter_cases
    from petseg.slices.store import save_slice_set

    check_writable_target(args.out, args.force, inputs=[args.dataset])
    cases = ((cid, pet, mask) for cid, pet, mask, _ in iter_cases(args.dataset, args.roi))
    slices = build_slice_set(
        cases, crop=args.crop, size=args.size, meta={"dataset": str(Path(args.dataset).resolve())}
    )
    save_slice_set(args.out, slices, force=args.force)
    print(f"{len(slices.images)} slices of {len(slices.patients)} patients -> {args.out}")
    return 0


def _experiment(args: argparse.Namespace) -> int:
    import torch

    from petseg.io.atomic import check_writable_target
    from petseg.slices.experiment import ExperimentConfig, run_experiment
    from petseg.slices.store import load_slice_set, write_experiment_outputs

    check_writable_target(args.out, args.force, inputs=[args.slices])
    torch.set_num_threads(args.threads)
    slices = load_slice_set(args.slices)
    config = ExperimentConfig(
        n_folds=args.folds,
        seed=args.seed,
        unet_epochs=args.unet_epochs,
        cnn_epochs=args.cnn_epochs,
        unet_loss=args.unet_loss,
        precision=args.precision,
        threshold3d=not args.no_3d,
        threshold3d_epochs=args.threshold3d_epochs,
    )
    result = run_experiment(slices, config, progress=lambda m: print(m, flush=True))
    inputs = {"slices": str(Path(args.slices).resolve()), "slice_meta": slices.meta}
    write_experiment_outputs(args.out, slices, result, inputs=inputs, force=args.force)
    print(f"experiment done in {result.seconds:.0f} s -> {args.out}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import numpy as np

    from petseg.io.atomic import check_writable_target
    from petseg.slices.predict import predict_slices, predict_volume
    from petseg.slices.store import load_models

    check_writable_target(args.out, args.force, inputs=[args.models, args.slices, args.study])
    models, info = load_models(args.models)
    params = info["parameters"]
    opts = {"unet_loss": params["unet_loss"], "precision": params["precision"]}
    if args.slices:
        from petseg.io.atomic import atomic_file
        from petseg.slices.store import load_slice_set

        slices = load_slice_set(args.slices)
        masks, thr = predict_slices(models, slices.images, args.method, **opts)
        with atomic_file(args.out, force=args.force) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, masks=masks, thresholds=thr, patient_ids=slices.patient_ids)
    else:
        from petseg.io import load_study, write_nifti

        study = load_study(args.study)
        crop = args.crop or info.get("slice_meta", {}).get("crop", "")
        size = int(info.get("slice_meta", {}).get("size", 64))
        mask = predict_volume(study.pet, models, crop=crop, size=size, method=args.method, **opts)
        write_nifti(args.out, mask.astype(np.uint8), study.geometry, force=args.force)
    print(f"{args.method} prediction -> {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from petseg.slices.build import CROP_PRESETS

    parser = subparsers.add_parser(
        "slices",
        help="Rainio 2023 2D slice methods (U-Net, threshold CNN, both) and their experiment",
        description="Build tumour slices, run the 6-fold experiment, or predict with trained models.",
    )
    sub = parser.add_subparsers(dest="slices_command", metavar="STEP")
    sub.required = True

    b = sub.add_parser("build", help="select, crop, downscale and scale tumour slices")
    b.add_argument(
        "dataset", type=Path, help="folder of case folders (NIfTI layout or DICOM + RTSTRUCT)"
    )
    b.add_argument("--out", type=Path, required=True, help="output slice set (.npz)")
    b.add_argument(
        "--crop", default="rainio", help=f"crop box: {', '.join(CROP_PRESETS)} (default rainio)"
    )
    b.add_argument("--size", type=int, default=64, help="output side in pixels (default 64)")
    b.add_argument(
        "--roi", action="append", help="RTSTRUCT ROI name to use (repeatable; default all)"
    )
    b.add_argument("--force", action="store_true", help="replace an existing output")
    b.set_defaults(func=_build)

    e = sub.add_parser("experiment", help="patient-level cross-validation of the three methods")
    e.add_argument("slices", type=Path, help="slice set (.npz) from `petseg slices build`")
    e.add_argument("--out", type=Path, required=True, help="output folder")
    e.add_argument("--folds", type=int, default=6, help="patient folds (default 6)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--unet-epochs", type=int, default=30)
    e.add_argument("--cnn-epochs", type=int, default=15)
    e.add_argument("--unet-loss", choices=("clipped_bce", "bce_logits"), default="clipped_bce")
    e.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="auto (default): bf16 where the CPU has native bf16, else fp32",
    )
    e.add_argument("--no-3d", action="store_true", help="skip the 3D threshold CNN")
    e.add_argument("--threshold3d-epochs", type=int, default=10)
    e.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: 2 threads were 1.9x slower on a shared 2-core "
        "machine, benchmarks/slices_experiment.py --part precision)",
    )
    e.add_argument("--force", action="store_true", help="replace an existing output")
    e.set_defaults(func=_experiment)

    p = sub.add_parser("predict", help="apply trained models to slices or to a 3D study")
    p.add_argument("--models", type=Path, required=True, help="OUT or OUT/models of an experiment")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--slices", type=Path, help="slice set (.npz); writes masks (.npz)")
    src.add_argument(
        "--study", type=Path, help="study (DICOM folder); writes a mask NIfTI on its grid"
    )
    p.add_argument("--out", type=Path, required=True, help="output masks (.npz) or mask NIfTI")
    p.add_argument("--method", choices=("method1", "method2", "method3"), default="method2")
    p.add_argument("--crop", help="crop for --study (default: the one the models were built with)")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.set_defaults(func=_predict)
