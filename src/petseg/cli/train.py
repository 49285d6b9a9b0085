"""``petseg train``: plan, split and train the 3D network (k folds) on a dataset folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from petseg.cli._common import add_force_argument
from petseg.progress import enabled


def register(subparsers: argparse._SubParsersAction) -> None:
    from petseg.engine import ENGINES
    from petseg.nn.plan import BUDGETS
    from petseg.nn.train import (
        ADAMW_LEARNING_RATE,
        DEVICES,
        OPTIMIZERS,
        SGD_LEARNING_RATE,
        TrainConfig,
    )

    d = TrainConfig()
    parser = subparsers.add_parser(
        "train",
        help="train the nnU-Net-style 3D PET/CT network with k-fold cross-validation",
        description="Fingerprint the dataset, write plan.json and folds.json (patient-level "
        "split) into MODEL, and train each fold with Dice + cross-entropy, foreground "
        "oversampling and augmentation. A fold with a checkpoint resumes from it; a finished "
        "fold is kept unless --force. See docs/network.md.",
    )
    parser.add_argument("dataset", type=Path, help="dataset folder (docs/dataset-layout.md)")
    parser.add_argument("--out", type=Path, required=True, help="model folder")
    parser.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    parser.add_argument(
        "--fold", type=int, action="append", help="train only this fold (repeatable; default all)"
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="builtin",
        help="builtin: petseg's MONAI DynUNet; nnunet: nnU-Net v2 through its Python API "
        "(pip install 'petseg[nnunet]', docs/nnunet.md)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        help=f"epochs (default {d.epochs}; nnU-Net's own with --engine nnunet)",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        help=f"iterations per epoch (default {d.iterations_per_epoch}; nnU-Net 250)",
    )
    _add_nnunet_options(parser)
    parser.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default=d.optimizer,
        help="sgd: nnU-Net's; adamw: converges in far fewer iterations, for short CPU "
        "trainings; auto (default): sgd for --budget nnunet, adamw otherwise (docs/network.md)",
    )
    parser.add_argument(
        "--lr",
        type=float,
        help=f"initial learning rate (default {SGD_LEARNING_RATE} for sgd, "
        f"{ADAMW_LEARNING_RATE} for adamw)",
    )
    parser.add_argument(
        "--budget",
        choices=sorted(BUDGETS),
        default="cpu-small",
        help="compute budget for the plan (default cpu-small; nnunet for a GPU)",
    )
    parser.add_argument(
        "--device", choices=DEVICES, default=d.device, help="default auto (CUDA if present)"
    )
    parser.add_argument(
        "--threads", type=int, help="CPU threads for torch (default: torch's choice)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help=f"seed of split, init and sampling (default {d.seed})",
    )
    parser.add_argument("--no-augment", action="store_true", help="switch augmentation off")
    add_force_argument(parser)
    parser.set_defaults(func=run)


def _add_nnunet_options(parser: argparse.ArgumentParser) -> None:
    """The options only ``--engine nnunet`` reads, defaults from :class:`NnunetTraining`."""
    from petseg.cli.nnunet import PET_NORMALISATION_CHOICES
    from petseg.nnunet.training import CONFIGURATIONS, NnunetTraining

    d = NnunetTraining()
    parser.add_argument(
        "--configuration",
        choices=CONFIGURATIONS,
        default=d.configuration,
        help=f"nnU-Net configuration (--engine nnunet; default {d.configuration})",
    )
    parser.add_argument(
        "--trainer", default=d.trainer, help="nnU-Net trainer class (--engine nnunet)"
    )
    parser.add_argument(
        "--pet-normalisation",
        choices=PET_NORMALISATION_CHOICES,
        default=d.pet_normalisation,
        help="nnU-Net PET channel normalisation (--engine nnunet; docs/nnunet.md)",
    )


def _engine_config(args: argparse.Namespace) -> Any:
    """The chosen engine's training configuration from the command line."""
    from petseg.nn.train import TrainConfig, resolve_device

    if args.engine == "nnunet":
        from petseg.nnunet.training import NnunetTraining, TrainBudget

        return NnunetTraining(
            configuration=args.configuration,
            trainer=args.trainer,
            budget=TrainBudget(epochs=args.epochs, iterations_per_epoch=args.iterations),
            pet_normalisation=args.pet_normalisation,
            split_seed=args.seed,
            device=resolve_device(args.device),
        )
    from petseg.nn.engine import BuiltinTraining

    defaults = TrainConfig()
    config = TrainConfig(
        epochs=args.epochs or defaults.epochs,
        iterations_per_epoch=args.iterations or defaults.iterations_per_epoch,
        optimizer=args.optimizer,
        learning_rate=args.lr,
        seed=args.seed,
        augment=not args.no_augment,
        device=args.device,
        threads=args.threads,
    )
    return BuiltinTraining(budget=args.budget, config=config)


def run(args: argparse.Namespace) -> int:
    from petseg.engine import get_engine

    folds = get_engine(args.engine).train(
        args.dataset,
        args.out,
        _engine_config(args),
        n_folds=args.folds,
        folds=args.fold,
        force=args.force,
        progress=enabled(),
    )
    for f in folds:
        dice = "" if f.validation_dice is None else f", validation Dice {f.validation_dice:.3f}"
        print(f"fold {f.fold}: {f.note}{dice}, {f.seconds:.0f} s -> {f.path}")
    return 0
