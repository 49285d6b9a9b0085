"""Signed-distance shapes and the canvas: distances computed by hand, anti-aliased blending."""

from __future__ import annotations

import numpy as np
import pytest

from petseg.phantom.shapes import Canvas, Capsule, Ellipsoid, Layer, axis_rotation
from petseg.study import Geometry


def _xyz(*point: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.array([v], np.float32) for v in point)  # type: ignore[return-value]


def test_sphere_distance_is_exact():
    sphere = Ellipsoid((0.0, 0.0, 0.0), (10.0, 10.0, 10.0))
    # k0 = |p|/10, k1 = |p|/100: sd = k0 (k0 - 1) / k1 = |p| - 10 for a sphere
    for point, expected in (((20.0, 0.0, 0.0), 10.0), ((5.0, 0.0, 0.0), -5.0), ((0, 6, 8), 0.0)):
        assert sphere.sd(*_xyz(*point))[0] == pytest.approx(expected, abs=1e-5)
    np.testing.assert_allclose(sphere.lo, [-10, -10, -10])
    np.testing.assert_allclose(sphere.hi, [10, 10, 10])


def test_rotated_ellipsoid_bounding_box():
    # semi-axes 10 (x) and 2 (y) rotated by 90° about z: the long axis lies along y
    shape = Ellipsoid((0.0, 0.0, 0.0), (10.0, 2.0, 3.0), axis_rotation("z", 90))
    np.testing.assert_allclose(shape.hi, [2, 10, 3], atol=1e-9)
    assert shape.sd(*_xyz(0.0, 10.0, 0.0))[0] == pytest.approx(0.0, abs=1e-4)


def test_capsule_distance():
    tube = Capsule((0.0, 0.0, 0.0), (10.0, 0.0, 0.0), 2.0)
    assert tube.sd(*_xyz(5.0, 3.0, 0.0))[0] == pytest.approx(1.0)  # 3 mm from the axis
    assert tube.sd(*_xyz(13.0, 0.0, 0.0))[0] == pytest.approx(1.0)  # beyond the end cap
    cone = Capsule((0.0, 0.0, 0.0), (10.0, 0.0, 0.0), 2.0, 4.0)
    assert cone.sd(*_xyz(5.0, 3.0, 0.0))[0] == pytest.approx(0.0)  # radius 3 half-way


def test_canvas_paints_voxel_centres_inside_and_blends_the_border():
    geometry = Geometry.from_spacing((5, 5, 5), (1.0, 1.0, 1.0), (-2.0, -2.0, -2.0))
    canvas = Canvas(geometry)
    assert canvas.index_range(np.array([-0.5, -0.5, -0.5]), np.array([0.5, 0.5, 0.5])) == (
        slice(1, 4),
        slice(1, 4),
        slice(1, 4),
    )  # centres -1, 0, 1 lie within the box widened by one voxel (the ramp)
    canvas.paint(Layer("liver", 9, [Ellipsoid((0.0, 0.0, 0.0), (2.5, 2.5, 2.5))], 6.0, 60.0))
    # labels: the voxel centres within 2.5 mm (integer points with x² + y² + z² ≤ 6.25)
    k, j, i = np.indices(geometry.shape) - 2
    np.testing.assert_array_equal(canvas.organs == 9, k**2 + j**2 + i**2 <= 6.25)
    # fraction inside = clip(0.5 − sd / 1 mm, 0, 1); sd = |p| − 2.5 mm
    assert canvas.activity[2, 2, 3] == pytest.approx(6.0)  # |p| = 1: fully inside
    assert canvas.activity[2, 2, 4] == pytest.approx(6.0)  # sd −0.5: fraction exactly 1
    frac = 0.5 - (np.sqrt(5.0) - 2.5)  # (x, y) = (2, 1) mm: fraction 0.764
    assert canvas.activity[2, 3, 4] == pytest.approx(6.0 * frac, rel=1e-6)
    assert canvas.hu[2, 3, 4] == pytest.approx(-1000 + frac * 1060, rel=1e-6)
    # (x, y) = (2, 2) mm: centre outside (no label), still 0.17 of the voxel inside
    assert canvas.organs[2, 4, 4] == 0
    assert canvas.activity[2, 4, 4] == pytest.approx(6.0 * (3.0 - np.sqrt(8.0)), rel=1e-6)
    assert canvas.activity[0, 0, 0] == 0.0  # |p| = 3.5 mm: one voxel away from the surface


def test_canvas_refuses_an_oblique_grid():
    geometry = Geometry.from_spacing((3, 3, 3), (1.0, 1.0, 1.0))
    affine = geometry.affine.copy()
    affine[:3, :3] = affine[:3, :3] @ axis_rotation("z", 30)
    with pytest.raises(ValueError, match="axis-aligned"):
        Canvas(Geometry(affine, geometry.shape))
