"""Dice against a grid of thresholds, vectorised over slices (or 3D patches).

Rainio et al. 2023 choose "the two-digit threshold value between 0 and 1 that gives
the maximum value of the Dice score": the grid is 0.00, 0.01, ..., 0.99, a pixel is
positive when ``pixel > t``, and when several thresholds reach the maximum the
smallest (first) wins.

Instead of thresholding every image 100 times, each pixel is given the number of grid
thresholds it exceeds (one ``searchsorted``); per-image histograms of that count then
give, by a reversed cumulative sum, the predicted-positive and true-positive counts at
every threshold at once. The result is identical to the per-threshold loop
(:func:`dice_curves_loop`, kept as the reference the tests and benchmark compare with).

Empty-mask policy: when the truth is empty, Dice is 1 for an empty prediction and 0
otherwise (the tumour slices of the paper are never empty; the policy only matters for
user data).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "THRESHOLD_GRID",
    "best_constant_threshold",
    "dice",
    "dice_at_thresholds",
    "dice_curves",
    "dice_curves_loop",
    "optimal_thresholds",
]

#: 0.00, 0.01, ..., 0.99 (float64; index k holds k/100).
THRESHOLD_GRID: NDArray[np.float64] = np.arange(100) / 100.0


def _check_pair(images: NDArray, masks: NDArray) -> tuple[NDArray, NDArray]:
    images = np.asarray(images)
    masks = np.asarray(masks)
    if images.shape != masks.shape:
        raise ValueError(
            f"images and masks must have the same shape, got {images.shape} and {masks.shape}"
        )
    if images.ndim < 2:
        raise ValueError(f"expected (N, ...) stacks of images, got shape {images.shape}")
    n = images.shape[0]
    return images.reshape(n, -1), masks.reshape(n, -1).astype(bool, copy=False)


def _dice_from_counts(tp: NDArray, pred: NDArray, truth: NDArray) -> NDArray[np.float64]:
    denom = pred + truth
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 1.0)
    return out.astype(np.float64)


def dice(pred: NDArray[np.bool_], truth: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Dice ``2TP / (2TP + FP + FN)`` of each image in an ``(N, ...)`` stack.

    Returns
    -------
    (N,) float64 ndarray; 1.0 where both prediction and truth are empty.
    """
    p, t = _check_pair(pred, truth)
    p = p.astype(bool, copy=False)
    tp = np.count_nonzero(p & t, axis=1)
    return _dice_from_counts(tp, np.count_nonzero(p, axis=1), np.count_nonzero(t, axis=1))


def _grid_counts(x: NDArray[np.floating], grid: NDArray[np.float64]) -> NDArray[np.int64]:
    """Number of ``grid`` values strictly below each pixel (exact, in float64 semantics).

    For float32 pixels on the 0.00-0.99 grid this avoids a binary search: the guess
    ``ceil(100·x)`` is corrected by one step either way against float32 bounds ``b[k]``
    (the largest float32 not above ``grid[k]``, so ``x > grid[k] <=> x > b[k]``).
    """
    if x.dtype != np.float32 or not np.array_equal(grid, THRESHOLD_GRID):
        return np.searchsorted(grid, x.astype(np.float64, copy=False).ravel(), side="left")
    bounds = grid.astype(np.float32)
    bounds = np.where(bounds > grid, np.nextafter(bounds, np.float32(-np.inf)), bounds)
    bounds = np.append(bounds, np.float32(np.inf)).astype(np.float32)  # sentinel for 100
    guess = np.ceil(np.clip(x.ravel(), 0.0, 1.0) * np.float32(100)).astype(np.int64)
    below = np.maximum(guess - 1, 0)
    guess -= (guess > 0) & (x.ravel() <= bounds[below])
    guess += (guess < 100) & (x.ravel() > bounds[guess])
    return guess


