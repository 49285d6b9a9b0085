"""The Carlsen et al. 2022 post-processing of a binary segmentation.

Order: remove everything outside the PET body contour, remove user exclusion masks,
label connected components, drop components below 0.1 mL. The same function serves the
threshold pipeline and the networks' outputs; physiological uptake in organs is removed
afterwards by :func:`petseg.organs.remove_organ_uptake`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from petseg.body import body_mask
from petseg.lesions import (
    DEFAULT_CONNECTIVITY,
    MIN_LESION_VOLUME_ML,
    label_components,
    min_voxels_for_volume,
)
from petseg.study import Geometry

__all__ = ["postprocess"]


def postprocess(
    mask: NDArray[np.bool_],
    suv: NDArray[np.floating],
    geometry: Geometry,
    *,
    min_volume_ml: float = MIN_LESION_VOLUME_ML,
    connectivity: int = DEFAULT_CONNECTIVITY,
    body: bool | NDArray[np.bool_] = True,
    exclusions: Sequence[NDArray[np.bool_]] = (),
) -> NDArray[np.int32]:
    """Turn a binary ``(Z, Y, X)`` segmentation into a cleaned lesion label map.

    Parameters
    ----------
    mask : (Z, Y, X) bool ndarray
        Voxels segmented as tumour.
    suv : (Z, Y, X) float ndarray
        SUVbw in g/mL (for the body contour).
    geometry : Geometry
        The grid (voxel volume for the minimum volume).
    min_volume_ml : float
        Components smaller than this (mL) are removed; 0 keeps all.
    connectivity : int
        6, 18 or 26, for lesion components.
    body : bool or (Z, Y, X) bool ndarray
        True derives the body contour from the PET (:func:`petseg.body.body_mask`), False
        skips it, an array is used as the body mask.
    exclusions : sequence of (Z, Y, X) bool ndarray
        Masks whose voxels are removed.

    Returns
    -------
    (Z, Y, X) int32 ndarray
        Lesion labels 1..N, 0 background.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != geometry.shape or suv.shape != geometry.shape:
        raise ValueError(
            f"mask {mask.shape}, SUV {suv.shape} and geometry {geometry.shape} must share one shape"
        )
    keep = mask.copy()
    if body is True:
        keep &= body_mask(suv, geometry)
    elif body is not False:
        body_array = np.asarray(body, dtype=bool)
        if body_array.shape != mask.shape:
            raise ValueError(f"body mask shape {body_array.shape} differs from {mask.shape}")
        keep &= body_array
    for n, exclusion in enumerate(exclusions):
        exclusion = np.asarray(exclusion, dtype=bool)
        if exclusion.shape != mask.shape:
            raise ValueError(
                f"exclusion mask {n} has shape {exclusion.shape}, expected {mask.shape}"
            )
        keep &= ~exclusion
    min_voxels = min_voxels_for_volume(min_volume_ml, geometry.voxel_volume_ml)
    return label_components(keep, connectivity, min_voxels=min_voxels)
