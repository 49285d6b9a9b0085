"""Slice building: block averaging, 'any' mask downscaling, [0, 1] scaling, crops."""

import numpy as np
import pytest

from petseg.slices.build import (
    RAINIO_BOX,
    block_any,
    block_mean,
    build_slice_set,
    crop_window,
    extract_box,
    scale_unit,
    slices_from_volume,
    tumour_slice_indices,
)


def test_block_mean_by_hand():
    image = np.array([[1, 3, 0, 0], [5, 7, 0, 4], [2, 2, 9, 9], [2, 2, 9, 9]], float)
    # blocks: (1+3+5+7)/4 = 4, (0+0+0+4)/4 = 1, 2, 9
    np.testing.assert_array_equal(block_mean(image, 2), [[4, 1], [2, 9]])
    with pytest.raises(ValueError, match="not divisible"):
        block_mean(np.zeros((3, 4)), 2)


def test_block_any_by_hand():
    mask = np.zeros((4, 4), bool)
    mask[1, 1] = True  # one pixel of the top-left block
    mask[3, 2] = True  # one pixel of the bottom-right block
    np.testing.assert_array_equal(block_any(mask, 2), [[True, False], [False, True]])


def test_scale_unit_and_flat_slice():
    np.testing.assert_allclose(
        scale_unit(np.array([[2.0, 4.0], [3.0, 6.0]])), [[0, 0.5], [0.25, 1]]
    )
    flat = scale_unit(np.full((3, 3), 7.5))
    assert flat.dtype == np.float32 and np.all(flat == 0)


def test_crop_windows():
    assert crop_window((512, 512), "rainio") == RAINIO_BOX == (184, 312, 148, 276)
    with pytest.raises(ValueError, match="512x512"):
        crop_window((40, 40), "rainio")
    assert crop_window((100, 100), "fixed:10:42:20:52") == (10, 42, 20, 52)
    mask = np.zeros((3, 40, 40), bool)
    mask[1, 10:14, 20:30] = True  # bbox rows 10..13 (centre 12), cols 20..29 (centre 25)
    assert crop_window((40, 40), "bbox:8", mask) == (8, 16, 21, 29)
    assert crop_window((40, 40), "centre:5:6:4") == (3, 7, 4, 8)
    with pytest.raises(ValueError, match="unknown crop"):
        crop_window((40, 40), "box:8")


def test_extract_box_pads_outside_the_image():
    image = np.arange(9, dtype=float).reshape(3, 3)
    out = extract_box(image, (-1, 3, 1, 5), pad_value=-1)
    expected = np.array(
        [[-1, -1, -1, -1], [1, 2, -1, -1], [4, 5, -1, -1], [7, 8, -1, -1]], dtype=float
    )
    np.testing.assert_array_equal(out, expected)


def test_slices_from_volume_selects_tumour_slices_and_keeps_ids():
    pet = np.ones((5, 8, 8), np.float32)
    mask = np.zeros((5, 8, 8), bool)
    mask[1, 2, 2] = mask[3, 5, 5] = True
    pet[1, 2, 2] = 9.0
    assert tumour_slice_indices(mask).tolist() == [1, 3]
    images, masks, ks, window, ranges = slices_from_volume(pet, mask, crop="fixed:0:8:0:8", size=4)
    assert ks.tolist() == [1, 3] and window == (0, 8, 0, 8)
    # slice 1: block (1,1) holds 9 and three 1s -> mean 3; others 1 -> scaled to 1 and 0
    assert images[0, 1, 1] == 1.0 and images[0, 0, 0] == 0.0
    np.testing.assert_allclose(ranges[0], [1.0, 3.0])
    assert np.all(images[1] == 0)  # flat slice 3
    assert masks[0, 1, 1] and masks[1, 2, 2] and masks.sum() == 2
    with pytest.raises(ValueError, match="outside"):
        slices_from_volume(pet, mask, crop="fixed:0:4:0:4", size=4)
    ss = build_slice_set([("A", pet, mask), ("B", pet, mask)], crop="fixed:0:8:0:8", size=4)
    assert ss.patient_ids.tolist() == ["A", "A", "B", "B"] and ss.patients == ["A", "B"]
    with pytest.raises(ValueError, match="patient C"):
        build_slice_set([("C", pet, mask)], crop="fixed:0:8:0:6", size=4)
