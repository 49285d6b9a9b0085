"""Coarse first view of a large study, shown while the full-resolution images load.

A browser without a GPU (software WebGL, e.g. a virtual desktop) spends time in
proportion to the voxels it uploads: a 336 × 336 × 300 PET/CT with its lesion map
takes tens of seconds before anything is drawn. The review page therefore first shows
the study reduced by an integer factor per axis, with at most ``PREVIEW_VOXELS`` voxels
per volume, then replaces it with the full-resolution images. Edits wait for the full
resolution; the preview only has to show the patient and the lesions at once.

Reductions over ``step``³ blocks:

* PET: block maximum, so a lesion smaller than a block still shows at its SUVmax;
* CT: block mean (HU);
* lesion labels: block maximum, so every lesion keeps at least one preview voxel.

Arrays are ``(Z, Y, X)``; affines map ``(k, j, i, 1)`` to LPS millimetres
(:class:`petseg.study.Geometry`).
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import numpy as np
from numpy.typing import NDArray

PREVIEW_VOXELS = 1_500_000
"""Largest number of voxels of one preview volume (about 6 MB of float32)."""

Reduction = Literal["max", "mean"]


def preview_step(shape: tuple[int, int, int], max_voxels: int = PREVIEW_VOXELS) -> int:
    """Smallest integer factor that brings a ``(Z, Y, X)`` volume to ``max_voxels`` or fewer.

    Returns 1 when the volume is already small enough (no preview needed).

    Parameters
    ----------
    shape : (Z, Y, X) tuple of int
        Shape of the full-resolution volume.
    max_voxels : int
        Largest voxel count of the preview (positive).

    Returns
    -------
    int

    Examples
    --------
    >>> preview_step((300, 336, 336))
    3
    >>> preview_step((20, 32, 32))
    1
    """
    if max_voxels < 1:
        raise ValueError(f"max_voxels must be positive, got {max_voxels}")
    step = 1
    while math.prod(math.ceil(s / step) for s in shape) > max_voxels:
        step += 1
    return step


def preview_volume(
    volume: NDArray[np.generic], step: int, reduce: Reduction
) -> NDArray[np.generic]:
    """Reduce a ``(Z, Y, X)`` volume by ``step`` along every axis (block max or mean).

    Blocks at the far edges that stick out of the volume are completed with the
    volume's minimum, so they do not change a maximum and pull a mean towards the
    background (air in CT, 0 in PET and labels) — as the edge of the field of view is.
    The result equals ``skimage.measure.block_reduce(volume, (step,) * 3, func,
    cval=volume.min())`` (tested); it is computed as an element-wise maximum (or sum) of
    the ``step³`` strided sub-grids, 5× faster than block_reduce's maximum over a 6-D
    view (0.08 s against 0.39 s for 300 × 336 × 336 float32, step 3).

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        PET (SUV g/mL), CT (HU) or a label map.
    step : int
        Reduction factor along every axis (1: the volume itself).
    reduce : {"max", "mean"}
        Block maximum (PET, labels: small lesions stay visible) or block mean (CT).

    Returns
    -------
    ``(ceil(Z/step), ceil(Y/step), ceil(X/step))`` array: the input's dtype for ``"max"``,
    float32 for ``"mean"``.
    """
    if step < 1:
        raise ValueError(f"step must be at least 1, got {step}")
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    if step == 1:
        return volume
    missing = [(0, -n % step) for n in volume.shape]
    if any(after for _, after in missing):
        volume = np.pad(volume, missing, constant_values=volume.min())
    grids = (
        volume[k::step, j::step, i::step] for k, j, i in itertools.product(range(step), repeat=3)
    )
    if reduce == "max":
        out = next(grids).copy()
        for grid in grids:
            np.maximum(out, grid, out=out)
        return out
    total = next(grids).astype(np.float32)
    for grid in grids:
        np.add(total, grid, out=total)
    total /= step**3
    return total


def preview_affine(affine: NDArray[np.floating], step: int) -> NDArray[np.float64]:
    """Affine of the reduced grid: voxel ``p`` sits at the centre of its full block.

    Full-resolution voxels ``step·p … step·p + step − 1`` make preview voxel ``p``, so its
    centre is full-resolution index ``step·p + (step − 1) / 2`` along each axis.

    Parameters
    ----------
    affine : (4, 4) float ndarray
        Voxel index (k, j, i) to patient LPS mm of the full grid.
    step : int
        The reduction factor of :func:`preview_volume`.

    Returns
    -------
    (4, 4) float64 ndarray
    """
    scale = np.diag([float(step)] * 3 + [1.0])
    scale[:3, 3] = (step - 1) / 2.0
    return np.asarray(affine, dtype=np.float64) @ scale
