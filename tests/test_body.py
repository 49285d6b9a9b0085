"""Body contour: the cc3d slice fill and shifted-copy dilation against scipy's operations.

Equivalence criterion: the mask is identical voxel for voxel to the scipy formulation
(Gaussian smoothing, threshold, largest 26-connected component, ``binary_fill_holes`` on
every axial slice then in 3D, ``binary_dilation`` by the ellipsoid), on hand-made masks,
on phantoms (4 mm and an anisotropic 5 x 4 x 3 mm grid) and on real sarcoma PET studies.
"""

import numpy as np
import pytest
from scipy import ndimage

from petseg.body import (
    BODY_MARGIN_MM,
    BODY_SMOOTHING_FWHM_MM,
    BODY_THRESHOLD_SUV,
    body_mask,
    dilate_ellipsoid,
    fill_holes_by_slice,
)
from petseg.phantom import generate_study
from petseg.study import Geometry

STUDIES = ("STS_001", "STS_004", "STS_007", "STS_013", "STS_020", "STS_046")


def scipy_body_mask(suv: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """The body contour written with scipy.ndimage operations only."""
    step = np.asarray(spacing)
    sigma = BODY_SMOOTHING_FWHM_MM / (2.0 * np.sqrt(2.0 * np.log(2.0))) / step
    above = ndimage.gaussian_filter(suv.astype(np.float32), sigma=sigma) > BODY_THRESHOLD_SUV
    labels, _ = ndimage.label(above, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == np.argmax(sizes)
    for k in range(body.shape[0]):
        body[k] = ndimage.binary_fill_holes(body[k])
    body = ndimage.binary_fill_holes(body)
    radius = np.round(BODY_MARGIN_MM / step).astype(int)
    grids = np.ogrid[tuple(slice(-r, r + 1) for r in radius)]
    ball = sum((g * s / BODY_MARGIN_MM) ** 2 for g, s in zip(grids, step, strict=True)) <= 1
    return ndimage.binary_dilation(body, structure=ball)


def test_fill_holes_by_slice_fills_a_ring_not_a_notch():
    mask = np.zeros((2, 7, 7), bool)
    mask[0, 1:6, 1:6] = True
    mask[0, 3, 3] = False  # enclosed hole: filled
    mask[1, 1:6, 1:6] = True
    mask[1, 3, 0:4] = False  # notch open to the border: kept open
    filled = fill_holes_by_slice(mask)
    assert filled[0, 3, 3]
    assert not filled[1, 3, 0:4].any()
    assert filled.sum() == 25 + 25 - 3  # the notch's voxels 1..3 inside the square stay out


def test_fill_holes_by_slice_diagonal_gap_is_not_a_border_path():
    # background touching the border only diagonally is a hole under 4-connectivity
    mask = np.ones((1, 3, 3), bool)
    mask[0, 1, 1] = False
    mask[0, 0, 0] = False
    filled = fill_holes_by_slice(mask)
    assert filled[0, 1, 1] and not filled[0, 0, 0]
    assert np.array_equal(filled[0], ndimage.binary_fill_holes(mask[0]))


def test_dilate_ellipsoid_by_hand():
    # spacing (3, 2, 2) mm, margin 4 mm. In the plane (dk = 0): 4·(dj² + di²) <= 16, i.e.
    # dj² + di² <= 4: 13 offsets. In each neighbouring plane (dk = ±1, 3 mm):
    # 9 + 4·(dj² + di²) <= 16, i.e. dj² + di² <= 1.75: 5 offsets.
    mask = np.zeros((5, 7, 7), bool)
    mask[2, 3, 3] = True
    dilated = dilate_ellipsoid(mask, np.array([3.0, 2.0, 2.0]), 4.0)
    assert dilated.sum() == 13 + 2 * 5
    assert dilated[1, 3, 3] and dilated[3, 3, 4] and not dilated[1, 4, 4]
    assert dilated[2, 1, 3] and dilated[2, 4, 4] and not dilated[2, 1, 4]


def test_dilate_ellipsoid_at_the_array_edge_matches_scipy():
    rng = np.random.default_rng(0)
    mask = rng.random((9, 11, 13)) > 0.93
    spacing = np.array([1.9, 2.0, 3.0])
    radius = np.round(4.0 / spacing).astype(int)
    grids = np.ogrid[tuple(slice(-r, r + 1) for r in radius)]
    ball = sum((g * s / 4.0) ** 2 for g, s in zip(grids, spacing, strict=True)) <= 1
    expected = ndimage.binary_dilation(mask, structure=ball)
    assert np.array_equal(dilate_ellipsoid(mask, spacing, 4.0), expected)


@pytest.mark.parametrize(("seed", "spacing"), [(5, (4.0, 4.0, 4.0)), (8, (5.0, 4.0, 3.0))])
def test_body_mask_equals_scipy_on_phantoms(seed, spacing):
    case = generate_study(seed, spacing=spacing)
    suv = case.study.pet
    body = body_mask(suv, case.study.geometry)
    assert np.array_equal(body, scipy_body_mask(suv, spacing))
    assert 0 < body.mean() < 1


@pytest.mark.parametrize("name", STUDIES)
def test_body_mask_equals_scipy_on_sarcoma_studies(sts_study, name: str):
    from petseg.io import load_study

    study = load_study(sts_study(name))
    geometry: Geometry = study.geometry
    body = body_mask(study.pet, geometry)
    assert np.array_equal(body, scipy_body_mask(study.pet, geometry.spacing))
    assert body.any()
