"""nnU-Net v2 as a petseg engine: plan, preprocess, train and predict through its Python API.

Work folder (``OUT`` of :func:`train_nnunet`)::

    nnUNet_raw/Dataset<ID>_<NAME>/        the exported dataset (petseg.nnunet.export)
    nnUNet_preprocessed/Dataset<ID>_<NAME>/
        nnUNetPlans.json, dataset_fingerprint.json, splits_final.json (= petseg's folds)
    nnUNet_results/Dataset<ID>_<NAME>/<Trainer>__nnUNetPlans__<configuration>/
        plans.json, dataset.json, fold_<k>/checkpoint_final.pth
    folds.json                            petseg's split (petseg.nn.folds, same as the built-in engine)
    petseg_nnunet.json                    provenance: versions, configuration, trainer, budget,
                                          PET normalisation, folds, seconds per fold

How nnU-Net is driven (and why):

* nnU-Net finds its folders through the environment variables ``nnUNet_raw``,
  ``nnUNet_preprocessed`` and ``nnUNet_results``. :func:`nnunet_environment` sets them (and
  ``nnUNet_n_proc_DA``, ``nnUNet_compile``) for the duration of one call and restores
  ``os.environ`` afterwards; nothing is set globally. nnU-Net ≥ 2.8 reads them when used
  (``nnunetv2.paths._EnvPath``), which is what makes this possible.
* Trainers are instantiated directly (``Trainer(plans=..., configuration=..., fold=...,
  dataset_json=..., device=...)`` then ``run_training()``), never through
  ``nnunetv2.run.run_training``'s lookup by class name: that lookup imports every trainer
  module, including the Primus variants that need ``timm``/``torchvision``, which are absent
  (or, with PyPI's CUDA torchvision beside a CPU torch, broken).
* Prediction builds the network with the trainer's ``build_network_architecture`` and hands
  it to ``nnUNetPredictor.manual_initialization`` for the same reason (its
  ``initialize_from_trained_model_folder`` looks the trainer up by name). Each fold predicts
  softmax probabilities on its own; the ensemble is petseg's mean of those probabilities,
  followed by petseg's post-processing (body contour, components < 0.1 mL).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from petseg import __version__
from petseg.lesions import DEFAULT_CONNECTIVITY, MIN_LESION_VOLUME_ML
from petseg.study import Study

if TYPE_CHECKING:
    from petseg.result import SegmentationResult

__all__ = [
    "CONFIGURATIONS",
    "DEFAULT_TRAINER",
    "INSTALL_HINT",
    "NnunetModel",
    "TrainBudget",
    "fold_probability_writer",
    "load_nnunet_model",
    "nnunet_environment",
    "nnunet_predictor",
    "nnunet_version",
    "predict_fold_probabilities",
    "predict_nnunet",
    "predict_nnunet_dataset",
    "predict_nnunet_to_folder",
    "require_nnunet",
    "train_nnunet",
]

INSTALL_HINT = (
    "nnU-Net is an optional extra: install it with  pip install 'petseg[nnunet]'  "
    "(then  pip uninstall -y torchvision timm  if torchvision fails to import beside a CPU torch)"
)
#: nnU-Net configurations petseg can train (3d_fullres is the one Carlsen et al. used).
CONFIGURATIONS = ("3d_fullres", "3d_lowres", "2d")
DEFAULT_TRAINER = "nnUNetTrainer"
PLANS_IDENTIFIER = "nnUNetPlans"
MIN_NNUNET_VERSION = (2, 8)
WORK_FILE = "petseg_nnunet.json"


def nnunet_version() -> str:
    """The installed nnunetv2 version; ImportError with the install command if absent."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nnunetv2")
    except PackageNotFoundError:
        raise ImportError(INSTALL_HINT) from None


def require_nnunet() -> str:
    """Check that nnunetv2 ≥ 2.8 is importable; return its version."""
    found = nnunet_version()
    try:
        import nnunetv2  # noqa: F401
    except ImportError as err:
        raise ImportError(
            f"nnunetv2 {found} is installed but fails to import ({err}). {INSTALL_HINT}"
        ) from err
    parts = tuple(int(p) for p in found.split(".")[:2] if p.isdigit())
    if parts < MIN_NNUNET_VERSION:
        raise ImportError(
            f"nnunetv2 {found} reads its folders at import time; petseg needs nnunetv2 >= "
            f"{'.'.join(map(str, MIN_NNUNET_VERSION))}: pip install -U 'petseg[nnunet]'"
        )
    return found


