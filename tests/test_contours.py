"""Contours of lesion maps: hand-computed polygons, holes, islands, and exact round trips
through petseg.io.rtstruct's independent rasteriser (voxel centre inside, even-odd)."""

import numpy as np
import pytest

from petseg.contours import (
    align_to_grid,
    label_contours,
    mask_contours,
    slice_polygons,
)
from petseg.io.rtstruct import rasterise_contours
from petseg.study import Geometry


def _as_set(points: np.ndarray) -> set[tuple[float, float]]:
    return {(float(r), float(c)) for r, c in points}


def test_single_voxel_is_a_four_point_diamond() -> None:
    mask = np.zeros((3, 3), bool)
    mask[1, 1] = True
    (polygon,) = slice_polygons(mask)
    # By hand: the 0.5 iso-line passes through the 4 edge midpoints around voxel (1, 1).
    assert _as_set(polygon.points) == {(0.5, 1.0), (1.0, 1.5), (1.5, 1.0), (1.0, 0.5)}
    assert len(polygon.points) == 4
    assert polygon.area == pytest.approx(0.5)  # a square of diagonal 1
    assert not polygon.is_hole


def test_voxel_on_slice_border_still_gives_a_closed_polygon() -> None:
    mask = np.zeros((2, 2), bool)
    mask[0, 0] = True
    (polygon,) = slice_polygons(mask)
    assert _as_set(polygon.points) == {(-0.5, 0.0), (0.0, 0.5), (0.5, 0.0), (0.0, -0.5)}


def test_bar_keeps_only_corner_vertices() -> None:
    mask = np.zeros((3, 5), bool)
    mask[1, 1:4] = True
    (polygon,) = slice_polygons(mask)
    # By hand: 1x3 voxels; the collinear midpoints on the long sides are dropped, leaving
    # a hexagon of area 3 - 4 * 0.125 (four cut corners) = 2.5.
    assert _as_set(polygon.points) == {
        (0.5, 1.0),
        (0.5, 3.0),
        (1.0, 3.5),
        (1.5, 3.0),
        (1.5, 1.0),
        (1.0, 0.5),
    }
    assert polygon.area == pytest.approx(2.5)


def test_ring_gives_outer_polygon_and_hole() -> None:
    mask = np.zeros((5, 5), bool)
    mask[1:4, 1:4] = True
    mask[2, 2] = False
    polygons = sorted(slice_polygons(mask), key=lambda p: p.area)
    assert [p.is_hole for p in polygons] == [True, False]
    # By hand: hole = diamond of area 0.5; outer = 3x3 square minus 4 corners of 0.125.
    assert polygons[0].area == pytest.approx(0.5)
    assert polygons[1].area == pytest.approx(8.5)
    assert _as_set(polygons[0].points) == {(1.5, 2.0), (2.0, 2.5), (2.5, 2.0), (2.0, 1.5)}


def test_islands_are_separate_polygons_and_diagonal_neighbours_one() -> None:
    mask = np.zeros((6, 6), bool)
    mask[0, 0] = mask[1, 1] = True  # corner-touching: one region (8-connected)
    mask[4, 4] = True  # separate island
    polygons = slice_polygons(mask)
    assert sorted(round(p.area, 6) for p in polygons) == [0.5, 1.5]
    # By hand: the diagonal pair is a band of 2 diamonds (0.5 each) plus the 0.5 strip
    # joining them across the shared corner = 1.5.
    assert not any(p.is_hole for p in polygons)


def test_empty_slice_has_no_polygon() -> None:
    assert slice_polygons(np.zeros((4, 4), bool)) == []


def test_contour_points_lie_on_their_slice_plane() -> None:
    geometry = Geometry.from_spacing((4, 5, 6), (3.0, 2.0, 4.0), origin=(-10.0, 20.0, 100.0))
    mask = np.zeros(geometry.shape, bool)
    mask[1:3, 2, 3] = True
    contours = mask_contours(mask, geometry)
    assert [c.k for c in contours] == [1, 2]
    for contour in contours:
        # z = origin_z + k * dz; x = -10 + 4 * (3 +- 0.5 or 3); y = 20 + 2 * (2 +- 0.5 or 2)
        assert np.allclose(contour.points[:, 2], 100.0 + 3.0 * contour.k)
        assert set(np.round(contour.points[:, 0], 6)) == {0.0, 2.0, 4.0}
        assert set(np.round(contour.points[:, 1], 6)) == {23.0, 24.0, 25.0}


