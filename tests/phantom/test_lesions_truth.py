"""Lesion painting and the truth table's reference sphere, on small hand-made grids."""

from __future__ import annotations

import numpy as np
import pytest

from petseg.phantom.anatomy import LABEL
from petseg.phantom.lesions import Lesion, paint_lesions
from petseg.phantom.shapes import Canvas
from petseg.phantom.truth import reference_sphere
from petseg.study import Geometry

GEOMETRY = Geometry.from_spacing((9, 9, 9), (2.0, 2.0, 2.0), (-8.0, -8.0, -8.0))


def _lesion(centre, radius, suv=10.0):
    return Lesion(
        site="liver",
        kind="metastasis",
        centre=np.asarray(centre, float),
        axes=np.full(3, float(radius)),
        rotation=np.eye(3),
        suv=suv,
        hu=45.0,
        low_uptake=False,
    )


def test_lesions_get_labels_in_order_and_their_uptake():
    canvas = Canvas(GEOMETRY)
    # radius 3 mm: the centre voxel, its 6 face (2 mm) and 12 edge (2.83 mm) neighbours
    big = _lesion((0.0, 0.0, 0.0), 3.0)
    small = _lesion((6.0, 6.0, 6.0), 0.5)  # on a voxel centre: that voxel alone
    labels = paint_lesions(canvas, [big, small])
    assert np.count_nonzero(labels == 1) == 19 and np.count_nonzero(labels == 2) == 1
    assert labels[7, 7, 7] == 2
    # a face neighbour lies 1 mm inside: fraction 0.5 + 1 mm / 2 mm = 1, the full uptake
    assert canvas.activity[4, 4, 5] == pytest.approx(10.0)
    assert canvas.hu[4, 4, 5] == pytest.approx(45.0)


def test_a_lesion_between_voxel_centres_moves_onto_one():
    canvas = Canvas(GEOMETRY)
    tiny = _lesion((1.2, 1.2, 1.2), 0.5)  # no voxel centre within 0.5 mm of it
    labels = paint_lesions(canvas, [tiny])
    assert np.count_nonzero(labels == 1) == 1
    np.testing.assert_allclose(tiny.centre, [2.0, 2.0, 2.0])  # rounded to the nearest centre


def test_reference_sphere_at_the_deepest_lesion_free_voxel():
    organs = np.zeros(GEOMETRY.shape, np.uint8)
    organs[1:8, 1:8, 1:8] = LABEL["liver"]  # 7 voxels wide, centre voxel index 4
    lesions = np.zeros(GEOMETRY.shape, np.int32)
    sphere = reference_sphere(organs, lesions, "liver", GEOMETRY)
    assert sphere is not None
    assert sphere["centre_mm"] == [0.0, 0.0, 0.0]
    assert sphere["clearance_mm"] == 8.0  # 4 voxels of 2 mm to the first voxel outside
    lesions[4, 4, 4] = 1  # a lesion at the centre pushes the sphere away from it
    moved = reference_sphere(organs, lesions, "liver", GEOMETRY)
    assert moved is not None and moved["centre_mm"] != [0.0, 0.0, 0.0]
    assert moved["clearance_mm"] < 8.0
    assert reference_sphere(organs, lesions, "spleen", GEOMETRY) is None
