"""Rainio's optimal-threshold search: Dice against a grid of thresholds, per image.

Rainio et al. 2023 choose "the two-digit threshold value between 0 and 1 that gives
the maximum value of the Dice score": the grid is 0.00, 0.01, ..., 0.99, a pixel is
positive when ``pixel > t``, and when several thresholds reach the maximum the
smallest (first) wins. Images are 2D slices or 3D patches, stacked along axis 0.

Instead of thresholding every image 100 times, each pixel is given the number of grid
thresholds it exceeds (one ``searchsorted``); per-image histograms of that count then
give, by a reversed cumulative sum, the predicted-positive and true-positive counts at
every threshold at once. The result is identical to thresholding at each grid value.

Empty-truth rule: every truth image must hold tumour, and a stack with an empty truth
image is refused with an error naming the images. Rainio's 864 slices each hold 1-685
tumour pixels, so the paper never meets an empty truth, and without tumour Dice is 0 or
undefined at every threshold: no threshold is optimal. :func:`petseg.slices.build_slice_set`
keeps tumour slices only. Dice of a single mask against the truth with a declared policy
for empty masks is :func:`petseg.metrics.slice_dice` / :func:`petseg.metrics.pixel_metrics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from petseg.metrics import slice_dice

__all__ = [
    "THRESHOLD_GRID",
    "best_constant_threshold",
    "dice_at_thresholds",
    "dice_curves",
    "optimal_thresholds",
]

#: 0.00, 0.01, ..., 0.99 (float64; index k holds k/100).
THRESHOLD_GRID: NDArray[np.float64] = np.arange(100) / 100.0


def _check_stack(
    images: ArrayLike, masks: ArrayLike
) -> tuple[NDArray[np.generic], NDArray[np.bool_]]:
    """Images and truths flattened to ``(N, pixels)``; refuses an empty truth image."""
    x = np.asarray(images)
    m = np.asarray(masks)
    if x.shape != m.shape:
        raise ValueError(f"images and masks must have the same shape, got {x.shape} and {m.shape}")
    if x.ndim < 2:
        raise ValueError(f"expected (N, ...) stacks of images, got shape {x.shape}")
    n = x.shape[0]
    m = m.reshape(n, -1).astype(bool, copy=False)
    empty = np.flatnonzero(~m.any(axis=1))
    if empty.size:
        shown = ", ".join(str(i) for i in empty[:10]) + (", ..." if empty.size > 10 else "")
        raise ValueError(
            f"truth images {shown} ({empty.size} of {n}) hold no tumour; the threshold search "
            "needs tumour in every image (drop the empty ones, as petseg slices build does)"
        )
    return x.reshape(n, -1), m


def _grid_counts(x: NDArray[Any], grid: NDArray[np.float64]) -> NDArray[np.int64]:
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
    images: ArrayLike, masks: ArrayLike, grid: ArrayLike = THRESHOLD_GRID
) -> NDArray[np.float64]:
    """Dice of ``images > t`` against ``masks`` for every ``t`` in ``grid``.

    Parameters
    ----------
    images : (N, ...) float ndarray
        Slices (or patches), usually scaled to [0, 1] per image.
    masks : (N, ...) bool ndarray
        Ground truth of the same shape; every image must hold tumour.
    grid : (T,) float64 ndarray
        Strictly increasing thresholds (default 0.00-0.99 by 0.01).

    Returns
    -------
    (N, T) float64 ndarray
        Dice in [0, 1] of each image at each threshold.
    """
    x, m = _check_stack(images, masks)
    thr = np.asarray(grid, dtype=np.float64)
    if thr.ndim != 1 or np.any(np.diff(thr) <= 0):
        raise ValueError("grid must be a 1D strictly increasing array of thresholds")
    n, t = x.shape[0], thr.size
    # count = number of grid thresholds strictly below the pixel value, so that
    # pixel > grid[k]  <=>  k < count.
    count = _grid_counts(x, thr).reshape(n, -1)
    keys = (count + (np.arange(n, dtype=np.int64) * (t + 1))[:, None]).ravel()
    hist_all = np.bincount(keys, minlength=n * (t + 1)).reshape(n, t + 1)
    hist_pos = np.bincount(keys[m.ravel()], minlength=n * (t + 1)).reshape(n, t + 1)
    # predicted(k) = #{count > k} = reversed cumulative sum from bin k+1.
    pred = np.cumsum(hist_all[:, ::-1], axis=1)[:, ::-1][:, 1:]
    tp = np.cumsum(hist_pos[:, ::-1], axis=1)[:, ::-1][:, 1:]
    truth = np.count_nonzero(m, axis=1)[:, None]
    return np.asarray(2.0 * tp / (pred + truth), dtype=np.float64)


def optimal_thresholds(
    images: ArrayLike, masks: ArrayLike, grid: ArrayLike = THRESHOLD_GRID
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-image optimal threshold (first maximum of Dice on ``grid``) and its Dice.

    Parameters
    ----------
    images, masks : (N, ...) ndarray
        Float images and their bool truth, as in :func:`dice_curves`.
    grid : (T,) float64 ndarray
        The thresholds (default 0.00-0.99 by 0.01).

    Returns
    -------
    thresholds : (N,) float64 ndarray
        The lowest grid value reaching each image's maximal Dice.
    best_dice : (N,) float64 ndarray
        That maximal Dice.
    """
    curves = dice_curves(images, masks, grid)
    best = np.argmax(curves, axis=1)
    return np.asarray(grid, dtype=np.float64)[best], curves[np.arange(len(best)), best]


def best_constant_threshold(
    images: ArrayLike, masks: ArrayLike, grid: ArrayLike = THRESHOLD_GRID
) -> tuple[float, float]:
    """The one threshold of ``grid`` with the highest *median* Dice over all images.

    Rainio's first method: one constant threshold for every slice, chosen for the best
    median Dice (the first grid value wins among ties).

    Parameters
    ----------
    images, masks : (N, ...) ndarray
        Float images and their bool truth (tumour in every image).
    grid : (T,) float64 ndarray
        Candidate thresholds, increasing (default 0.00-0.99 by 0.01).

    Returns
    -------
    threshold : float
        The chosen grid value.
    median_dice : float
        The median Dice over the images at that threshold.
    """
    medians = np.median(dice_curves(images, masks, grid), axis=0)
    k = int(np.argmax(medians))
    return float(np.asarray(grid, dtype=np.float64)[k]), float(medians[k])


def dice_at_thresholds(
    images: ArrayLike, masks: ArrayLike, thresholds: ArrayLike
) -> NDArray[np.float64]:
    """Dice of ``images[n] > thresholds[n]`` against ``masks[n]``, per image.

    Parameters
    ----------
    images : (N, ...) float ndarray
        Slices (or patches).
    masks : (N, ...) bool ndarray
        Ground truth of the same shape; every image must hold tumour.
    thresholds : (N,) float ndarray or float
        One threshold per image, or one for all.

    Returns
    -------
    (N,) float64 ndarray
        Dice in [0, 1].
    """
    x, m = _check_stack(images, masks)
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (x.shape[0],))
    return slice_dice(x.astype(np.float64, copy=False) > thr[:, None], m, axis=0)
