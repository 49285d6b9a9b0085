"""Loading a trained nnU-Net model folder (petseg's work folder or a bare results folder)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from petseg.nnunet.environment import WORK_FILE, quiet_nnunet_warnings, require_nnunet

__all__ = ["NnunetModel", "find_model_folder", "load_nnunet_model"]


@dataclass
class NnunetModel:
    """A trained nnU-Net model folder in memory: plans, one weight set per fold, provenance.

    Attributes
    ----------
    path : Path
        The nnU-Net results folder (``<Trainer>__<Plans>__<configuration>``).
    plans : dict
        Its ``plans.json``.
    dataset_json : dict
        Its ``dataset.json`` (petseg's export records the PET normalisation there).
    configuration : str
        The trained configuration ("3d_fullres", ...).
    trainer : str
        The trainer class name.
    parameters : dict of int to dict
        Network weights per loaded fold.
    mirror_axes : tuple of int or None
        Axes nnU-Net allows for test-time mirroring.
    info : dict
        The work folder's ``petseg_nnunet.json`` (empty for a bare results folder).
    work : Path or None
        The petseg work folder it came from (None for a bare results folder).
    device : str
        Where prediction runs ("cpu" or "cuda").
    """

    path: Path
    plans: dict[str, Any]
    dataset_json: dict[str, Any]
    configuration: str
    trainer: str
    parameters: dict[int, dict[str, Any]]
    mirror_axes: tuple[int, ...] | None
    info: dict[str, Any]
    work: Path | None = None
    device: str = "cpu"

    @property
    def pet_normalisation(self) -> str | None:
        """The PET channel's normalisation recorded by the export, if any."""
        value = self.dataset_json.get("petseg", {}).get("pet_normalisation")
        return None if value is None else str(value)

    @property
    def folds(self) -> list[int]:
        """The loaded folds, ascending."""
        return sorted(self.parameters)

    def split(self) -> dict[str, Any] | None:
        """The work folder's ``folds.json`` (petseg's split), None if absent."""
        path = None if self.work is None else self.work / "folds.json"
        if path is None or not path.is_file():
            return None
        return dict(json.loads(path.read_text(encoding="utf-8")))

    def select(self, folds: Sequence[int]) -> NnunetModel:
        """The same model with only ``folds`` (already loaded)."""
        return dataclasses.replace(self, parameters={f: self.parameters[f] for f in folds})


def find_model_folder(path: Path) -> Path:
    """The results folder of a model path.

    Parameters
    ----------
    path : Path
        An nnU-Net results folder (returned as it is) or a petseg work folder (its
        ``petseg_nnunet.json`` names the results folder).
    """
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


def load_nnunet_model(
    path: str | Path, folds: str | Sequence[int] | None = "all", *, device: str = "cpu"
) -> NnunetModel:
    """Load ``plans.json``, ``dataset.json`` and ``fold_<k>/checkpoint_final.pth`` weights.

    Parameters
    ----------
    path : str or Path
        A petseg nnU-Net work folder or an nnU-Net results folder
        (``<Trainer>__<Plans>__<configuration>``), including one trained elsewhere.
    folds : str or sequence of int or None
        ``"all"``/None, ``"0,2"`` or a list of folds.
    device : str
        Where prediction runs ("cpu" or "cuda").
    """
    require_nnunet()
    import torch

    from petseg.nn.infer import parse_folds

    work = Path(path)
    root = find_model_folder(work)
    available = sorted(
        int(p.parent.name.split("_")[1])
        for p in root.glob("fold_*/checkpoint_final.pth")
        if p.parent.name.split("_")[1].isdigit()
    )
    if not available:
        raise FileNotFoundError(f"{root} holds no finished fold (fold_<k>/checkpoint_final.pth)")
    parameters: dict[int, dict[str, Any]] = {}
    checkpoint: dict[str, Any] = {}
    for fold in parse_folds(folds, available):
        # nnU-Net checkpoints hold plain Python objects beside tensors; weights_only=False is
        # nnU-Net's own way of loading them. Load only models you trust.
        with quiet_nnunet_warnings():
            checkpoint = torch.load(
                root / f"fold_{fold}" / "checkpoint_final.pth",
                map_location="cpu",
                weights_only=False,
            )
        parameters[fold] = checkpoint["network_weights"]
    mirror_axes = checkpoint.get("inference_allowed_mirroring_axes")
    is_work = (work / WORK_FILE).is_file()
    return NnunetModel(
        path=root,
        plans=json.loads((root / "plans.json").read_text(encoding="utf-8")),
        dataset_json=json.loads((root / "dataset.json").read_text(encoding="utf-8")),
        configuration=checkpoint["init_args"]["configuration"],
        trainer=checkpoint["trainer_name"],
        parameters=parameters,
        mirror_axes=None if mirror_axes is None else tuple(int(a) for a in mirror_axes),
        info=json.loads((work / WORK_FILE).read_text(encoding="utf-8")) if is_work else {},
        work=work if is_work else None,
        device=device,
    )
