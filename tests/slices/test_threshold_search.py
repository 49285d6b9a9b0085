"""Optimal-threshold search on hand-made slices (grid 0.00-0.99, ``pixel > t``, first max)."""

import numpy as np
import pytest

from petseg.slices.threshold_search import (
    THRESHOLD_GRID,
    best_constant_threshold,
    dice_at_thresholds,
    dice_curves,
    optimal_thresholds,
)


def _loop_dice_curves(images, truths, grid=THRESHOLD_GRID):
    """The definition, one threshold at a time: Dice of ``image > t`` per image."""
    out = np.empty((len(images), len(grid)))
    for i, (image, truth) in enumerate(zip(images, truths, strict=True)):
        for k, t in enumerate(grid):
            pred = image > t
            out[i, k] = 2 * np.sum(pred & truth) / (pred.sum() + truth.sum())
    return out


def test_grid_is_two_digit_values():
    assert len(THRESHOLD_GRID) == 100
    assert THRESHOLD_GRID[0] == 0.0 and THRESHOLD_GRID[41] == 0.41 and THRESHOLD_GRID[-1] == 0.99


def test_hand_made_slice():
    # Truth: the two pixels valued 0.8 and 0.6. Above 0.55 the prediction is exactly the
    # truth (Dice 1); the first threshold reaching it is 0.40 (0.4 itself is not > 0.40).
    image = np.array([[[0.8, 0.6], [0.4, 0.1]]])
    truth = np.array([[[True, True], [False, False]]])
    curve = dice_curves(image, truth)[0]
    # t = 0.00 ... 0.09: all 4 pixels predicted -> 2*2/(4+2) = 2/3
    assert curve[0] == pytest.approx(2 / 3)
    # t = 0.10 ... 0.39: 3 predicted -> 2*2/(3+2) = 0.8
    assert curve[10] == pytest.approx(0.8) and curve[39] == pytest.approx(0.8)
    # t = 0.40 ... 0.59: exact -> 1; t = 0.60 ... 0.79: one TP -> 2/(1+2)
    assert curve[40] == 1.0 and curve[59] == 1.0
    assert curve[60] == pytest.approx(2 / 3)
    # t >= 0.80: nothing predicted -> 0
    assert curve[80] == 0.0
    thr, best = optimal_thresholds(image, truth)
    assert thr[0] == 0.40 and best[0] == 1.0  # first of the tied maxima 0.40 ... 0.59


def test_strict_greater_than_at_grid_values():
    # A pixel equal to a grid value (0.5) is not above t = 0.50 but is above 0.49.
    image = np.full((1, 1, 2), 0.5)
    truth = np.array([[[True, False]]])
    curve = dice_curves(image, truth)[0]
    assert curve[49] == pytest.approx(2 / 3)  # both pixels predicted: 2*1/(2+1)
    assert curve[50] == 0.0


def test_flat_slice_with_tumour():
    flat = np.zeros((1, 4, 4))  # a flat slice scales to all zeros: nothing is > t
    truth = np.zeros((1, 4, 4), bool)
    truth[0, 0, 0] = True
    assert np.all(dice_curves(flat, truth) == 0.0)  # tumour but nothing predicted
    thr, best = optimal_thresholds(flat, truth)
    assert thr[0] == 0.0 and best[0] == 0.0  # all tie at 0: the first wins


def test_empty_truth_is_refused_naming_the_images():
    # Rainio's slices all hold tumour; without tumour no threshold is optimal.
    images = np.random.default_rng(0).random((4, 3, 3))
    truths = np.zeros((4, 3, 3), bool)
    truths[0, 1, 1] = truths[2, 0, 0] = True
    for search in (dice_curves, optimal_thresholds, best_constant_threshold):
        with pytest.raises(ValueError, match=r"truth images 1, 3 \(2 of 4\) hold no tumour"):
            search(images, truths)
    with pytest.raises(ValueError, match="hold no tumour"):
        dice_at_thresholds(images, truths, 0.5)


def test_vectorised_equals_the_definition():
    rng = np.random.default_rng(3)
    images = rng.random((20, 16, 16)).round(2)  # many pixels exactly on grid values
    truths = images + rng.normal(0, 0.2, images.shape) > 0.6
    truths[:, 0, 0] = True
    fast = dice_curves(images, truths)
    np.testing.assert_allclose(fast, _loop_dice_curves(images, truths), rtol=0, atol=1e-15)
    thr, best = optimal_thresholds(images, truths)
    np.testing.assert_array_equal(thr, THRESHOLD_GRID[np.argmax(fast, axis=1)])
    np.testing.assert_array_equal(best, fast.max(axis=1))


def test_one_64x64_slice_with_values_on_the_grid():
    rng = np.random.default_rng(3)
    image = rng.uniform(size=(1, 64, 64)).astype(np.float32)
    image[0, ::7, ::5] = 0.41  # values exactly on grid points exercise the strict '>'
    truth = image > 0.6
    truth[0, :3] = ~truth[0, :3]
    np.testing.assert_array_equal(dice_curves(image, truth), _loop_dice_curves(image, truth))


def test_best_constant_threshold_uses_the_median():
    # Three slices whose Dice is 1 exactly on thresholds [0.2,0.3), [0.25,0.35), [0.9, ...).
    images = np.array([[[0.3, 0.2]], [[0.35, 0.25]], [[0.95, 0.9]]])
    truth = np.array([[[True, False]]] * 3)
    t, med = best_constant_threshold(images, truth)
    # At t in [0.25, 0.30): slices 1 and 2 are exact (1.0), slice 3 predicts both (2/3):
    # median 1.0; first such grid value is 0.25.
    assert t == 0.25 and med == 1.0
    np.testing.assert_allclose(dice_at_thresholds(images, truth, t), [1.0, 1.0, 2 / 3])


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match="same shape"):
        dice_curves(np.zeros((2, 4, 4)), np.zeros((2, 4, 5), bool))


def test_float32_fast_path_is_exact_at_grid_values():
    # float32 pixels on and next to grid values (0.29 is not representable: float32(0.29)
    # is above 0.29, its predecessor below), outside [0, 1], and the extremes 0 and 0.99.
    f = np.float32
    values = [f(0.29), np.nextafter(f(0.29), f(0)), f(0.5), f(0.0), f(0.99), f(-0.5), f(1.5)]
    rng = np.random.default_rng(5)
    images = np.tile(np.array(values, np.float32), (6, 1))
    images[:, :] = rng.permutation(images.T).T
    truths = rng.random(images.shape) > 0.5
    truths[:, 0] = True
    np.testing.assert_array_equal(dice_curves(images, truths), _loop_dice_curves(images, truths))
