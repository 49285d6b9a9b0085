"""Placement of the reference sphere in an organ mask: statistics, fixed point, refusals."""

import numpy as np
import pytest
from scipy import ndimage

from petseg.autoref.place import (
    LESION_MARGIN_MM,
    ORGAN_MARGIN_MM,
    NoPositionError,
    place_in_organ,
    sphere_statistics,
)
from petseg.reference import reference_stats, sphere_kernel, sphere_mask
from petseg.study import Geometry

SPACING = (4.0, 4.0, 4.0)


def checker(shape, amplitude=1.0):
    z, y, x = np.indices(shape)
    return ((z + y + x) % 2 * 2 - 1).astype(np.float32) * amplitude


def organ_study(shape=(40, 40, 40), box=(slice(2, 38), slice(4, 36), slice(4, 36))):
    """A 4 mm grid with an organ block at SUV 6 ± 1 (checkerboard) in background SUV 1."""
    geometry = Geometry.from_spacing(shape, SPACING, origin=(-80.0, -80.0, -80.0))
    suv = np.ones(shape, np.float32)
    organ = np.zeros(shape, bool)
    organ[box] = True
    suv[organ] = 6.0 + checker(shape)[organ]
    return geometry, suv, organ


def test_sphere_statistics_match_direct_computation():
    rng = np.random.default_rng(0)
    geometry = Geometry.from_spacing((20, 20, 20), (3.0, 2.0, 2.5))
    suv = rng.gamma(4.0, 1.5, geometry.shape).astype(np.float32)
    kernel = sphere_kernel(geometry, 6.0)
    mean, sd = sphere_statistics(suv, kernel)
    for centre in [(10, 10, 10), (7, 12, 9), (12, 8, 11)]:
        values = suv[sphere_mask(geometry, centre, 6.0, units="voxel")].astype(float)
        assert mean[centre] == pytest.approx(values.mean(), rel=1e-9)
        assert sd[centre] == pytest.approx(values.std(ddof=1), rel=1e-6)


def test_sphere_in_a_uniform_organ_has_the_carlsen_threshold():
    geometry, suv, organ = organ_study()
    placed = place_in_organ(suv, geometry, organ)
    mask = sphere_mask(geometry, placed.centre_mm, placed.radius_mm)
    stats = reference_stats(suv, mask, geometry)
    assert placed.radius_mm == 15.0
    assert placed.stats.mean == pytest.approx(stats.mean)
    assert placed.stats.sd == pytest.approx(stats.sd)
    assert placed.threshold_suv == pytest.approx(1.5 * stats.mean + 2 * stats.sd)
    # the ±1 checkerboard: the 251 voxels of a 15 mm sphere on 4 mm voxels are 116 of the
    # centre's parity and 135 of the other, so the mean is 6 ± 19/251 and the SD
    # sqrt((1 - (19/251)²)·251/250)
    shift = 19 / 251
    sd = np.sqrt((1 - shift**2) * 251 / 250)
    assert min(abs(placed.threshold_suv - (1.5 * (6 + s) + 2 * sd)) for s in (shift, -shift)) < 1e-9
    # the whole sphere lies in the organ eroded by 10 mm
    depth = ndimage.distance_transform_edt(organ, sampling=SPACING)
    assert depth[placed.centre_index] >= placed.radius_mm + ORGAN_MARGIN_MM
    # a uniform organ: every allowed sphere gives the same threshold within 5 %
    assert placed.confidence == 1.0
    assert placed.converged and placed.iterations == 2


def test_sphere_avoids_a_lesion_and_sits_at_a_fixed_point():
    geometry, suv, organ = organ_study()
    suv[10:16, 10:16, 10:16] = 20.0  # a 13.8 mL lesion in the organ
    placed = place_in_organ(suv, geometry, organ)
    mask = sphere_mask(geometry, placed.centre_mm, placed.radius_mm)
    lesions = suv > placed.threshold_suv
    distance = ndimage.distance_transform_edt(~lesions, sampling=SPACING)
    assert distance[mask].min() > LESION_MARGIN_MM
    # a fixed point: placing again with this threshold's lesions gives the same sphere
    assert placed.converged
    assert placed.history[-1]["centre_mm"] == placed.history[-2]["centre_mm"]
    assert placed.history[-1]["threshold_suv"] == placed.threshold_suv


def test_sphere_prefers_the_homogeneous_part():
    geometry, suv, organ = organ_study()
    noisy = organ.copy()
    noisy[:20] = False  # slices 20..37 are noisier (±2)
    suv[noisy] = 6.0 + checker(suv.shape, 2.0)[noisy]
    placed = place_in_organ(suv, geometry, organ)
    assert placed.centre_index[0] < 20
    assert placed.stats.sd < 1.1


def test_sub_threshold_hot_spot_is_kept_out_of_the_sphere():
    geometry, suv, organ = organ_study()
    suv[8:14, 14:20, 14:20] = 9.0  # below the threshold (about 11) but above mean + 3 SD
    placed = place_in_organ(suv, geometry, organ)
    mask = sphere_mask(geometry, placed.centre_mm, placed.radius_mm)
    assert not (suv[mask] >= 9.0).any()


def test_radius_shrinks_to_what_fits():
    # a slab 11 voxels thick: its middle voxel centres lie 6 voxels (24 mm) from the
    # nearest voxel outside, so a sphere keeping 10 mm from the border has 14 mm at most
    geometry, suv, organ = organ_study(box=(slice(2, 38), slice(14, 25), slice(4, 36)))
    placed = place_in_organ(suv, geometry, organ)
    assert placed.radius_mm == 14.0


def test_no_room_is_refused():
    geometry, suv, organ = organ_study(box=(slice(2, 38), slice(14, 18), slice(4, 36)))
    with pytest.raises(NoPositionError, match="nowhere thicker"):
        place_in_organ(suv, geometry, organ)
    # a cube of 11 voxels: only its centre has room for a 10 mm sphere 10 mm inside; one
    # hot voxel 8 mm from the centre is inside the first sphere and above its threshold
    geometry, suv, organ = organ_study(box=(slice(14, 25), slice(14, 25), slice(14, 25)))
    suv[21, 19, 19] = 20.0
    with pytest.raises(NoPositionError, match="no lesion-free 20 mm sphere fits"):
        place_in_organ(suv, geometry, organ)
    # lesions everywhere: no sphere is homogeneous enough to be normal tissue
    geometry, suv, organ = organ_study()
    suv[organ & (checker(suv.shape) > 0) & (np.indices(suv.shape)[0] % 4 == 0)] = 30.0
    with pytest.raises(NoPositionError, match="homogeneous enough"):
        place_in_organ(suv, geometry, organ)


def test_confidence_drops_when_the_organ_has_two_levels():
    geometry, suv, organ = organ_study()
    upper = organ.copy()
    upper[:20] = False
    suv[upper] += 3.0  # 9 ± 1: a threshold 40 % higher
    placed = place_in_organ(suv, geometry, organ)
    assert 0.3 < placed.confidence < 0.7


def test_bad_arguments():
    geometry, suv, organ = organ_study()
    with pytest.raises(ValueError, match="organ must be one of"):
        place_in_organ(suv, geometry, organ, organ="kidney")
    with pytest.raises(ValueError, match="min_radius_mm"):
        place_in_organ(suv, geometry, organ, radius_mm=8.0)
    with pytest.raises(ValueError, match="share one shape"):
        place_in_organ(suv, geometry, organ[:-1])
    with pytest.raises(NoPositionError, match="empty"):
        place_in_organ(suv, geometry, np.zeros_like(organ))
