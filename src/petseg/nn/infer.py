"""Inference of the built-in network: model folders and each fold's lesion probability.

For a study: PET (SUV) and CT (HU) are resampled to the plan's spacing and normalised;
each fold's network predicts softmax probabilities with MONAI's
``sliding_window_inference`` (window = the plan's ``inference_patch_size``, 50 % overlap,
Gaussian weights, σ = 1/8 of the patch as in nnU-Net), and its lesion probability is
resampled back to the PET grid (:func:`fold_probabilities`, one fold at a time). The
ensemble, decision, post-processing and uncertainty are the engines' shared
:func:`petseg.engine.ensemble_prediction`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from petseg.nn.data import preprocess, resample
from petseg.nn.plan import Plan
from petseg.study import Study

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEMO_MODEL",
    "OVERLAP",
    "LoadedModel",
    "fold_probabilities",
    "load_model",
    "parse_folds",
    "predict_probabilities",
    "study_image",
]

#: The shipped demonstration model (synthetic training data, demonstration only).
DEMO_MODEL = Path(__file__).resolve().parent.parent / "data" / "demo_model"
#: Sliding-window overlap (nnU-Net: step size 0.5 of the patch).
OVERLAP = 0.5
#: Gaussian importance map σ as a fraction of the patch (nnU-Net: 1/8).
SIGMA_SCALE = 0.125


@dataclass
class LoadedModel:
    """A model folder in memory (:func:`load_model`).

    Attributes
    ----------
    path : Path
        The model folder.
    plan : Plan
        Its ``plan.json``.
    networks : dict of int to torch.nn.Module
        One network per loaded fold, in evaluation mode.
    info : dict
        Its ``training.json`` and ``folds.json`` (keys ``training`` and ``folds``), if present.
    device : str
        The device the networks are on.
    """

    path: Path
    plan: Plan
    networks: dict[int, torch.nn.Module]
    info: dict[str, Any]
    device: str = "cpu"

    @property
    def folds(self) -> list[int]:
        """The loaded folds, ascending."""
        return sorted(self.networks)

    def split(self) -> dict[str, Any] | None:
        """The model's ``folds.json``, None if absent."""
        return self.info.get("folds")

    def select(self, folds: Sequence[int]) -> LoadedModel:
        """The same model with only ``folds`` (already loaded)."""
        networks = {f: self.networks[f] for f in folds}
        return LoadedModel(self.path, self.plan, networks, self.info, self.device)

    def provenance(self) -> dict[str, Any]:
        """What ``report.json["model"]`` records of this model."""
        training = self.info.get("training", {})
        return {
            "engine": "builtin",
            "path": str(self.path),
            "folds": self.folds,
            "plan": self.plan.to_dict(),
            "trained_on_synthetic_data": bool(training.get("synthetic", False)),
            "training_dataset": training.get("dataset"),
            "trained_with_petseg": training.get("petseg_version"),
            "device": self.device,
        }


def parse_folds(text: str | Sequence[int] | None, available: Sequence[int]) -> list[int]:
    """The folds named by ``--folds``.

    Parameters
    ----------
    text : str or sequence of int or None
        ``"all"``/None → every available fold; ``"0,2"`` → [0, 2]; or a list of folds.
    available : sequence of int
        The folds the model has; each chosen fold must be one of them.

    Returns
    -------
    list of int
    """
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

    Parameters
    ----------
    path : str or Path or None
        A folder made by ``petseg train``; None loads the shipped demonstration model.
    folds : str or sequence of int or None
        Which folds (:func:`parse_folds`).
    device : str
        ``"cpu"`` or ``"cuda"``. Float16 weights are cast back to float32.
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
    return LoadedModel(root, plan, networks, info, device)


def predict_probabilities(
    network: torch.nn.Module,
    image: NDArray[np.float32],
    plan: Plan,
    *,
    device: str = "cpu",
    overlap: float = OVERLAP,
    sw_batch_size: int = 1,
) -> NDArray[np.float32]:
    """Lesion probability (Z, Y, X) of one network on a normalised image.

    Parameters
    ----------
    network : torch.nn.Module
        One fold's network.
    image : (C, Z, Y, X) float32 ndarray
        The input on the plan's grid, normalised (:func:`petseg.nn.data.preprocess`).
    plan : Plan
        Its ``inference_patch_size`` is the sliding window.
    device : str
        ``"cpu"`` or ``"cuda"`` (mixed precision on CUDA).
    overlap : float
        Sliding-window overlap, fraction of the window.
    sw_batch_size : int
        Windows per forward pass.
    """
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


def study_image(study: Study, plan: Plan) -> NDArray[np.float32]:
    """The (C, Z, Y, X) input of a study in the plan's channel order.

    Parameters
    ----------
    study : Study
        PET in SUV (g/mL), CT in HU on the PET grid.
    plan : Plan
        Its ``channels`` ("pet", "ct") give the order.
    """
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


def fold_probabilities(
    study: Study, model: LoadedModel
) -> Iterator[tuple[int, NDArray[np.float32]]]:
    """Each loaded fold's (Z, Y, X) lesion probability on the study's PET grid, one at a time.

    Parameters
    ----------
    study : Study
        PET in SUV (g/mL) and, if the plan uses it, CT in HU on the PET grid.
    model : LoadedModel
        The folds to run, on the model's device.
    """
    image, _ = preprocess(study_image(study, model.plan), study.geometry.spacing, model.plan)
    for fold in model.folds:
        probability = predict_probabilities(
            model.networks[fold], image, model.plan, device=model.device
        )
        yield fold, resample(probability[None], study.geometry.shape)[0]
