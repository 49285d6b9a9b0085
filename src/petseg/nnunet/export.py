"""A petseg dataset in nnU-Net v2's raw format.

``export_dataset`` writes ``RAW/Dataset<ID>_<NAME>/``::

    imagesTr/<case>_0000.nii.gz   PET, SUVbw in g/mL (float32)
    imagesTr/<case>_0001.nii.gz   CT in HU on the PET grid
    labelsTr/<case>.nii.gz        lesions: 0 background, 1 lesion (uint8)
    dataset.json                  channel_names, labels, numTraining, file_ending, and a
                                  "petseg" block (version, source, normalisation, cases)

The PET channel's normalisation is chosen by its channel name, because that is how nnU-Net
chooses (``nnunetv2.preprocessing.normalization.map_channel_name_to_normalization``):

``"zscore"`` (channel name ``"PET"``)
    nnU-Net's default for non-CT channels: per case, subtract the mean and divide by the
    standard deviation. SUV differences between patients are normalised away.
``"ct"`` (channel name ``"CT"``)
    nnU-Net's CT scheme: clip to the 0.5–99.5 percentiles of the foreground (lesion)
    intensities of the whole training set, then subtract that set's foreground mean and
    divide by its SD. One dataset-wide linear map, so SUV stays comparable across patients.

Both are offered because nnU-Net's users disagree about which suits PET; the choice is
recorded in ``dataset.json`` (``petseg.pet_normalisation``) and in every model's provenance.
The CT channel is always named ``"CT"``.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from petseg import __version__

__all__ = [
    "CHANNEL_FILES",
    "PET_NORMALISATIONS",
    "dataset_folder_name",
    "export_dataset",
    "nnunet_dataset_json",
]

#: PET normalisation choice → nnU-Net channel name of the PET channel.
PET_NORMALISATIONS = {"zscore": "PET", "ct": "CT"}
#: nnU-Net channel index → petseg case file.
CHANNEL_FILES = {0: "pet.nii.gz", 1: "ct.nii.gz"}
LABELS = {"background": 0, "lesion": 1}
FILE_ENDING = ".nii.gz"
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def check_pet_normalisation(choice: str) -> str:
    """Return ``choice`` if it is a key of :data:`PET_NORMALISATIONS`, else raise."""
    if choice not in PET_NORMALISATIONS:
        raise ValueError(
            f"PET normalisation must be one of {sorted(PET_NORMALISATIONS)}, got {choice!r} "
            "(zscore: per-case z-score, nnU-Net's default; ct: dataset-wide clipping and scaling)"
        )
    return choice


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """nnU-Net's folder name ``Dataset<ID:03d>_<NAME>``.

    Parameters
    ----------
    dataset_id : int
        nnU-Net dataset id, 1–999.
    name : str
        Dataset name: letters, digits, ``_`` and ``-`` only.

    Returns
    -------
    str
        ``Dataset501_NEN`` for ``(501, "NEN")``.

    Raises
    ------
    ValueError
        The id is out of range or the name holds another character.
    """
    if not 1 <= int(dataset_id) <= 999:
        raise ValueError(f"nnU-Net dataset id must be 1..999, got {dataset_id}")
    if not _NAME.match(name):
        raise ValueError(f"nnU-Net dataset name must use letters, digits, '_' or '-', got {name!r}")
    return f"Dataset{int(dataset_id):03d}_{name}"


def nnunet_dataset_json(
    n_training: int, pet_normalisation: str, petseg_block: dict[str, Any]
) -> dict[str, Any]:
    """The ``dataset.json`` content (nnU-Net's required keys plus a ``petseg`` block).

    Parameters
    ----------
    n_training : int
        Number of training cases (``numTraining``).
    pet_normalisation : str
        ``"zscore"`` or ``"ct"``: names the PET channel (:data:`PET_NORMALISATIONS`).
    petseg_block : dict
        JSON-ready provenance stored under ``petseg`` after ``pet_normalisation``.

    Returns
    -------
    dict
        JSON-ready content of ``dataset.json``.
    """
    check_pet_normalisation(pet_normalisation)
    return {
        "channel_names": {"0": PET_NORMALISATIONS[pet_normalisation], "1": "CT"},
        "labels": dict(LABELS),
        "numTraining": int(n_training),
        "file_ending": FILE_ENDING,
        "petseg": {"pet_normalisation": pet_normalisation, **petseg_block},
    }


def export_dataset(
    dataset: str | Path,
    raw: str | Path,
    *,
    dataset_id: int = 501,
    name: str = "NEN",
    pet_normalisation: str = "zscore",
    force: bool = False,
) -> Path:
    """Write a petseg dataset folder (``docs/dataset-layout.md``) in nnU-Net v2 raw format.

    Parameters
    ----------
    dataset : path
        petseg dataset folder; every case needs pet.nii.gz, ct.nii.gz, lesions.nii.gz.
    raw : path
        nnU-Net raw folder (``nnUNet_raw``); the dataset goes to ``raw/Dataset<ID>_<NAME>``.
    dataset_id : int
        nnU-Net dataset id (1–999).
    name : str
        nnU-Net dataset name (letters, digits, ``_``, ``-``).
    pet_normalisation : str
        ``"zscore"`` or ``"ct"`` (see the module docstring).
    force : bool
        Replace an existing ``Dataset<ID>_<NAME>`` folder.

    Returns
    -------
    Path
        The written ``Dataset<ID>_<NAME>`` folder (written atomically; inputs untouched).
    """
    from petseg.io.atomic import atomic_dir
    from petseg.io.dataset import list_cases, read_dataset_info
    from petseg.io.nifti import read_nifti, write_nifti

    check_pet_normalisation(pet_normalisation)
    folder_name = dataset_folder_name(dataset_id, name)
    existing = (
        sorted(Path(raw).glob(f"Dataset{int(dataset_id):03d}_*")) if Path(raw).is_dir() else []
    )
    clash = [p for p in existing if p.name != folder_name]
    if clash:
        raise FileExistsError(
            f"{clash[0]} already uses nnU-Net dataset id {dataset_id}; choose another --id"
        )
    info = read_dataset_info(dataset)
    cases = list_cases(dataset, labelled=True)
    lesion_cases = []
    with atomic_dir(Path(raw) / folder_name, force=force, inputs=[dataset]) as tmp:
        (tmp / "imagesTr").mkdir()
        (tmp / "labelsTr").mkdir()
        for case_id in cases:
            source = Path(dataset) / case_id
            pet, geometry = read_nifti(source / CHANNEL_FILES[0])
            ct_path = source / CHANNEL_FILES[1]
            if not ct_path.is_file():
                raise FileNotFoundError(
                    f"{ct_path} is missing; nnU-Net export needs PET and CT for every case"
                )
            ct, ct_geometry = read_nifti(ct_path)
            labels, label_geometry = read_nifti(source / "lesions.nii.gz")
            for path, grid in ((ct_path, ct_geometry), (source / "lesions.nii.gz", label_geometry)):
                if not geometry.same_grid(grid):
                    raise ValueError(
                        f"{path} is not on the PET grid of {source / CHANNEL_FILES[0]}; "
                        "resample it onto the PET grid first"
                    )
            label = (np.asarray(labels) > 0).astype(np.uint8)
            if label.any():
                lesion_cases.append(case_id)
            write_nifti(tmp / "imagesTr" / f"{case_id}_0000{FILE_ENDING}", pet, geometry)
            write_nifti(tmp / "imagesTr" / f"{case_id}_0001{FILE_ENDING}", ct, geometry)
            write_nifti(tmp / "labelsTr" / f"{case_id}{FILE_ENDING}", label, geometry)
        block = {
            "petseg_version": __version__,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "source_dataset": str(Path(dataset).resolve()),
            "synthetic": bool(info.get("synthetic", False)),
            "cases": cases,
            "negative_controls": sorted(set(cases) - set(lesion_cases)),
            "patient_of": info.get("patient_of", {}),
            "channels": {"0": "PET SUVbw g/mL", "1": "CT HU"},
        }
        content = nnunet_dataset_json(len(cases), pet_normalisation, block)
        (tmp / "dataset.json").write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    return Path(raw) / folder_name
