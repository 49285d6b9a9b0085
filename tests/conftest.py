"""Shared fixtures: a small hand-built PET study and the real test data.

Real data come from two places. ``tests/data/real`` is the subset kept in the repository
(three sarcoma studies, the SUV header cases, the BQML slices, the TotalSegmentator CT
organs): tests that use it fail when it is missing. ``../shared/data`` beside the
repository holds the full collections (34 sarcoma studies, the DOTATATE SPECT, which may
not be copied into the repository): tests over those skip without it. The environment
variable ``PETSEG_SHARED_DATA`` points the second place elsewhere, e.g. at a missing
folder to run the suite as on a fresh clone.
"""

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from petseg.study import Geometry, Study

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO / "tests" / "data" / "real"
SHARED_DATA = Path(os.environ.get("PETSEG_SHARED_DATA") or REPO.parent / "shared" / "data")
#: The sarcoma studies of tests/data/real/sts-pet: HFS with CT, FFS, HFS.
SUBSET_STUDIES = ("STS_002", "STS_004", "STS_019")


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real data subset in the repository; the test fails when it is missing."""
    if not (REAL_DATA / "README.md").is_file():
        pytest.fail(
            f"real test data subset missing at {REAL_DATA}: restore it with "
            "`git checkout -- tests/data/real`"
        )
    return REAL_DATA


@pytest.fixture
def shared_data() -> Path:
    """The full data collections beside the repository; the test skips without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real test data not found at {SHARED_DATA} (clone with shared/ beside the repo)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def sts_study(real_data: Path) -> Callable[[str], Path]:
    """Folder of one sarcoma study by patient ID: from the repository subset when it
    holds the patient, else from ``../shared/data/sts-pet`` (skipped when absent)."""

    def folder(patient: str) -> Path:
        if patient in SUBSET_STUDIES:
            return real_data / "sts-pet" / patient
        shared = SHARED_DATA / "sts-pet" / patient
        if not shared.is_dir():
            pytest.skip(f"{patient} is not in the repository subset and {shared} is missing")
        return shared

    return folder


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests taking ``sts_patient`` run once per sarcoma study at hand: the repository
    subset always, the rest of the 34-patient cohort when ``../shared/data`` holds it."""
    if "sts_patient" in metafunc.fixturenames:
        cohort = {p.name for p in (SHARED_DATA / "sts-pet").glob("STS_*")}
        metafunc.parametrize("sts_patient", sorted(cohort | set(SUBSET_STUDIES)))


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