def dice_curves(
    images: NDArray[np.floating],
    masks: NDArray[np.bool_],
    grid: NDArray[np.float64] = THRESHOLD_GRID,
) -> NDArray[np.float64]:
    """Dice of ``images > t`` against ``masks`` for every ``t`` in ``grid``.

    Parameters
    ----------
    images : (N, ...) float ndarray
        Slices (or patches), usually scaled to [0, 1].
    masks : (N, ...) bool ndarray
        Ground truth of the same shape.
    grid : (T,) increasing float64 ndarray
        Thresholds (default 0.00-0.99 by 0.01).

    Returns
    -------
    (N, T) float64 ndarray
    """
    x, m = _check_pair(images, masks)
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or np.any(np.diff(grid) <= 0):
        raise ValueError("grid must be a 1D strictly increasing array of thresholds")
    n, t = x.shape[0], grid.size
    # count = number of grid thresholds strictly below the pixel value, so that
    # pixel > grid[k]  <=>  k < count.
    count = _grid_counts(x, grid).reshape(n, -1)
    keys = (count + (np.arange(n, dtype=np.int64) * (t + 1))[:, None]).ravel()
    hist_all = np.bincount(keys, minlength=n * (t + 1)).reshape(n, t + 1)
    hist_pos = np.bincount(keys[m.ravel()], minlength=n * (t + 1)).reshape(n, t + 1)
    # predicted(k) = #{count > k} = reversed cumulative sum from bin k+1.
    pred = np.cumsum(hist_all[:, ::-1], axis=1)[:, ::-1][:, 1:]
    tp = np.cumsum(hist_pos[:, ::-1], axis=1)[:, ::-1][:, 1:]
    truth = np.count_nonzero(m, axis=1)[:, None]
    return _dice_from_counts(tp, pred, truth)


def dice_curves_loop(
    images: NDArray[np.floating],
    masks: NDArray[np.bool_],
    grid: NDArray[np.float64] = THRESHOLD_GRID,
) -> NDArray[np.float64]:
    """Reference implementation of :func:`dice_curves`: one Python loop per threshold."""
    x, m = _check_pair(images, masks)
    x = x.astype(np.float64, copy=False)
    out = np.empty((x.shape[0], len(grid)))
    for k, thr in enumerate(np.asarray(grid, dtype=np.float64)):
        pred = x > thr
        tp = np.count_nonzero(pred & m, axis=1)
        out[:, k] = _dice_from_counts(tp, np.count_nonzero(pred, axis=1), m.sum(axis=1))
    return out


def optimal_thresholds(
    images: NDArray[np.floating],
    masks: NDArray[np.bool_],
    grid: NDArray[np.float64] = THRESHOLD_GRID,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-image optimal threshold (first maximum of Dice on ``grid``) and its Dice.

    Returns
    -------
    thresholds, best_dice : (N,) float64 ndarrays
    """
    curves = dice_curves(images, masks, grid)
    best = np.argmax(curves, axis=1)
    return np.asarray(grid, dtype=np.float64)[best], curves[np.arange(len(best)), best]


def best_constant_threshold(
    images: NDArray[np.floating],
    masks: NDArray[np.bool_],
    grid: NDArray[np.float64] = THRESHOLD_GRID,
) -> tuple[float, float]:
    """The one threshold of ``grid`` with the highest *median* Dice over all images.

    Returns
    -------
    threshold, median_dice : float
    """
    medians = np.median(dice_curves(images, masks, grid), axis=0)
    k = int(np.argmax(medians))
    return float(np.asarray(grid)[k]), float(medians[k])


def dice_at_thresholds(
    images: NDArray[np.floating],
    masks: NDArray[np.bool_],
    thresholds: NDArray[np.floating] | float,
) -> NDArray[np.float64]:
    """Dice of ``images[n] > thresholds[n]`` (or one threshold for all) per image."""
    x, m = _check_pair(images, masks)
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (x.shape[0],))
    return dice(x.astype(np.float64, copy=False) > thr[:, None], m)
