"""Shared fixtures: a small hand-built PET study and the path to the real test data."""

from pathlib import Path

import numpy as np
import pytest

from petseg.study import Geometry, Study

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real test data not found at {SHARED_DATA} (clone with shared/ beside the repo)"
        )
    return SHARED_DATA


def make_toy_study() -> tuple[Study, dict]:
    """A 40x40x40 grid of 4 mm voxels: a cylinder 'body' at SUV 1, a liver block at SUV 6
    with a deterministic +-1 checkerboard (so its SD is known), three lesions of SUV 20, 12
    and 9, one 1-voxel hot spot, and a hot blob outside the body."""
    geometry = Geometry.from_spacing((40, 40, 40), (4.0, 4.0, 4.0))
    suv = np.zeros((40, 40, 40), np.float32)
    z, y, x = np.ogrid[:40, :40, :40]
    body = ((y - 20) ** 2 + (x - 20) ** 2) <= 14**2
    suv[np.broadcast_to(body, suv.shape)] = 1.0
    liver = (slice(5, 15), slice(12, 22), slice(8, 18))
    checker = ((z + y + x) % 2 * 2 - 1).astype(np.float32)  # +-1
    suv[liver] = 6.0 + checker[liver]
    lesions = {}
    for label, (centre, value) in enumerate(
        (((25, 20, 20), 20.0), ((30, 14, 24), 12.0), ((20, 26, 14), 9.0)), 1
    ):
        k, j, i = centre
        suv[k - 1 : k + 2, j - 1 : j + 2, i - 1 : i + 2] = value
        lesions[label] = centre
    suv[35, 20, 20] = 30.0  # single hot voxel (0.064 mL < 0.1 mL)
    suv[20, 1:4, 1:4] = 25.0  # hot blob outside the body cylinder (corner of the grid)
    study = Study(pet=suv, geometry=geometry, patient_id="toy")
    return study, {"liver_slices": liver, "lesion_centres": lesions}


@pytest.fixture
def toy_study():
    return make_toy_study()
