"""A tiny case folder in the layout of `petseg segment` outputs, with hand-countable lesions.

Grid (Z, Y, X) = (20, 32, 32), spacing (3, 2, 2) mm, so one voxel is 12 mm³ = 0.012 mL.
PET (SUV g/mL): background 1.0, a "liver" slab at 2.0, and three cubes of constant SUV:

* lesion A, label 1: k 4:7,  j 8:11,  i 8:11  -> 27 voxels, SUV 8   (true lesion)
* lesion B, label 2: k 12:15, j 20:23, i 20:23 -> 27 voxels, SUV 6   (false positive)
* lesion C, no label: k 12:16, j 8:11, i 22:24 -> 4·3·2 = 24 voxels, SUV 5 (missed)

The report's liver reference is mean 2.0, SD 0.25, so the liver threshold is
1.5·2.0 + 2·0.25 = 3.5 SUV (Carlsen 2022): growing from a seed in C takes exactly C's
24 voxels (0.288 mL, SUVmean 5, SUVmax 5).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from petseg.io.nifti import write_nifti
from petseg.lesions import patient_stats, quantify_lesions
from petseg.study import Geometry

SHAPE = (20, 32, 32)
SPACING = (3.0, 2.0, 2.0)
LESION_A = (slice(4, 7), slice(8, 11), slice(8, 11))
LESION_B = (slice(12, 15), slice(20, 23), slice(20, 23))
LESION_C = (slice(12, 16), slice(8, 11), slice(22, 24))
SEED_C = (13, 9, 22)


def make_case(folder: Path, *, with_ct: bool = True) -> Path:
    geometry = Geometry.from_spacing(SHAPE, SPACING, origin=(-31.0, -31.0, 0.0))
    suv = np.ones(SHAPE, dtype=np.float32)
    suv[:, 24:30, 2:12] = 2.0  # "liver"
    suv[LESION_A] = 8.0
    suv[LESION_B] = 6.0
    suv[LESION_C] = 5.0
    labels = np.zeros(SHAPE, dtype=np.int32)
    labels[LESION_A] = 1
    labels[LESION_B] = 2
    folder.mkdir(parents=True)
    write_nifti(folder / "pet_suv.nii.gz", suv, geometry)
    write_nifti(folder / "lesions.nii.gz", labels, geometry)
    if with_ct:
        ct = np.full(SHAPE, 40.0, dtype=np.float32)
        ct[:, :, :3] = -1000.0
        write_nifti(folder / "ct.nii.gz", ct, geometry)
    stats = quantify_lesions(suv, labels, geometry)
    report = {
        "petseg_version": "test",
        "created_utc": "2024-01-01T00:00:00+00:00",
        "patient_id": folder.name,
        "study_id": "",
        "synthetic": True,
        "method": "liver",
        "inputs": {"pet": str(folder / "pet_suv.nii.gz")},
        "parameters": {"method": "liver", "connectivity": 26, "min_volume_ml": 0.1},
        "geometry": geometry.to_dict(),
        "reference": {
            "organ": "liver",
            "mean": 2.0,
            "sd": 0.25,
            "voxels": 100,
            "volume_ml": 1.2,
            "description": "test",
        },
        "threshold_suv": 3.5,
        "patient": patient_stats(stats).to_dict(),
        "lesions": [s.to_dict() for s in stats],
    }
    (folder / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return folder


def add_removed_uptake(folder: Path) -> None:
    """Make lesion C a component removed as kidney uptake (``removed.nii.gz`` label 1 and
    its row in ``report.json["organs"]["removed"]``), as an organ map would have."""
    geometry = Geometry.from_spacing(SHAPE, SPACING, origin=(-31.0, -31.0, 0.0))
    removed = np.zeros(SHAPE, np.int32)
    removed[LESION_C] = 1
    write_nifti(folder / "removed.nii.gz", removed, geometry)
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    report["organs"] = {
        "removed": [
            {
                "label": 1,
                "organ": "kidneys",
                "rule": "inside",
                "voxels": 24,
                "volume_ml": 24 * 0.012,
                "suv_max": 5.0,
                "suv_mean": 5.0,
            }
        ]
    }
    (folder / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")


@pytest.fixture
def case_dir(tmp_path: Path) -> Path:
    return make_case(tmp_path / "case01")


@pytest.fixture
def cohort_dir(tmp_path: Path) -> Path:
    root = tmp_path / "cohort"
    make_case(root / "case01")
    make_case(root / "case02", with_ct=False)
    return root
