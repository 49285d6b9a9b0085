"""Inference: sliding-window Gaussian prediction, fold ensemble, Carlsen post-processing.

For a study: PET (SUV) and CT (HU) are resampled to the plan's spacing and normalised;
each fold's network predicts softmax probabilities with MONAI's
``sliding_window_inference`` (window = the plan's ``inference_patch_size``, 50 % overlap, Gaussian weights,
σ = 1/8 of the patch as in nnU-Net); the lesion probabilities of the chosen folds are
averaged (the ensemble), resampled back to the PET grid, thresholded at 0.5 (the argmax
of the averaged two-class softmax), and post-processed with
:func:`petseg.postprocess.postprocess` (outside the PET body contour removed,
components < 0.1 mL removed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from petseg.lesions import (
    DEFAULT_CONNECTIVITY,
    MIN_LESION_VOLUME_ML,
)
from petseg.nn.data import preprocess, resample
from petseg.nn.plan import Plan
from petseg.study import Study

if TYPE_CHECKING:
    import torch

    from petseg.result import SegmentationResult

__all__ = [
    "DEMO_MODEL",
    "OVERLAP",
    "LoadedModel",
    "ensemble_probabilities",
    "load_model",
    "parse_folds",
    "predict_dataset",
    "predict_probabilities",
    "predict_study",
    "predict_to_folder",
]

#: The shipped demonstration model (synthetic training data, demonstration only).
DEMO_MODEL = Path(__file__).resolve().parent.parent / "data" / "demo_model"
#: Sliding-window overlap (nnU-Net: step size 0.5 of the patch).
OVERLAP = 0.5
#: Gaussian importance map σ as a fraction of the patch (nnU-Net: 1/8).
SIGMA_SCALE = 0.125
#: Probability above which a voxel is lesion (argmax of the two-class softmax).
PROBABILITY_THRESHOLD = 0.5


@dataclass
class LoadedModel:
    """A model folder in memory: its plan and one network per loaded fold."""

    path: Path
    plan: Plan
    networks: dict[int, torch.nn.Module]
    info: dict[str, Any]


def parse_folds(text: str | Sequence[int] | None, available: Sequence[int]) -> list[int]:
    """``"all"``/None → every available fold; ``"0,2"`` → [0, 2] (each must be available)."""
    if text is None or text == "all":
        return sorted(available)
    if isinstance(text, str):
        try:
            folds = [int(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise ValueError(
                f"--folds must be 'all' or comma-separated fold numbers, got {text!r}"
            ) from None
    else:
        folds = [int(f) for f in text]
    missing = sorted(set(folds) - set(available))
    if missing or not folds:
        raise ValueError(
            f"fold(s) {missing or folds} not in the model; it has folds {sorted(available)}"
        )
    return folds


def load_model(
    path: str | Path | None = None, folds: str | Sequence[int] | None = "all", device: str = "cpu"
) -> LoadedModel:
    """Load ``plan.json`` and the ``fold_<k>/model.pt`` weights of a model folder.

    ``path`` None loads the shipped demonstration model. Float16 weights are cast back
    to float32.
    """
    import torch

    from petseg.nn.model import build_model

    root = Path(path) if path is not None else DEMO_MODEL
    plan_path = root / "plan.json"
    if not plan_path.is_file():
        raise FileNotFoundError(
            f"{plan_path} not found; --model must be a folder made by petseg train"
        )
    plan = Plan.from_dict(json.loads(plan_path.read_text(encoding="utf-8")))
    available = sorted(int(p.parent.name.split("_")[1]) for p in root.glob("fold_*/model.pt"))
    if not available:
        raise FileNotFoundError(
            f"{root} holds no finished fold (fold_<k>/model.pt); train it first"
        )
    chosen = parse_folds(folds, available)
    networks = {}
    for fold in chosen:
        blob = torch.load(root / f"fold_{fold}" / "model.pt", map_location="cpu", weights_only=True)
        net = build_model(plan)
        net.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
        )
        networks[fold] = net.to(device).eval()
    info: dict[str, Any] = {}
    for name in ("training.json", "folds.json"):
        if (root / name).is_file():
            info[name.removesuffix(".json")] = json.loads((root / name).read_text(encoding="utf-8"))
    return LoadedModel(root, plan, networks, info)


def predict_probabilities(
    network: torch.nn.Module,
    image: NDArray[np.float32],
    plan: Plan,
    *,
    device: str = "cpu",
    overlap: float = OVERLAP,
    sw_batch_size: int = 1,
) -> NDArray[np.float32]:
    """Lesion probability (Z, Y, X) of one network on a normalised (C, Z, Y, X) image."""
    import torch
    from monai.inferers import sliding_window_inference

    tensor = torch.from_numpy(np.ascontiguousarray(image))[None].to(device)
    with torch.no_grad(), torch.autocast(device_type=device, enabled=device == "cuda"):
        logits = sliding_window_inference(
            tensor,
            roi_size=plan.inference_patch_size,
            sw_batch_size=sw_batch_size,
            predictor=network,
            overlap=overlap,
            mode="gaussian",
            sigma_scale=SIGMA_SCALE,
            padding_mode="constant",
            cval=0.0,
        )
    assert isinstance(logits, torch.Tensor)
    probs = torch.softmax(logits.float(), dim=1)[0, 1]
    return probs.cpu().numpy().astype(np.float32)


def ensemble_probabilities(
    networks: Sequence[torch.nn.Module],
    image: NDArray[np.float32],
    plan: Plan,
    *,
    device: str = "cpu",
) -> tuple[NDArray[np.float32], list[NDArray[np.float32]]]:
    """Mean of the folds' lesion probabilities, and each fold's map, on the plan's grid."""
    per_fold = [predict_probabilities(n, image, plan, device=device) for n in networks]
    return np.mean(per_fold, axis=0).astype(np.float32), per_fold


