"""Read 3D PET studies with their tumour masks for the slice builder (through ``petseg.io``).

Two layouts are recognised, case by case:

* **petseg dataset** (``docs/dataset-layout.md``): ``<case>/pet.nii.gz`` (SUV) and
  ``<case>/lesions.nii.gz`` (labels; tumour = label > 0), e.g. the phantom generator's
  output.
* **DICOM + RTSTRUCT** (e.g. the sarcoma studies in ``shared/data/sts-pet``):
  ``<case>/pet/`` (or the case folder itself) holds the PET series, read with
  :func:`petseg.io.load_study`, and ``<case>/*rtstruct*.dcm`` holds the contours,
  rasterised onto the PET grid with :func:`petseg.io.read_rtstruct` (all ROIs, or those
  named, united).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from petseg.io.dataset import LESIONS_FILE, case_pet, is_case_folder, study_folders
from petseg.study import Geometry

__all__ = ["iter_cases"]


def iter_cases(
    dataset: str | os.PathLike[str], roi: Sequence[str] | None = None
) -> Iterator[tuple[str, NDArray[np.float32], NDArray[np.bool_], Geometry]]:
    """Read every case of a dataset with its tumour mask, in folder order.

    Parameters
    ----------
    dataset : str or os.PathLike
        Folder of case folders (see the module docstring).
    roi : sequence of str, optional
        RTSTRUCT ROI names to unite into the tumour mask (default: all ROIs).

    Yields
    ------
    case_id : str
    pet : (Z, Y, X) float32 ndarray
        SUVbw in g/mL.
    mask : (Z, Y, X) bool ndarray
        Tumour voxels.
    geometry : Geometry
    """
    from petseg.io import load_study, read_nifti, read_rtstruct

    root = Path(dataset)
    if not root.is_dir():
        raise NotADirectoryError(f"dataset {root} is not a folder")
    cases = [
        p
        for p in study_folders(root)
        if is_case_folder(p) or (p / "pet").is_dir() or any(p.glob("*rtstruct*.dcm"))
    ]
    if not cases:
        raise FileNotFoundError(
            f"no case folders in {root}: expected <case>/pet.nii.gz + lesions.nii.gz "
            "(docs/dataset-layout.md) or <case>/pet/ DICOM + <case>/*rtstruct*.dcm"
        )
    for case in cases:
        pet_path = case_pet(case)
        if pet_path is not None:
            labels_path = case / LESIONS_FILE
            if not labels_path.exists():
                raise FileNotFoundError(
                    f"{labels_path} is missing: the slice methods need ground-truth lesions"
                )
            pet, geometry = read_nifti(pet_path)
            labels, label_geometry = read_nifti(labels_path)
            if not geometry.same_grid(label_geometry):
                raise ValueError(f"{labels_path} is not on the grid of {pet_path}")
            yield case.name, np.asarray(pet, np.float32), np.asarray(labels) > 0, geometry
            continue
        structures = sorted(case.glob("*rtstruct*.dcm"))
        if len(structures) != 1:
            raise FileNotFoundError(
                f"{case}: expected one *rtstruct*.dcm file with the tumour contours, "
                f"found {len(structures)}"
            )
        study = load_study(case / "pet" if (case / "pet").is_dir() else case)
        masks = read_rtstruct(structures[0], study.geometry, list(roi) if roi else None)
        if not masks:
            raise ValueError(f"{structures[0]} holds no ROI named {list(roi or [])}")
        mask = np.any(np.stack(list(masks.values())), axis=0)
        yield study.patient_id or case.name, study.pet, mask, study.geometry
