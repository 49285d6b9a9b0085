"""Reduced first view (petseg.review.preview): factors, block reductions, grid."""

from __future__ import annotations

import numpy as np
import pytest

from petseg.review.preview import preview_affine, preview_step, preview_volume
from petseg.study import Geometry


@pytest.mark.parametrize(
    ("shape", "max_voxels", "step"),
    [
        ((300, 336, 336), 1_500_000, 3),  # 100 x 112 x 112 = 1 254 400
        ((300, 336, 336), 33_868_800, 1),  # exactly the full size
        ((300, 336, 336), 4_300_000, 2),  # 150 x 168 x 168 = 4 233 600
        ((20, 32, 32), 1_500_000, 1),
        ((5, 5, 5), 8, 3),  # 2 x 2 x 2
        ((5, 5, 5), 1, 5),
    ],
)
def test_preview_step_is_the_smallest_factor_that_fits(
    shape: tuple[int, int, int], max_voxels: int, step: int
) -> None:
    assert preview_step(shape, max_voxels) == step


def test_preview_step_rejects_nonpositive_limit() -> None:
    with pytest.raises(ValueError, match="max_voxels"):
        preview_step((4, 4, 4), 0)


def test_block_max_keeps_a_single_hot_voxel_and_pads_with_the_minimum() -> None:
    volume = np.ones((5, 4, 4), dtype=np.float32)
    volume[4, 3, 0] = 9.0  # in the last, incomplete block along Z
    reduced = preview_volume(volume, 2, "max")
    assert reduced.shape == (3, 2, 2) and reduced.dtype == np.float32
    expected = np.ones((3, 2, 2), dtype=np.float32)
    expected[2, 1, 0] = 9.0
    np.testing.assert_array_equal(reduced, expected)


def test_block_mean_by_hand_and_labels_keep_their_dtype() -> None:
    ct = np.arange(2 * 2 * 4, dtype=np.int16).reshape(2, 2, 4)
    reduced = preview_volume(ct, 2, "mean")
    # blocks (all k, all j, i in 0-1) and (all k, all j, i in 2-3)
    left = ct[:, :, :2].mean()
    right = ct[:, :, 2:].mean()
    np.testing.assert_allclose(reduced, [[[left, right]]])
    assert reduced.dtype == np.float32

    labels = np.zeros((3, 3, 3), dtype=np.int32)
    labels[2, 2, 2] = 7  # one voxel lesion in the padded corner block
    small = preview_volume(labels, 2, "max")
    assert small.dtype == np.int32 and small[1, 1, 1] == 7 and small.sum() == 7


def test_step_one_is_the_volume_itself_and_bad_arguments_fail() -> None:
    volume = np.zeros((2, 2, 2), dtype=np.float32)
    assert preview_volume(volume, 1, "max") is volume
    with pytest.raises(ValueError, match="step"):
        preview_volume(volume, 0, "max")
    with pytest.raises(ValueError, match="reduce"):
        preview_volume(volume, 2, "median")  # type: ignore[arg-type]


def test_preview_voxel_centre_is_the_centre_of_its_block() -> None:
    geometry = Geometry.from_spacing((30, 40, 50), (3.0, 2.0, 1.5), origin=(-10.0, 5.0, 7.0))
    step = 3
    coarse = preview_affine(geometry.affine, step)
    for p in [(0, 0, 0), (4, 7, 11), (9, 13, 16)]:
        block = [np.arange(step * q, step * q + step) for q in p]
        corners = np.array([[b[0], b[-1]] for b in block])  # first and last voxel per axis
        centre_full = corners.mean(axis=1)
        expected = geometry.affine @ np.append(centre_full, 1.0)
        np.testing.assert_allclose(coarse @ np.append(p, 1.0), expected)
    np.testing.assert_allclose(np.linalg.norm(coarse[:3, :3], axis=0), [9.0, 6.0, 4.5])


@pytest.mark.parametrize("reduce", ["max", "mean"])
@pytest.mark.parametrize("shape", [(9, 12, 6), (10, 13, 7)])  # divisible by 3, and not
def test_equals_skimage_block_reduce(reduce: str, shape: tuple[int, int, int]) -> None:
    from skimage.measure import block_reduce

    volume = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    func = np.max if reduce == "max" else np.mean
    expected = block_reduce(volume, (3, 3, 3), func=func, cval=volume.min())
    np.testing.assert_allclose(preview_volume(volume, 3, reduce), expected, rtol=1e-5, atol=1e-6)  # type: ignore[arg-type]
