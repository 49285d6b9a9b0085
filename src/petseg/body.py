"""Body contour from the PET signal (Carlsen et al. 2022 post-processing).

Method
------
1. Smooth the SUV image with a Gaussian of ``smoothing_fwhm_mm`` (default 6 mm), so
   noise in air does not enter the mask.
2. Keep voxels above ``threshold_suv`` (default 0.15 g/mL). Air and the scanner bed
   are near 0 in attenuation-corrected PET; all tissues, even lung, take up more.
3. Keep the largest 26-connected component (the patient; drops isolated noise and
   external sources such as an injection line on the bed).
4. Fill holes in every axial slice (lungs, bowel gas), then in 3D.
5. Dilate by ``margin_mm`` (default 4 mm) so superficial lesions at the skin are kept.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petseg.lesions import label_components
from petseg.study import Geometry

__all__ = ["BODY_MARGIN_MM", "BODY_SMOOTHING_FWHM_MM", "BODY_THRESHOLD_SUV", "body_mask"]

BODY_THRESHOLD_SUV = 0.15
BODY_SMOOTHING_FWHM_MM = 6.0
BODY_MARGIN_MM = 4.0
_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def body_mask(
    suv: NDArray[np.floating],
    geometry: Geometry,
    *,
    threshold_suv: float = BODY_THRESHOLD_SUV,
    smoothing_fwhm_mm: float = BODY_SMOOTHING_FWHM_MM,
    margin_mm: float = BODY_MARGIN_MM,
) -> NDArray[np.bool_]:
    """Boolean ``(Z, Y, X)`` mask of the patient's body, derived from PET alone.

    Parameters
    ----------
    suv : (Z, Y, X) SUVbw in g/mL
    geometry : the grid (spacing in mm sets the smoothing and margin in voxels)
    threshold_suv : SUV (g/mL) separating tissue from air after smoothing
    smoothing_fwhm_mm : Gaussian FWHM in mm (0 disables smoothing)
    margin_mm : dilation of the final mask in mm (0 disables it)

    Raises
    ------
    ValueError
        If no voxel exceeds the threshold (an empty or non-SUV image).
    """
    spacing = np.asarray(geometry.spacing)
    image = np.asarray(suv, dtype=np.float32)
    if smoothing_fwhm_mm > 0:
        image = ndimage.gaussian_filter(image, sigma=smoothing_fwhm_mm * _FWHM_TO_SIGMA / spacing)
    above = image > threshold_suv
    if not above.any():
        raise ValueError(
            f"no voxel of the smoothed PET exceeds {threshold_suv} g/mL, so no body contour "
            "can be found; is the image in SUV (g/mL)?"
        )
    labels = label_components(above, connectivity=26)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))
    for k in range(body.shape[0]):
        body[k] = ndimage.binary_fill_holes(body[k])
    body = ndimage.binary_fill_holes(body)
    if margin_mm > 0:
        radius = np.maximum(np.round(margin_mm / spacing).astype(int), 0)
        grids = np.ogrid[tuple(slice(-r, r + 1) for r in radius)]
        ball = sum((g * s / margin_mm) ** 2 for g, s in zip(grids, spacing, strict=True)) <= 1.0
        body = ndimage.binary_dilation(body, structure=np.asarray(ball))
    return np.asarray(body, dtype=bool)