@contextlib.contextmanager
def nnunet_environment(
    work: str | Path, *, data_workers: int = 0, compile_network: bool = False
) -> Iterator[dict[str, str]]:
    """Set nnU-Net's environment variables for the block only, then restore ``os.environ``.

    Parameters
    ----------
    work : folder holding ``nnUNet_raw``, ``nnUNet_preprocessed``, ``nnUNet_results``
    data_workers : ``nnUNet_n_proc_DA``, data-augmentation worker processes (0 = in-process)
    compile_network : ``nnUNet_compile`` (torch.compile; nnU-Net never compiles on CPU)
    """
    work = Path(work).resolve()
    values = {
        "nnUNet_raw": str(work / "nnUNet_raw"),
        "nnUNet_preprocessed": str(work / "nnUNet_preprocessed"),
        "nnUNet_results": str(work / "nnUNet_results"),
        "nnUNet_n_proc_DA": str(int(data_workers)),
        "nnUNet_compile": "true" if compile_network else "false",
    }
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield values
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextlib.contextmanager
def _quiet_nnunet_warnings() -> Iterator[None]:
    """nnU-Net's own deprecation noise, silenced only inside its calls (petseg runs tests with
    warnings as errors): ``distutils`` (preprocessing), torch's ``lr_scheduler.step`` order
    note, and ``torch.load(weights_only=False)`` in its checkpoint loading."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"nnunetv2|distutils")
        warnings.filterwarnings("ignore", message=r".*distutils.*", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*lr_scheduler\.step.*", category=UserWarning)
        yield


@dataclass(frozen=True)
class TrainBudget:
    """Training length (nnU-Net's default trainer: 1000 epochs × 250 iterations, 50
    validation iterations). ``None`` keeps the trainer class's own value."""

    epochs: int | None = None
    iterations_per_epoch: int | None = None
    val_iterations_per_epoch: int | None = None

    def __post_init__(self) -> None:
        for name, value in dataclasses.asdict(self).items():
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")


def _trainer_class(name: str) -> Any:
    """petseg's trainers by name, else nnU-Net's default ``nnUNetTrainer``; other nnU-Net
    trainers through nnU-Net's own lookup (which needs every trainer module importable)."""
    from petseg.nnunet import trainers

    if name in trainers.__all__:
        return getattr(trainers, name)
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    if name == "nnUNetTrainer":
        return nnUNetTrainer
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    try:
        return recursive_find_trainer_class_by_name(name)
    except (ImportError, RuntimeError) as err:
        raise ValueError(
            f"nnU-Net trainer {name!r} could not be loaded ({err}); use nnUNetTrainer or one of "
            f"petseg's {list(trainers.__all__)}"
        ) from err


def _negative_cases(labels_dir: Path, cases: Sequence[str]) -> list[str]:
    from petseg.io.nifti import read_nifti

    return [c for c in cases if not np.any(read_nifti(labels_dir / f"{c}.nii.gz")[0])]