def study_image(study: Study, plan: Plan) -> NDArray[np.float32]:
    """The (C, Z, Y, X) input of a study in the plan's channel order (PET SUV, CT HU)."""
    arrays = []
    for name in plan.channels:
        if name == "pet":
            arrays.append(study.pet)
        elif name == "ct":
            if study.ct is None:
                raise ValueError(
                    f"the model needs a CT (channels {list(plan.channels)}) but study "
                    f"{study.patient_id!r} has none; give --ct CT.nii.gz or a folder with a CT series"
                )
            arrays.append(study.ct)
        else:
            raise ValueError(f"unknown input channel {name!r} in the plan")
    return np.stack(arrays).astype(np.float32)


def predict_study(
    study: Study,
    model: LoadedModel,
    *,
    device: str = "cpu",
    min_volume_ml: float = MIN_LESION_VOLUME_ML,
    connectivity: int = DEFAULT_CONNECTIVITY,
    body: bool = True,
) -> tuple[SegmentationResult, NDArray[np.float32]]:
    """Segment a study with the model's folds; return the result and the (Z, Y, X)
    ensemble lesion probability on the PET grid."""
    from petseg.result import segmentation_from_mask

    t0 = time.perf_counter()
    plan = model.plan
    image, _ = preprocess(study_image(study, plan), study.geometry.spacing, plan)
    folds = sorted(model.networks)
    mean, _ = ensemble_probabilities([model.networks[f] for f in folds], image, plan, device=device)
    probability = resample(mean[None], study.geometry.shape)[0]
    mask = probability > PROBABILITY_THRESHOLD
    training = model.info.get("training", {})
    provenance = {
        "path": str(model.path),
        "folds": folds,
        "plan": plan.to_dict(),
        "trained_on_synthetic_data": bool(training.get("synthetic", False)),
        "training_dataset": training.get("dataset"),
        "trained_with_petseg": training.get("petseg_version"),
        "device": device,
    }
    result = segmentation_from_mask(
        study,
        mask,
        provenance,
        min_volume_ml=min_volume_ml,
        connectivity=connectivity,
        body=body,
        parameters={
            "probability_threshold": PROBABILITY_THRESHOLD,
            "sliding_window_overlap": OVERLAP,
            "gaussian_sigma_scale": SIGMA_SCALE,
            "ensemble": "mean of fold softmax probabilities" if len(folds) > 1 else "single fold",
        },
    )
    result.extra["model"]["inference_seconds"] = round(time.perf_counter() - t0, 2)
    return result, probability


def predict_to_folder(
    study: Study,
    model: LoadedModel,
    out: str | Path,
    *,
    force: bool = False,
    save_probabilities: bool = False,
    device: str = "cpu",
    rtstruct: bool = True,
) -> SegmentationResult:
    """Predict a study and write the same case folder as ``petseg segment``
    (plus ``probabilities.nii.gz``, the ensemble lesion probability, if asked)."""
    from petseg.io.nifti import write_nifti
    from petseg.report import write_segmentation_outputs

    result, probability = predict_study(study, model, device=device)

    def probabilities(folder: Path) -> list[str]:
        write_nifti(folder / "probabilities.nii.gz", probability, study.geometry)
        return ["probabilities.nii.gz"]

    write_segmentation_outputs(
        out,
        study,
        result,
        force=force,
        rtstruct=rtstruct,
        extras=probabilities if save_probabilities else None,
        inputs=[model.path],
    )
    return result


def predict_dataset(
    dataset: str | Path,
    model_path: str | Path | None,
    out: str | Path,
    *,
    folds: str = "all",
    force: bool = False,
    save_probabilities: bool = False,
    device: str = "cpu",
) -> dict[str, SegmentationResult]:
    """Predict every case of a dataset folder into ``OUT/<case_id>/``.

    ``folds="crossval"`` predicts each case with the single fold that did not train on
    it (the model's ``folds.json``): the cross-validation predictions.
    """
    from petseg.io import load_study
    from petseg.io.dataset import list_cases
    from petseg.nn.folds import fold_of_case

    ids = list_cases(dataset, labelled=False)
    crossval = folds == "crossval"
    model = load_model(model_path, None if crossval else folds, device=device)
    split = model.info.get("folds")
    if crossval and split is None:
        raise FileNotFoundError(f"{model.path / 'folds.json'} is missing; crossval needs the split")
    results = {}
    for case_id in ids:
        study = load_study(Path(dataset) / case_id)
        case_model = model
        if crossval:
            fold = fold_of_case(split, case_id)  # type: ignore[arg-type]
            case_model = LoadedModel(
                model.path, model.plan, {fold: model.networks[fold]}, model.info
            )
        results[case_id] = predict_to_folder(
            study,
            case_model,
            Path(out) / case_id,
            force=force,
            save_probabilities=save_probabilities,
            device=device,
            rtstruct=False,
        )
    return results
