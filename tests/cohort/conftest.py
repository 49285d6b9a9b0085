"""Tiny NIfTI cohorts whose lesion numbers can be computed by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from petseg.io.nifti import write_nifti
from petseg.study import Geometry

#: 16×24×24 voxels of 4 mm: one voxel is 0.064 mL.
GEOMETRY = Geometry.from_spacing((16, 24, 24), (4.0, 4.0, 4.0))
VOXEL_ML = 0.064
#: Voxels whose index offset (dk, dj, di) from a centre has dk²+dj²+di² <= 2: the centre,
#: its 6 face and 12 edge neighbours = 19 voxels (1.216 mL).
LESION_VOXELS = 19


def case_pet(case: int) -> np.ndarray:
    """Background SUV 1.0 (noise SD 0.1, seeded by the case) and ``case % 3 + 1`` lesions;
    lesion s (0-based) is a 19-voxel ball of SUV ``6 + s`` centred at (4+4s, 6+5s, 12)."""
    rng = np.random.default_rng(case)
    pet = (1.0 + 0.1 * rng.standard_normal(GEOMETRY.shape)).astype(np.float32)
    k, j, i = np.indices(GEOMETRY.shape)
    for s in range(case % 3 + 1):
        ball = (k - (4 + 4 * s)) ** 2 + (j - (6 + 5 * s)) ** 2 + (i - 12) ** 2 <= 2
        pet[ball] = 6.0 + s
    return pet


def expected_row(case: int) -> dict[str, float]:
    """Hand-computed measures of :func:`case_pet` with a fixed threshold of 4 g/mL (the
    background never reaches 4: it would be a 30 SD excursion)."""
    n = case % 3 + 1
    return {
        "lesion_count": n,
        "total_tumour_volume_ml": n * LESION_VOXELS * VOXEL_ML,
        "lowest_lesion_suv_mean": 6.0,
        "highest_suv_max": 6.0 + n - 1,
        "total_tlg_g": sum((6.0 + s) * LESION_VOXELS * VOXEL_ML for s in range(n)),
    }


def write_cohort(root: Path, n: int, broken: tuple[int, ...] = ()) -> Path:
    """Write ``root/case_000 ...`` NIfTI case folders; ``broken`` cases get an all-zero PET."""
    for case in range(n):
        folder = root / f"case_{case:03d}"
        folder.mkdir(parents=True)
        pet = np.zeros(GEOMETRY.shape, np.float32) if case in broken else case_pet(case)
        write_nifti(folder / "pet.nii.gz", pet, GEOMETRY)
    (root / "dataset.json").write_text("{}\n", encoding="utf-8")
    return root


@pytest.fixture
def make_cohort():  # type: ignore[no-untyped-def]
    """:func:`write_cohort`."""
    return write_cohort


@pytest.fixture
def phantom_pet():  # type: ignore[no-untyped-def]
    """:func:`case_pet`."""
    return case_pet


@pytest.fixture
def expected():  # type: ignore[no-untyped-def]
    """:func:`expected_row`."""
    return expected_row