def _plan_and_preprocess(
    dataset_id: int, configuration: str, num_processes: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """nnU-Net fingerprint, default experiment planner and preprocessing of one configuration
    (nnunetv2.experiment_planning.plan_and_preprocess_api); returns (plans, dataset_json)."""
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


def train_nnunet(
    dataset: str | Path,
    out: str | Path,
    *,
    n_folds: int = 5,
    folds: Sequence[int] | None = None,
    configuration: str = "3d_fullres",
    trainer: str = DEFAULT_TRAINER,
    budget: TrainBudget = TrainBudget(),
    pet_normalisation: str = "zscore",
    dataset_id: int = 501,
    name: str = "petseg",
    split_seed: int = 12345,
    device: str = "cpu",
    num_processes: int = 1,
    force: bool = False,
) -> dict[str, Any]:
    """Export, plan, preprocess and train nnU-Net folds on a petseg dataset.

    Parameters
    ----------
    dataset : petseg dataset folder (docs/dataset-layout.md)
    out : work folder (see module docstring); must not exist unless ``force``
    n_folds, folds, split_seed : the patient-level split of :func:`petseg.nn.folds.make_folds`
        (the built-in engine's split, same seed), written as nnU-Net's ``splits_final.json``;
        ``folds`` picks which to train (default all)
    configuration : nnU-Net configuration ("3d_fullres" as in Carlsen et al.)
    trainer : nnU-Net trainer class name ("nnUNetTrainer", or petseg's
        "nnUNetTrainer_petsegTiny" for smoke tests)
    budget : epochs / iterations overriding the trainer's own (for equal-budget comparisons)
    pet_normalisation : "zscore" or "ct" (petseg.nnunet.export)
    device : "cpu" or "cuda"
    num_processes : worker processes for nnU-Net's fingerprint and preprocessing
    force : replace an existing work folder

    Returns
    -------
    dict, the provenance written to ``OUT/petseg_nnunet.json``.
    """
    nn_version = require_nnunet()
    import shutil

    import torch

    from petseg.io.atomic import check_writable_target, claim_dir, write_json_atomic
    from petseg.io.dataset import read_dataset_info
    from petseg.nn.folds import make_folds
    from petseg.nnunet.export import export_dataset

    if configuration not in CONFIGURATIONS:
        raise ValueError(f"configuration must be one of {CONFIGURATIONS}, got {configuration!r}")
    trainer_cls = _trainer_class(trainer)
    out = Path(out)
    check_writable_target(out, force, inputs=[dataset])
    if out.exists():
        shutil.rmtree(out)
    claim_dir(out, kind="nnU-Net model", inputs=[dataset])
    raw = export_dataset(
        dataset,
        out / "nnUNet_raw",
        dataset_id=dataset_id,
        name=name,
        pet_normalisation=pet_normalisation,
    )
    cases = json.loads((raw / "dataset.json").read_text(encoding="utf-8"))["petseg"]["cases"]
    info = read_dataset_info(dataset)
    split = make_folds(
        cases,
        n_folds,
        seed=split_seed,
        patient_of=info.get("patient_of"),
        negatives=_negative_cases(raw / "labelsTr", cases),
    )
    write_json_atomic(out / "folds.json", split)
    todo = list(range(n_folds)) if folds is None else sorted(set(folds))
    bad = [f for f in todo if not 0 <= f < n_folds]
    if bad:
        raise ValueError(f"fold(s) {bad} do not exist; the split has folds 0..{n_folds - 1}")
    record: dict[str, Any] = {
        "petseg_version": __version__,
        "nnunetv2_version": nn_version,
        "engine": "nnunet",
        "dataset": str(Path(dataset).resolve()),
        "synthetic": bool(info.get("synthetic", False)),
        "nnunet_dataset": raw.name,
        "configuration": configuration,
        "trainer": trainer,
        "plans_identifier": PLANS_IDENTIFIER,
        "budget": dataclasses.asdict(budget),
        "pet_normalisation": pet_normalisation,
        "n_folds": n_folds,
        "folds": todo,
        "device": device,
        "fold_seconds": {},
    }
    # nnU-Net's planner sets torch's thread count to nnUNet_n_proc_DA, so it must be ≥ 1 there;
    # training runs its data augmentation in-process (nnUNet_n_proc_DA=0, no loader workers).
    with nnunet_environment(out, data_workers=num_processes), _quiet_nnunet_warnings():
        plans, dataset_json = _plan_and_preprocess(dataset_id, configuration, num_processes)
    with nnunet_environment(out, data_workers=0), _quiet_nnunet_warnings():
        pre = out / "nnUNet_preprocessed" / raw.name
        splits = [{"train": f["train"], "val": f["val"]} for f in split["folds"]]
        write_json_atomic(pre / "splits_final.json", splits, force=True)
        for fold in todo:
            started = time.perf_counter()
            plans_copy = json.loads(json.dumps(plans))
            plans_copy["continue_training"] = False
            net_trainer = trainer_cls(
                plans=plans_copy,
                configuration=configuration,
                fold=fold,
                dataset_json=dataset_json,
                device=torch.device(device),
            )
            for attribute, value in (
                ("num_epochs", budget.epochs),
                ("num_iterations_per_epoch", budget.iterations_per_epoch),
                ("num_val_iterations_per_epoch", budget.val_iterations_per_epoch),
            ):
                if value is not None:
                    setattr(net_trainer, attribute, value)
            record["budget_used"] = {
                "epochs": net_trainer.num_epochs,
                "iterations_per_epoch": net_trainer.num_iterations_per_epoch,
                "val_iterations_per_epoch": net_trainer.num_val_iterations_per_epoch,
                "batch_size": int(plans["configurations"][configuration].get("batch_size", 0)),
                "patch_size": plans["configurations"][configuration].get("patch_size"),
            }
            net_trainer.run_training()
            record["fold_seconds"][str(fold)] = round(time.perf_counter() - started, 2)
    record["model"] = str(_results_folder(out, raw.name, trainer, configuration).relative_to(out))
    write_json_atomic(out / WORK_FILE, record, force=True)
    return record


def _results_folder(work: Path, dataset_name: str, trainer: str, configuration: str) -> Path:
    return (
        work / "nnUNet_results" / dataset_name / f"{trainer}__{PLANS_IDENTIFIER}__{configuration}"
    )


@dataclass
class NnunetModel:
    """A trained nnU-Net model folder in memory: plans, one weight set per fold, provenance."""

    path: Path
    plans: dict[str, Any]
    dataset_json: dict[str, Any]
    configuration: str
    trainer: str
    parameters: dict[int, dict[str, Any]]
    mirror_axes: tuple[int, ...] | None
    info: dict[str, Any]

    @property
    def pet_normalisation(self) -> str | None:
        value = self.dataset_json.get("petseg", {}).get("pet_normalisation")
        return None if value is None else str(value)


def _find_model_folder(path: Path) -> Path:
    """``path`` itself when it holds plans.json, else the one results folder in a work folder."""
    if (path / "plans.json").is_file():
        return path
    work_file = path / WORK_FILE
    if work_file.is_file():
        record = json.loads(work_file.read_text(encoding="utf-8"))
        return path / record["model"]
    raise FileNotFoundError(
        f"{path} is neither an nnU-Net model folder (with plans.json and fold_<k>/) nor a "
        f"petseg nnU-Net work folder (with {WORK_FILE}); give the folder train_nnunet made"
    )


def load_nnunet_model(path: str | Path, folds: str | Sequence[int] | None = "all") -> NnunetModel:
    """Load ``plans.json``, ``dataset.json`` and ``fold_<k>/checkpoint_final.pth`` weights.

    ``path`` is a petseg nnU-Net work folder or an nnU-Net results folder
    (``<Trainer>__<Plans>__<configuration>``), including one trained elsewhere.
    """
    require_nnunet()
    import torch

    from petseg.nn.infer import parse_folds

    work = Path(path)
    root = _find_model_folder(work)
    available = sorted(
        int(p.parent.name.split("_")[1])
        for p in root.glob("fold_*/checkpoint_final.pth")
        if p.parent.name.split("_")[1].isdigit()
    )
    if not available:
        raise FileNotFoundError(f"{root} holds no finished fold (fold_<k>/checkpoint_final.pth)")
    chosen = parse_folds(folds, available)
    parameters: dict[int, dict[str, Any]] = {}
    trainer = configuration = ""
    mirror_axes = None
    for fold in chosen:
        # nnU-Net checkpoints hold plain Python objects beside tensors; weights_only=False is
        # nnU-Net's own way of loading them. Load only models you trust.
        with _quiet_nnunet_warnings():
            checkpoint = torch.load(
                root / f"fold_{fold}" / "checkpoint_final.pth",
                map_location="cpu",
                weights_only=False,
            )
        parameters[fold] = checkpoint["network_weights"]
        trainer = checkpoint["trainer_name"]
        configuration = checkpoint["init_args"]["configuration"]
        mirror_axes = checkpoint.get("inference_allowed_mirroring_axes")
    info = {}
    if (work / WORK_FILE).is_file():
        info = json.loads((work / WORK_FILE).read_text(encoding="utf-8"))
    return NnunetModel(
        path=root,
        plans=json.loads((root / "plans.json").read_text(encoding="utf-8")),
        dataset_json=json.loads((root / "dataset.json").read_text(encoding="utf-8")),
        configuration=configuration,
        trainer=trainer,
        parameters=parameters,
        mirror_axes=None if mirror_axes is None else tuple(int(a) for a in mirror_axes),
        info=info,
    )


def _study_image(study: Study) -> NDArray[np.float32]:
    """(2, Z, Y, X): PET SUV and CT HU, the channel order of the export."""
    if study.ct is None:
        raise ValueError(
            f"the nnU-Net model needs a CT channel but study {study.patient_id!r} has none; "
            "give --ct CT.nii.gz or a folder with a CT series"
        )
    return np.stack([study.pet, study.ct]).astype(np.float32)


def nnunet_predictor(
    model: NnunetModel, fold: int, *, use_mirroring: bool = True, device: str = "cpu"
) -> Any:
    """An ``nnUNetPredictor`` holding one fold of ``model``, initialised without nnU-Net's
    trainer lookup by name: the network comes from the trainer's
    ``build_network_architecture`` and goes to ``manual_initialization``."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans_manager = PlansManager(model.plans)
    configuration = plans_manager.get_configuration(model.configuration)
    n_inputs = determine_num_input_channels(plans_manager, configuration, model.dataset_json)
    n_outputs = plans_manager.get_label_manager(model.dataset_json).num_segmentation_heads
    network = _trainer_class(model.trainer).build_network_architecture(
        plans_manager, configuration, n_inputs, n_outputs, enable_deep_supervision=False
    )
    weights = model.parameters[fold]
    network.load_state_dict(weights)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a note about CPU devices
        predictor = nnUNetPredictor(
            tile_step_size=0.5,
            use_gaussian=True,
            use_mirroring=use_mirroring,
            perform_everything_on_device=device == "cuda",
            device=torch.device(device),
            verbose=False,
            allow_tqdm=False,
        )
    predictor.manual_initialization(
        network,
        plans_manager,
        configuration,
        [weights],
        model.dataset_json,
        model.trainer,
        model.mirror_axes,
    )
    return predictor


def predict_fold_probabilities(
    study: Study,
    model: NnunetModel,
    *,
    use_mirroring: bool = True,
    device: str = "cpu",
) -> dict[int, NDArray[np.float32]]:
    """Each fold's softmax probabilities ``(classes, Z, Y, X)`` on the study's PET grid.

    nnU-Net's own preprocessing, Gaussian sliding window (step 0.5) and, with
    ``use_mirroring``, test-time mirroring along its allowed axes; one fold at a time.
    nnU-Net's image order is SimpleITK's, which for petseg's NIfTI files is petseg's
    ``(Z, Y, X)`` with spacing ``(dz, dy, dx)``, so the study's arrays go in as they are.
    """
    image = _study_image(study)
    n_inputs = len(model.dataset_json["channel_names"])
    if n_inputs != image.shape[0]:
        raise ValueError(f"the model expects {n_inputs} input channels, petseg gives PET and CT")
    properties = {"spacing": [float(s) for s in study.geometry.spacing]}
    result = {}
    for fold in sorted(model.parameters):
        predictor = nnunet_predictor(model, fold, use_mirroring=use_mirroring, device=device)
        with _quiet_nnunet_warnings():
            _, probabilities = predictor.predict_single_npy_array(
                image.copy(), dict(properties), None, None, True
            )
        probabilities = np.asarray(probabilities, dtype=np.float32)
        if probabilities.shape[1:] != study.geometry.shape:
            raise ValueError(
                f"nnU-Net returned probabilities of shape {probabilities.shape[1:]}, expected the "
                f"PET grid {study.geometry.shape}"
            )
        result[fold] = probabilities
    return result


def predict_nnunet(
    study: Study,
    model: NnunetModel,
    *,
    use_mirroring: bool = True,
    device: str = "cpu",
    min_volume_ml: float = MIN_LESION_VOLUME_ML,
    connectivity: int = DEFAULT_CONNECTIVITY,
    body: bool = True,
) -> tuple[SegmentationResult, dict[int, NDArray[np.float32]]]:
    """Segment a study with an nnU-Net model: per-fold probabilities, petseg's mean
    ensemble and post-processing. Returns the result and the per-fold probabilities."""
    from petseg.nnunet.importer import segmentation_from_probabilities

    started = time.perf_counter()
    per_fold = predict_fold_probabilities(study, model, use_mirroring=use_mirroring, device=device)
    seconds = time.perf_counter() - started
    provenance = {
        "engine": "nnunet",
        "path": str(model.path),
        "nnunetv2_version": nnunet_version(),
        "configuration": model.configuration,
        "trainer": model.trainer,
        "plans_identifier": model.plans.get("plans_name", PLANS_IDENTIFIER),
        "folds": sorted(per_fold),
        "pet_normalisation": model.pet_normalisation,
        "test_time_mirroring": bool(use_mirroring and model.mirror_axes),
        "mirror_axes": model.mirror_axes,
        "trained_on_synthetic_data": bool(model.info.get("synthetic", False)),
        "budget": model.info.get("budget_used"),
        "inference_seconds": round(seconds, 2),
        "device": device,
    }
    result = segmentation_from_probabilities(
        study,
        [per_fold[f] for f in sorted(per_fold)],
        provenance,
        min_volume_ml=min_volume_ml,
        connectivity=connectivity,
        body=body,
    )
    return result, per_fold


def predict_nnunet_to_folder(
    study: Study,
    model_path: str | Path,
    out: str | Path,
    *,
    folds: str | Sequence[int] | None = "all",
    use_mirroring: bool = True,
    device: str = "cpu",
    save_probabilities: bool = True,
    force: bool = False,
    rtstruct: bool = True,
) -> SegmentationResult:
    """Predict one study with an nnU-Net model folder and write petseg's case folder
    (as ``petseg segment``; ``rtstruct.dcm`` for DICOM studies), plus the per-fold
    ``nnunet_fold_<k>.npz`` probabilities when ``save_probabilities``."""
    from petseg.report import write_segmentation_outputs

    model = load_nnunet_model(model_path, folds)
    result, per_fold = predict_nnunet(study, model, use_mirroring=use_mirroring, device=device)
    write_segmentation_outputs(
        out,
        study,
        result,
        force=force,
        rtstruct=rtstruct,
        extras=fold_probability_writer(per_fold) if save_probabilities else None,
    )
    return result


def predict_nnunet_dataset(
    dataset: str | Path,
    model_path: str | Path,
    out: str | Path,
    *,
    folds: str = "all",
    use_mirroring: bool = True,
    device: str = "cpu",
    save_probabilities: bool = True,
    force: bool = False,
) -> dict[str, SegmentationResult]:
    """Predict every case of a petseg dataset into ``OUT/<case_id>/`` (petseg's outputs).

    ``folds="crossval"`` predicts each case with the single fold that did not train on it
    (the work folder's ``folds.json``). With ``save_probabilities`` each case folder also gets
    ``nnunet_fold_<k>.npz`` (key ``probabilities``, (classes, Z, Y, X), as nnU-Net saves them).
    """
    from petseg.io.dataset import list_cases, read_dataset_info
    from petseg.io.nifti import read_nifti
    from petseg.nn.folds import fold_of_case
    from petseg.report import write_segmentation_outputs

    crossval = folds == "crossval"
    model = load_nnunet_model(model_path, "all" if crossval else folds)
    split: Mapping[str, Any] | None = None
    if crossval:
        folds_path = Path(model_path) / "folds.json"
        if not folds_path.is_file():
            raise FileNotFoundError(f"{folds_path} is missing; crossval needs the petseg split")
        split = json.loads(folds_path.read_text(encoding="utf-8"))
    info = read_dataset_info(dataset)
    results = {}
    for case_id in list_cases(dataset, labelled=False):
        folder = Path(dataset) / case_id
        pet, geometry = read_nifti(folder / "pet.nii.gz")
        ct = read_nifti(folder / "ct.nii.gz")[0] if (folder / "ct.nii.gz").is_file() else None
        study = Study(
            np.asarray(pet, dtype=np.float32),
            geometry,
            ct=None if ct is None else np.asarray(ct, dtype=np.float32),
            patient_id=case_id,
            study_id=case_id,
            provenance={
                "dataset": str(Path(dataset).resolve()),
                "case": case_id,
                "synthetic": bool(info.get("synthetic", False)),
            },
        )
        case_model = model
        if split is not None:
            fold = fold_of_case(split, case_id)
            case_model = dataclasses.replace(model, parameters={fold: model.parameters[fold]})
        result, per_fold = predict_nnunet(
            study, case_model, use_mirroring=use_mirroring, device=device
        )
        write_segmentation_outputs(
            Path(out) / case_id,
            study,
            result,
            force=force,
            rtstruct=False,
            extras=fold_probability_writer(per_fold) if save_probabilities else None,
        )
        results[case_id] = result
    return results


def fold_probability_writer(
    per_fold: Mapping[int, NDArray[np.float32]],
) -> Callable[[Path], list[str]]:
    """A ``write_segmentation_outputs`` extra that writes ``nnunet_fold_<k>.npz``
    (key ``probabilities``, float32, as nnU-Net writes them) into the case folder."""

    def write(folder: Path) -> list[str]:
        names = []
        for fold, probabilities in per_fold.items():
            name = f"nnunet_fold_{fold}.npz"
            np.savez_compressed(folder / name, probabilities=probabilities.astype(np.float32))
            names.append(name)
        return names

    return write
