"""Reference VOIs and the Carlsen threshold rules, checked by hand."""

import numpy as np
import pytest

from petseg.reference import ReferenceStats, reference_stats, sphere_mask
from petseg.study import Geometry
from petseg.threshold import (
    percent_max_mask,
    reference_threshold,
    region_grow,
    threshold_mask,
)


def test_liver_and_spleen_formulas():
    stats = ReferenceStats(mean=6.0, sd=1.5, voxels=100, volume_ml=14.1)
    assert reference_threshold(stats, "liver") == pytest.approx(1.5 * 6.0 + 2 * 1.5)  # 12.0
    assert reference_threshold(stats, "spleen") == pytest.approx(0.67 * 6.0 + 2 * 1.5)  # 7.02
    with pytest.raises(ValueError, match="liver"):
        reference_threshold(stats, "kidney")


def test_a_reference_that_gives_no_positive_threshold_is_refused():
    # 1.5 * (-2) + 2 * 0.5 = -2 g/mL: every voxel would be "tumour"
    stats = ReferenceStats(mean=-2.0, sd=0.5, voxels=100, volume_ml=14.1)
    with pytest.raises(ValueError, match=r"threshold of -2 g/mL .*not a positive SUV"):
        reference_threshold(stats, "liver")
    with pytest.raises(ValueError, match="not a positive SUV"):
        reference_threshold(ReferenceStats(mean=float("nan"), sd=1, voxels=9, volume_ml=1), "liver")


def test_sphere_mask_voxel_count_matches_direct_count():
    geometry = Geometry.from_spacing((20, 20, 20), (2.0, 2.0, 2.0))
    mask = sphere_mask(geometry, (20.0, 20.0, 20.0), radius_mm=5.0)
    # voxel centres at 2 mm steps; count offsets (dx, dy, dz) in mm with |d| <= 5
    g = np.arange(-3, 4) * 2.0
    expected = ((g[:, None, None] ** 2 + g[None, :, None] ** 2 + g[None, None, :] ** 2) <= 25).sum()
    assert mask.sum() == expected == 81
    assert mask[10, 10, 10]


def test_sphere_in_voxel_units_equals_mm():
    geometry = Geometry.from_spacing((20, 20, 20), (3.0, 2.0, 2.0), origin=(-5.0, 7.0, 100.0))
    centre_index = (10, 8, 9)
    centre_mm = tuple(geometry.index_to_patient(centre_index))
    a = sphere_mask(geometry, centre_mm, 6.0, units="mm")
    b = sphere_mask(geometry, centre_index, 6.0, units="voxel")
    assert np.array_equal(a, b)


def test_sphere_outside_image_is_refused():
    geometry = Geometry.from_spacing((10, 10, 10), (2.0, 2.0, 2.0))
    with pytest.raises(ValueError, match="outside the image"):
        sphere_mask(geometry, (500.0, 0.0, 0.0), 15.0)


def test_reference_stats_sample_sd():
    geometry = Geometry.from_spacing((1, 1, 12), (1.0, 1.0, 1.0))
    suv = np.arange(12, dtype=np.float32).reshape(1, 1, 12)
    mask = np.ones_like(suv, bool)
    stats = reference_stats(suv, mask, geometry)
    assert stats.mean == pytest.approx(5.5)
    assert stats.sd == pytest.approx(np.std(np.arange(12), ddof=1))  # 3.6056
    assert stats.volume_ml == pytest.approx(0.012)


def test_reference_outside_body_and_too_small():
    geometry = Geometry.from_spacing((1, 1, 12), (1.0, 1.0, 1.0))
    suv = np.ones((1, 1, 12), np.float32)
    mask = np.ones_like(suv, bool)
    body = np.zeros_like(mask)
    with pytest.raises(ValueError, match="outside the body"):
        reference_stats(suv, mask, geometry, body=body)
    with pytest.raises(ValueError, match="at least 10"):
        reference_stats(suv, mask & (np.arange(12) < 3), geometry)


def test_threshold_is_strict():
    suv = np.array([[[1.0, 2.0, 3.0]]])
    assert threshold_mask(suv, 2.0).tolist() == [[[False, False, True]]]


def test_percent_max_is_per_lesion():
    suv = np.zeros((1, 1, 12), np.float32)
    suv[0, 0, 0:4] = [3.0, 10.0, 5.0, 4.0]  # lesion A, max 10 -> cut 4.0 keeps 10, 5
    suv[0, 0, 6:9] = [2.5, 5.0, 2.5]  # lesion B, max 5 -> cut 2.0 keeps all three
    out = percent_max_mask(suv, suv > 2.0, 0.4)
    assert np.flatnonzero(out[0, 0]).tolist() == [1, 2, 6, 7, 8]


def test_region_grow_from_seed():
    suv = np.zeros((1, 1, 10), np.float32)
    suv[0, 0, 1:4] = 5.0
    suv[0, 0, 6:8] = 5.0
    grown = region_grow(suv, (0, 0, 2), threshold=1.0)
    assert np.flatnonzero(grown[0, 0]).tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="not above the threshold"):
        region_grow(suv, (0, 0, 5), threshold=1.0)
    with pytest.raises(ValueError, match="outside the image"):
        region_grow(suv, (0, 0, 10), threshold=1.0)


def test_sphere_kernel_is_the_sphere_mask_at_a_voxel_centre():
    from petseg.reference import sphere_kernel

    geometry = Geometry.from_spacing((30, 30, 30), (3.0, 2.0, 2.5))
    kernel = sphere_kernel(geometry, 9.0)
    a, b, c = (n // 2 for n in kernel.shape)
    mask = sphere_mask(geometry, (15, 14, 13), 9.0, units="voxel")
    placed = np.zeros_like(mask)
    placed[15 - a : 15 + a + 1, 14 - b : 14 + b + 1, 13 - c : 13 + c + 1] = kernel
    assert kernel.shape == (7, 11, 9)  # ceil(9/3), ceil(9/2), ceil(9/2.5) voxels each side
    assert np.array_equal(placed, mask)
    with pytest.raises(ValueError, match="positive"):
        sphere_kernel(geometry, 0.0)
