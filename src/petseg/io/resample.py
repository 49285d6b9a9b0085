"""Resample a volume onto another voxel grid (e.g. CT onto the PET grid).

Both grids are described by their Geometry (index → LPS mm), so any pair of orientations
works. Each output voxel centre is mapped into the source grid's fractional indices and
interpolated with :func:`scipy.ndimage.map_coordinates` (order 1 = trilinear by
default). Voxels whose centre falls outside the source volume (more than half a voxel
beyond its outermost voxel centres) get ``fill`` (−1024 HU, air, for CT); within that
half voxel the edge values are extended, so a PET slice lying a hair beyond the last CT
slice centre still gets CT values.
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray

from petseg.study import Geometry

__all__ = ["DEFAULT_CT_FILL_HU", "fov_overlap_fraction", "resample_to_grid"]

#: Value given to voxels outside the source CT (air, in HU).
DEFAULT_CT_FILL_HU = -1024.0


def resample_to_grid(
    array: NDArray[np.generic],
    src_geometry: Geometry,
    dst_geometry: Geometry,
    order: int = 1,
    fill: float = DEFAULT_CT_FILL_HU,
) -> NDArray[np.float32]:
    """Resample ``array`` from ``src_geometry`` onto ``dst_geometry``.

    Parameters
    ----------
    array : (Z, Y, X) ndarray
        Values on ``src_geometry`` (e.g. CT in HU).
    src_geometry, dst_geometry : Geometry
    order : int
        Spline order: 0 nearest neighbour (use for labels), 1 trilinear (default).
    fill : float
        Value outside the source volume (default −1024 HU).

    Returns
    -------
    (Z, Y, X) float32 ndarray
        The volume on ``dst_geometry``.
    """
    from scipy import ndimage

    array = np.asarray(array)
    if array.shape != src_geometry.shape:
        raise ValueError(
            f"array shape {array.shape} does not match its source geometry {src_geometry.shape}"
        )
    if order not in range(6):
        raise ValueError(f"order must be a spline order 0..5, got {order!r}")
    if src_geometry.same_grid(dst_geometry, atol_mm=1e-4):
        return np.asarray(array, dtype=np.float32).copy()
    # dst index -> patient mm -> src index, as one 4x4 matrix; slice by slice to bound memory.
    index_map = np.linalg.inv(src_geometry.affine) @ dst_geometry.affine
    source = np.asarray(array, dtype=np.float64 if order > 1 else np.float32)
    if order > 1:
        source = ndimage.spline_filter(source, order=order, mode="nearest")
    upper = np.array(src_geometry.shape, dtype=np.float64) - 0.5
    jj, ii = np.mgrid[0 : dst_geometry.shape[1], 0 : dst_geometry.shape[2]]
    plane = np.stack([np.zeros(jj.size), jj.ravel(), ii.ravel()], axis=1)
    out = np.empty(dst_geometry.shape, dtype=np.float32)
    for k in range(dst_geometry.shape[0]):
        plane[:, 0] = k
        coords = plane @ index_map[:3, :3].T + index_map[:3, 3]
        values = ndimage.map_coordinates(
            source, coords.T, order=order, mode="nearest", prefilter=False
        )
        outside = np.any((coords < -0.5) | (coords > upper), axis=1)
        values[outside] = fill
        out[k] = values.reshape(dst_geometry.shape[1:])
    return out


def fov_overlap_fraction(src_geometry: Geometry, dst_geometry: Geometry) -> float:
    """Fraction of the destination grid's bounding box that lies inside the source volume.

    Computed on the axis-aligned (source index space) box of the destination's corners,
    so it is exact for parallel grids and an estimate for rotated ones. 0 means the
    fields of view do not overlap at all.

    Parameters
    ----------
    src_geometry : Geometry
        The grid resampled from.
    dst_geometry : Geometry
        The grid resampled onto.

    Returns
    -------
    float
        In [0, 1].
    """
    dst_corners = np.array(
        list(itertools.product(*[(-0.5, n - 0.5) for n in dst_geometry.shape])), dtype=np.float64
    )
    in_src = src_geometry.patient_to_index(dst_geometry.index_to_patient(dst_corners))
    low, high = in_src.min(axis=0), in_src.max(axis=0)
    src_low = np.full(3, -0.5)
    src_high = np.array(src_geometry.shape, dtype=np.float64) - 0.5
    overlap = np.clip(np.minimum(high, src_high) - np.maximum(low, src_low), 0.0, None)
    extent = np.maximum(high - low, 1e-12)
    return float(np.prod(overlap / extent))
