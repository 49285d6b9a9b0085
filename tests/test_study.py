"""Study and DicomSource validation."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from petseg.study import DicomSource, Geometry, Study


def _headers(n: int) -> list[pydicom.Dataset]:
    headers = []
    for k in range(n):
        ds = pydicom.Dataset()
        ds.SOPInstanceUID = f"1.2.3.{k}"
        headers.append(ds)
    return headers


def test_dicom_source_needs_one_header_per_slice() -> None:
    grid = Geometry.from_spacing((3, 4, 5), (2.0, 1.0, 1.0))
    assert DicomSource(_headers(3), grid).first.SOPInstanceUID == "1.2.3.0"
    with pytest.raises(ValueError, match="2 instance headers for a grid of 3 slices"):
        DicomSource(_headers(2), grid)
    with pytest.raises(ValueError, match="at least one"):
        DicomSource((), grid)


def test_study_refuses_a_dicom_source_on_another_grid() -> None:
    grid = Geometry.from_spacing((3, 4, 5), (2.0, 1.0, 1.0))
    shifted = Geometry.from_spacing((3, 4, 5), (2.0, 1.0, 1.0), origin=(0.0, 0.0, 5.0))
    pet = np.ones(grid.shape, np.float32)
    assert Study(pet, grid, dicom=DicomSource(_headers(3), grid)).dicom is not None
    with pytest.raises(ValueError, match="another grid"):
        Study(pet, grid, dicom=DicomSource(_headers(3), shifted))
