"""A tiny hand-made PET/CT cohort in the dataset layout (docs/dataset-layout.md).

Each case: a 24×32×32 grid of 4 mm voxels; an ellipsoidal body (SUV 1.0 g/mL, CT 0 HU)
in air (SUV 0, CT −1000 HU); positive cases carry one or two hot spheres (SUV 8 g/mL,
radius 8–12 mm) that are the lesion labels. Noise is seeded per case.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from petseg.study import Geometry

SHAPE = (24, 32, 32)
SPACING = (4.0, 4.0, 4.0)


def make_case(seed: int, negative: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, Geometry]:
    rng = np.random.default_rng(seed)
    geometry = Geometry.from_spacing(SHAPE, SPACING, origin=(-62.0, -62.0, -46.0))
    k, j, i = np.indices(SHAPE, dtype=np.float64)
    body = ((k - 11.5) / 11) ** 2 + ((j - 15.5) / 11) ** 2 + ((i - 15.5) / 14) ** 2 <= 1
    pet = np.where(body, 1.0, 0.0) + rng.normal(0, 0.05, SHAPE) * body
    ct = np.where(body, 0.0, -1000.0) + rng.normal(0, 10, SHAPE)
    lesions = np.zeros(SHAPE, dtype=np.int16)
    if not negative:
        for n in range(1 + seed % 2):
            centre = np.array([8 + 8 * n, 12 + rng.integers(0, 8), 12 + rng.integers(0, 8)])
            radius_vox = rng.uniform(2.0, 3.0)
            ball = (
                (k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2
            ) <= radius_vox**2
            lesions[ball & body] = n + 1
            pet[ball & body] = 8.0 + rng.normal(0, 0.3, int((ball & body).sum()))
    return pet.astype(np.float32), ct.astype(np.float32), lesions, geometry


def write_cohort(root: Path, n: int, negatives: int, seed0: int = 0) -> Path:
    from petseg.io.nifti import write_nifti

    root.mkdir(parents=True)
    ids = []
    for c in range(n):
        case_id = f"case_{c:03d}"
        pet, ct, lesions, geometry = make_case(seed0 + c, negative=c >= n - negatives)
        folder = root / case_id
        write_nifti(folder / "pet.nii.gz", pet, geometry)
        write_nifti(folder / "ct.nii.gz", ct, geometry)
        write_nifti(folder / "lesions.nii.gz", lesions, geometry)
        ids.append(case_id)
    (root / "dataset.json").write_text(
        json.dumps({"name": "tiny", "synthetic": True, "cases": ids}), encoding="utf-8"
    )
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six cases, the last one a negative control."""
    return write_cohort(tmp_path_factory.mktemp("nn") / "dataset", n=6, negatives=1)
