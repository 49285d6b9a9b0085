"""The Carlsen et al. 2022 post-processing of a binary segmentation.

Order: remove everything outside the PET body contour, remove user exclusion masks
(e.g. bladder, kidneys), label connected components, drop components below 0.1 mL.
The same function serves the threshold pipeline and the networks' outputs.
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
    labels_mostly_inside,
    min_voxels_for_volume,
    relabel_sequential,
    remove_labels,
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
    organ_exclusions: Sequence[NDArray[np.bool_]] = (),
    organ_fraction: float = 0.5,
) -> NDArray[np.int32]:
    """Turn a binary ``(Z, Y, X)`` segmentation into a cleaned lesion label map.

    Parameters
    ----------
    mask : (Z, Y, X) bool, voxels segmented as tumour
    suv : (Z, Y, X) SUVbw in g/mL (for the body contour)
    geometry : the grid (voxel volume for the minimum volume)
    min_volume_ml : components smaller than this (mL) are removed; 0 keeps all
    connectivity : 6, 18 or 26 for lesion components
    body : True derives the body contour from PET (`petseg.body.body_mask`), False skips
        it, an array is used as the body mask
    exclusions : (Z, Y, X) bool masks whose voxels are removed
    organ_exclusions : (Z, Y, X) bool masks of organs with physiological uptake (kidneys,
        spleen, bladder, adrenals…); every lesion with at least ``organ_fraction`` of its
        voxels inside one is removed whole, as the physician does by label in Carlsen et al.

    Returns
    -------
    (Z, Y, X) int32 ndarray, lesion labels 1..N
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
    min_voxels = (
        min_voxels_for_volume(min_volume_ml, geometry.voxel_volume_ml) if min_volume_ml > 0 else 0
    )
    labels = label_components(keep, connectivity, min_voxels=min_voxels)
    physiological: set[int] = set()
    for n, organ in enumerate(organ_exclusions):
        if np.shape(organ) != mask.shape:
            raise ValueError(f"organ mask {n} has shape {np.shape(organ)}, expected {mask.shape}")
        physiological.update(labels_mostly_inside(labels, organ, organ_fraction))
    if physiological:
        labels = relabel_sequential(remove_labels(labels, sorted(physiological)))
    return labels
