"""Edits as voxel differences (petseg.review.edits), the lesion table kept edit by edit
(petseg.review.lesion_index) and the checks of a save request (petseg.review.versions),
on arrays written by hand."""

from __future__ import annotations

import numpy as np
import pytest

from petseg.edit import add_lesion_by_seed
from petseg.lesions import quantify_lesions
from petseg.review.edits import check_seed, grow_region, removed_box, voxel_change
from petseg.review.errors import BadRequestError, UnprocessableError
from petseg.review.lesion_index import LesionIndex
from petseg.review.versions import check_review_fields, version_name
from petseg.study import Geometry


def test_a_change_holds_the_flat_indices_of_the_voxels_that_differ() -> None:
    shape = (2, 3, 4)
    box = (slice(0, 2), slice(1, 3), slice(2, 4))
    old = np.zeros((2, 2, 2), dtype=np.int32)
    new = old.copy()
    new[1, 0, 1] = 7  # whole-map voxel (1, 1, 3): flat index 1·12 + 1·4 + 3 = 19
    change = voxel_change(shape, box, old, new)
    assert change.index.tolist() == [19]
    assert (change.before.tolist(), change.after.tolist()) == ([0], [7])


@pytest.mark.parametrize(
    ("seed", "error"),
    [
        ([1, 2], BadRequestError),  # two indices
        ([True, 0, 0], BadRequestError),  # a boolean is no index
        ([0.0, 1, 1], BadRequestError),
        ([2, 0, 0], UnprocessableError),  # k = 2 outside Z = 2
        ([0, -1, 0], UnprocessableError),
    ],
)
def test_a_seed_is_three_integer_indices_inside_the_volume(seed: list, error: type) -> None:
    with pytest.raises(error):
        check_seed(seed, (2, 3, 4))
    assert check_seed([1, 2, 3], (2, 3, 4)) == (1, 2, 3)


def test_the_box_of_a_removed_component() -> None:
    removed = np.zeros((3, 4, 5), dtype=np.int32)
    removed[0, 1:3, 1:3] = 2
    assert removed_box(removed, 2) == (slice(0, 1), slice(1, 3), slice(1, 3))
    with pytest.raises(UnprocessableError, match="removed component 1 is not"):
        removed_box(removed, 1)
    with pytest.raises(UnprocessableError, match="removed component 5 is not"):
        removed_box(removed, 5)


def test_a_lesion_grown_on_a_box_is_the_one_grown_on_the_whole_image() -> None:
    # A 4 × 100 × 90 slab at SUV 6 outgrows the first ±32 voxel box around the seed, so
    # the box is doubled until the region no longer touches a cut face.
    shape = (8, 120, 110)
    geometry = Geometry.from_spacing(shape, (3.0, 2.0, 2.0))
    suv = np.ones(shape, dtype=np.float32)
    suv[2:6, 10:110, 10:100] = 6.0
    labels = np.zeros(shape, dtype=np.int32)
    labels[0, 0:2, 0:2] = 1
    seed = (3, 60, 55)
    box, region = grow_region(
        labels, suv, geometry, seed, method="fixed", value=4.0, reference=None, connectivity=26
    )
    whole, new_label = add_lesion_by_seed(
        labels, suv, geometry, seed, method="fixed", value=4.0, connectivity=26
    )
    grown = np.zeros(shape, dtype=bool)
    grown[box] = region
    assert new_label == 2 and np.array_equal(grown, whole == 2)
    assert int(grown.sum()) == 4 * 100 * 90


def test_the_lesion_table_after_edits_equals_a_fresh_measurement() -> None:
    shape = (10, 30, 30)
    geometry = Geometry.from_spacing(shape, (3.0, 2.0, 2.0))
    suv = np.ones(shape, dtype=np.float32)
    suv[2:5, 5:9, 5:9] = 7.0
    suv[6:9, 15:25, 15:20] = 5.0
    labels = np.zeros(shape, dtype=np.int32)
    labels[2:5, 5:9, 5:9] = 1
    index = LesionIndex(suv, geometry)
    index.rebuild(labels)

    added = labels.copy()
    added[6:9, 15:25, 15:20] = 2
    box = (slice(6, 9), slice(15, 25), slice(15, 20))
    change = voxel_change(shape, box, labels[box], added[box])
    index.update(added, change)
    assert index.next_label() == 3
    assert index.stats() == quantify_lesions(suv, added, geometry)
    assert index.box(2) == box
    assert index.rows()[1]["max_voxel_kji"] == [6, 15, 15]  # first voxel at the SUVmax 5

    removed = added.copy()
    removed[removed == 1] = 0
    first = (slice(2, 5), slice(5, 9), slice(5, 9))
    index.update(removed, voxel_change(shape, first, added[first], removed[first]))
    assert sorted(index.entries) == [2]
    assert index.stats() == quantify_lesions(suv, removed, geometry)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("reviewer", " ", "reviewer must be a non-empty name"),
        ("reviewer", "x" * 201, "at most 200 characters"),
        ("score", 6, r"score must be one of \[1, 2, 3, 4, 5\]"),
        ("score", True, "score must be one of"),
        ("comment", None, "comment must be text"),
        ("active_seconds", -1.0, "active_seconds must be a non-negative number"),
        ("active_seconds", float("nan"), "active_seconds must be a non-negative number"),
        ("base_version", "1", "base_version must be an integer"),
    ],
)
def test_a_save_request_with_a_bad_field_is_refused(field: str, value: object, match: str) -> None:
    fields = {
        "base_version": 0,
        "reviewer": "dr",
        "score": 3,
        "comment": "",
        "active_seconds": 12.5,
    }
    check_review_fields(**fields)  # the good request passes
    with pytest.raises(BadRequestError, match=match):
        check_review_fields(**{**fields, field: value})


def test_version_folders_are_numbered_with_three_digits_or_more() -> None:
    assert [version_name(n) for n in (1, 12, 999, 1000)] == ["v001", "v012", "v999", "v1000"]
