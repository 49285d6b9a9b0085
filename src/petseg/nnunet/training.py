"""Training nnU-Net v2 through its Python API on a petseg dataset.

:func:`train_nnunet` exports the dataset (:mod:`petseg.nnunet.export`), writes petseg's
patient-level split as nnU-Net's ``splits_final.json``, runs nnU-Net's fingerprint,
default experiment planner and preprocessing, and trains each fold. Trainers are
instantiated directly (``Trainer(plans=..., configuration=..., fold=..., dataset_json=...,
device=...)`` then ``run_training()``), never through ``nnunetv2.run.run_training``'s
lookup by class name: that lookup imports every trainer module, including the Primus
variants that need ``timm``/``torchvision``, which are absent (or, with PyPI's CUDA
torchvision beside a CPU torch, broken). The work folder is described in
:mod:`petseg.nnunet.environment`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from petseg import __version__
from petseg.nnunet.environment import (
    PLANS_IDENTIFIER,
    WORK_FILE,
    nnunet_environment,
    quiet_nnunet_warnings,
    require_nnunet,
)

__all__ = [
    "CONFIGURATIONS",
    "DEFAULT_TRAINER",
    "NnunetTraining",
    "TrainBudget",
    "plan_and_preprocess",
    "results_folder",
    "train_nnunet",
]

#: nnU-Net configurations petseg can train (3d_fullres is the one Carlsen et al. used).
CONFIGURATIONS = ("3d_fullres", "3d_lowres", "2d")
DEFAULT_TRAINER = "nnUNetTrainer"


@dataclass(frozen=True)
class TrainBudget:
    """Training length; ``None`` keeps the trainer class's own value.

    Attributes
    ----------
    epochs : int or None
        Epochs (nnU-Net's default trainer: 1000).
    iterations_per_epoch : int or None
        Training iterations per epoch (default 250).
    val_iterations_per_epoch : int or None
        Validation iterations per epoch (default 50).
    """

    epochs: int | None = None
    iterations_per_epoch: int | None = None
    val_iterations_per_epoch: int | None = None

    def __post_init__(self) -> None:
        for name, value in dataclasses.asdict(self).items():
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")


@dataclass(frozen=True)
class NnunetTraining:
    """How nnU-Net trains on a petseg dataset (recorded in ``petseg_nnunet.json``).

    Parameters
    ----------
    configuration : str
        nnU-Net configuration, one of :data:`CONFIGURATIONS` ("3d_fullres" as in Carlsen et al.).
    trainer : str
        nnU-Net trainer class name ("nnUNetTrainer", or petseg's "nnUNetTrainer_petsegTiny"
        for smoke tests).
    budget : TrainBudget
        Epochs / iterations overriding the trainer's own (for equal-budget comparisons).
    pet_normalisation : str
        "zscore" or "ct" (:mod:`petseg.nnunet.export`).
    dataset_id : int
        nnU-Net dataset id, 1-999.
    name : str
        nnU-Net dataset name.
    split_seed : int
        Seed of the patient-level split (:func:`petseg.nn.folds.make_folds`, the built-in
        engine's split with the same seed).
    device : str
        "cpu" or "cuda".
    num_processes : int
        Worker processes for nnU-Net's fingerprint and preprocessing.
    """

    configuration: str = "3d_fullres"
    trainer: str = DEFAULT_TRAINER
    budget: TrainBudget = TrainBudget()
    pet_normalisation: str = "zscore"
    dataset_id: int = 501
    name: str = "petseg"
    split_seed: int = 12345
    device: str = "cpu"
    num_processes: int = 1

    def __post_init__(self) -> None:
        if self.configuration not in CONFIGURATIONS:
            raise ValueError(
                f"configuration must be one of {CONFIGURATIONS}, got {self.configuration!r}"
            )


def _negative_cases(labels_dir: Path, cases: Sequence[str]) -> list[str]:
    from petseg.io.nifti import read_nifti

    return [c for c in cases if not np.any(read_nifti(labels_dir / f"{c}.nii.gz")[0])]


def plan_and_preprocess(
    dataset_id: int, configuration: str, num_processes: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """nnU-Net fingerprint, default experiment planner and preprocessing of one configuration
    (nnunetv2.experiment_planning.plan_and_preprocess_api); returns (plans, dataset_json).

    Parameters
    ----------
    dataset_id : int
        nnU-Net dataset id (in the current ``nnUNet_raw``).
    configuration : str
        The configuration to preprocess.
    num_processes : int
        Worker processes.
    """
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprint_dataset,
        plan_experiment_dataset,
        preprocess_dataset,
    )
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name

    extract_fingerprint_dataset(
        dataset_id,
        num_processes=num_processes,
        check_dataset_integrity=True,
        clean=True,
        verbose=False,
        show_progress_bar=False,
    )
    plan_experiment_dataset(dataset_id)
    preprocess_dataset(
        dataset_id,
        PLANS_IDENTIFIER,
        configurations=(configuration,),
        num_processes=(num_processes,),
        show_progress_bar=False,
    )
    folder = Path(os.fspath(nnUNet_preprocessed)) / convert_id_to_dataset_name(dataset_id)
    plans = json.loads((folder / f"{PLANS_IDENTIFIER}.json").read_text(encoding="utf-8"))
    if configuration not in plans["configurations"]:
        raise ValueError(
            f"nnU-Net planned no {configuration!r} for this dataset (it planned "
            f"{sorted(plans['configurations'])}); choose one of those with --configuration"
        )
    dataset_json = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    return plans, dataset_json


def results_folder(work: Path, dataset_name: str, trainer: str, configuration: str) -> Path:
    """nnU-Net's results folder of one trainer and configuration in a work folder.

    Parameters
    ----------
    work : Path
        The work folder.
    dataset_name : str
        ``Dataset<ID>_<NAME>``.
    trainer : str
        Trainer class name.
    configuration : str
        nnU-Net configuration.
    """
    return (
        work / "nnUNet_results" / dataset_name / f"{trainer}__{PLANS_IDENTIFIER}__{configuration}"
    )


def _export_and_split(
    dataset: Path, out: Path, config: NnunetTraining, n_folds: int, force: bool
) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """Claim the work folder, export the dataset and write petseg's split (folds.json)."""
    import shutil

    from petseg.io.atomic import check_writable_target, claim_dir, write_json_atomic
    from petseg.io.dataset import read_dataset_info
    from petseg.nn.folds import make_folds
    from petseg.nnunet.export import export_dataset

    check_writable_target(out, force, inputs=[dataset])
    if out.exists():
        shutil.rmtree(out)
    claim_dir(out, kind="nnU-Net model", inputs=[dataset])
    raw = export_dataset(
        dataset,
        out / "nnUNet_raw",
        dataset_id=config.dataset_id,
        name=config.name,
        pet_normalisation=config.pet_normalisation,
    )
    cases = json.loads((raw / "dataset.json").read_text(encoding="utf-8"))["petseg"]["cases"]
    info = read_dataset_info(dataset)
    split = make_folds(
        cases,
        n_folds,
        seed=config.split_seed,
        patient_of=info.get("patient_of"),
        negatives=_negative_cases(raw / "labelsTr", cases),
    )
    write_json_atomic(out / "folds.json", split)
    return raw, split, info


def _train_fold(
    fold: int, plans: dict[str, Any], dataset_json: dict[str, Any], config: NnunetTraining
) -> dict[str, Any]:
    """Train one fold with the configured trainer and budget; return the budget it used."""
    import torch

    from petseg.nnunet.trainers import trainer_class

    plans_copy = json.loads(json.dumps(plans))
    plans_copy["continue_training"] = False
    trainer = trainer_class(config.trainer)(
        plans=plans_copy,
        configuration=config.configuration,
        fold=fold,
        dataset_json=dataset_json,
        device=torch.device(config.device),
    )
    budget = config.budget
    for attribute, value in (
        ("num_epochs", budget.epochs),
        ("num_iterations_per_epoch", budget.iterations_per_epoch),
        ("num_val_iterations_per_epoch", budget.val_iterations_per_epoch),
    ):
        if value is not None:
            setattr(trainer, attribute, value)
    trainer.run_training()
    return {
        "epochs": trainer.num_epochs,
        "iterations_per_epoch": trainer.num_iterations_per_epoch,
        "val_iterations_per_epoch": trainer.num_val_iterations_per_epoch,
        "batch_size": int(plans["configurations"][config.configuration].get("batch_size", 0)),
        "patch_size": plans["configurations"][config.configuration].get("patch_size"),
    }


def train_nnunet(
    dataset: str | Path,
    out: str | Path,
    config: NnunetTraining = NnunetTraining(),
    *,
    n_folds: int = 5,
    folds: Sequence[int] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Export, plan, preprocess and train nnU-Net folds on a petseg dataset.

    Parameters
    ----------
    dataset : str or Path
        petseg dataset folder (docs/dataset-layout.md).
    out : str or Path
        Work folder (:mod:`petseg.nnunet.environment`); must not exist unless ``force``.
    config : NnunetTraining
        Configuration, trainer, budget, normalisation, split seed, device.
    n_folds : int
        Folds of the patient-level split.
    folds : sequence of int, optional
        Which folds to train (default all).
    force : bool
        Replace an existing work folder.

    Returns
    -------
    dict, the provenance written to ``OUT/petseg_nnunet.json``.
    """
    nn_version = require_nnunet()
    from petseg.io.atomic import write_json_atomic
    from petseg.nnunet.trainers import trainer_class

    trainer_class(config.trainer)  # an unknown trainer fails before the export

    todo = list(range(n_folds)) if folds is None else sorted(set(folds))
    bad = [f for f in todo if not 0 <= f < n_folds]
    if bad:
        raise ValueError(f"fold(s) {bad} do not exist; the split has folds 0..{n_folds - 1}")
    out = Path(out)
    raw, split, info = _export_and_split(Path(dataset), out, config, n_folds, force)
    record: dict[str, Any] = {
        "petseg_version": __version__,
        "nnunetv2_version": nn_version,
        "engine": "nnunet",
        "dataset": str(Path(dataset).resolve()),
        "synthetic": bool(info.get("synthetic", False)),
        "nnunet_dataset": raw.name,
        **{k: v for k, v in dataclasses.asdict(config).items() if k != "num_processes"},
        "plans_identifier": PLANS_IDENTIFIER,
        "n_folds": n_folds,
        "folds": todo,
        "fold_seconds": {},
    }
    # nnU-Net's planner sets torch's thread count to nnUNet_n_proc_DA, so it must be ≥ 1 there;
    # training runs its data augmentation in-process (nnUNet_n_proc_DA=0, no loader workers).
    with nnunet_environment(out, data_workers=config.num_processes), quiet_nnunet_warnings():
        plans, dataset_json = plan_and_preprocess(
            config.dataset_id, config.configuration, config.num_processes
        )
    with nnunet_environment(out, data_workers=0), quiet_nnunet_warnings():
        splits = [{"train": f["train"], "val": f["val"]} for f in split["folds"]]
        pre = out / "nnUNet_preprocessed" / raw.name
        write_json_atomic(pre / "splits_final.json", splits, force=True)
        for fold in todo:
            started = time.perf_counter()
            record["budget_used"] = _train_fold(fold, plans, dataset_json, config)
            record["fold_seconds"][str(fold)] = round(time.perf_counter() - started, 2)
    folder = results_folder(out, raw.name, config.trainer, config.configuration)
    record["model"] = str(folder.relative_to(out))
    write_json_atomic(out / WORK_FILE, record, force=True)
    return record