def _random_lesions(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """Irregular lesions with holes, islands, border contact and single voxels."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    blob = rng.random(shape) > 0.55
    labels[1:-1, 2:-2, 2:-2][blob[1:-1, 2:-2, 2:-2]] = 3  # noisy: many holes and islands
    labels[0, 0, 0] = 7  # single voxel in the grid corner
    labels[-1, 1:4, -1] = 12  # bar on the last slice and the border column
    return labels


def _oblique_geometry(shape: tuple[int, int, int]) -> Geometry:
    angle = np.deg2rad(30.0)
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0, 0, 1]]
    )
    affine = np.eye(4)
    # axis 0 along -z (feet-first style), rows and columns rotated 30 degrees in-plane.
    affine[:3, 0] = rotation @ [0.0, 0.0, -3.27]
    affine[:3, 1] = rotation @ [0.0, 4.6875, 0.0]
    affine[:3, 2] = rotation @ [-4.6875, 0.0, 0.0]  # columns run towards patient right
    affine[:3, 3] = (-120.0, 35.0, 812.5)
    return Geometry(affine, shape)


@pytest.mark.parametrize(
    "geometry",
    [
        Geometry.from_spacing((6, 20, 24), (3.27, 4.6875, 4.6875), origin=(-90.0, -60.0, -881.0)),
        _oblique_geometry((6, 20, 24)),
    ],
    ids=["axis-aligned", "oblique-flipped"],
)
def test_round_trip_through_centre_inside_rasteriser_is_exact(geometry: Geometry) -> None:
    labels = _random_lesions(geometry.shape, seed=4)
    contours = label_contours(labels, geometry)
    assert sorted(contours) == [3, 7, 12]
    assert any(c.is_hole for c in contours[3])
    for label, items in contours.items():
        back = rasterise_contours([c.points for c in items], geometry)
        np.testing.assert_array_equal(back, labels == label)


def test_label_contours_of_a_flipped_view_equal_those_of_its_copy() -> None:
    """Lesion maps arrive as flipped views (align_to_grid); each lesion's bounding box
    and contours must not depend on the memory layout."""
    geometry = Geometry.from_spacing((6, 20, 24), (3.27, 4.6875, 4.6875))
    view = _random_lesions(geometry.shape, seed=5)[::-1, :, ::-1]
    assert not view.flags.c_contiguous
    got, expected = label_contours(view, geometry), label_contours(view.copy(), geometry)
    assert list(got) == list(expected) == [3, 7, 12]
    for label, contours in expected.items():
        assert [c.k for c in got[label]] == [c.k for c in contours]
        for a, b in zip(got[label], contours, strict=True):
            np.testing.assert_array_equal(a.points, b.points)


def test_label_contours_rejects_non_integer_and_negative_labels() -> None:
    geometry = Geometry.from_spacing((2, 2, 2), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="integer labels"):
        label_contours(np.zeros((2, 2, 2), np.float32), geometry)
    with pytest.raises(ValueError, match=">= 0"):
        label_contours(-np.ones((2, 2, 2), np.int32), geometry)
    with pytest.raises(ValueError, match="does not match"):
        label_contours(np.zeros((2, 2, 3), np.int32), geometry)


def test_align_to_grid_undoes_flips_and_axis_permutations() -> None:
    target = Geometry.from_spacing((4, 5, 6), (3.0, 2.0, 2.5), origin=(1.0, 2.0, 3.0))
    values = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    # The same voxels stored as (X, Y, Z) with X reversed (a NIfTI written another way):
    stored = np.flip(values.transpose(2, 1, 0), axis=0)
    affine = np.zeros((4, 4))
    affine[3, 3] = 1.0
    affine[:3, 0] = target.affine[:3, 2] * -1  # stored axis 0 = target axis 2, reversed
    affine[:3, 1] = target.affine[:3, 1]
    affine[:3, 2] = target.affine[:3, 0]
    affine[:3, 3] = target.index_to_patient([0, 0, 5])
    stored_geometry = Geometry(affine, stored.shape)
    np.testing.assert_array_equal(align_to_grid(stored, stored_geometry, target), values)


def test_align_to_grid_refuses_other_grids() -> None:
    target = Geometry.from_spacing((4, 5, 6), (3.0, 2.0, 2.5))
    shifted = Geometry.from_spacing((4, 5, 6), (3.0, 2.0, 2.5), origin=(1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="resample the lesion map onto the PET grid"):
        align_to_grid(np.zeros((4, 5, 6)), shifted, target)
    finer = Geometry.from_spacing((4, 5, 6), (3.0, 2.0, 2.0))
    with pytest.raises(ValueError, match="not the reference grid"):
        align_to_grid(np.zeros((4, 5, 6)), finer, target)
