"""Body contour from the PET signal (Carlsen et al. 2022 post-processing).

Method
------
1. Smooth the SUV image with a Gaussian of ``smoothing_fwhm_mm`` (default 6 mm), so
   noise in air does not enter the mask.
2. Keep voxels above ``threshold_suv`` (default 0.15 g/mL). Air and the scanner bed
   are near 0 in attenuation-corrected PET; all tissues, even lung, take up more.
3. Keep the largest 26-connected component (the patient; drops isolated noise and
   external sources such as an injection line on the bed).
4. Fill holes in every axial slice (lungs, bowel gas). A 3D fill afterwards would change
   nothing: every background voxel left is joined, within its slice, to the image border.
5. Dilate by ``margin_mm`` (default 4 mm) so superficial lesions at the skin are kept.

Speed: the slice fill labels each slice's background with cc3d (4-connected, as
``scipy.ndimage.binary_fill_holes``), and the dilation is the union of the mask shifted by
every offset of the ellipsoid, so a whole-body study (505 x 180 x 187 voxels) takes about
1 s instead of 3-7 s; the mask is identical to the scipy version voxel for voxel
(``tests/test_body.py``).
"""

from __future__ import annotations

import cc3d
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petseg.lesions import label_components
from petseg.study import Geometry

__all__ = [
    "BODY_MARGIN_MM",
    "BODY_SMOOTHING_FWHM_MM",
    "BODY_THRESHOLD_SUV",
    "body_mask",
    "dilate_ellipsoid",
    "fill_holes_by_slice",
]

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
    body = fill_holes_by_slice(labels == int(np.argmax(sizes)))
    if margin_mm > 0:
        body = dilate_ellipsoid(body, spacing, margin_mm)
    return body


def fill_holes_by_slice(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Fill the holes of every axial slice of a ``(Z, Y, X)`` mask.

    A hole is a 4-connected background region of a slice that does not touch the slice's
    border: the result equals ``scipy.ndimage.binary_fill_holes`` applied slice by slice.

    Parameters
    ----------
    mask : (Z, Y, X) bool ndarray

    Returns
    -------
    (Z, Y, X) bool ndarray, a new array
    """
    filled = np.array(mask, dtype=bool)
    for k in np.flatnonzero(filled.any(axis=(1, 2))):
        background = cc3d.connected_components(~filled[k], connectivity=4)
        edges = (background[0], background[-1], background[:, 0], background[:, -1])
        filled[k] |= ~np.isin(background, np.concatenate(edges))
    return filled


def dilate_ellipsoid(
    mask: NDArray[np.bool_], spacing: NDArray[np.floating], margin_mm: float
) -> NDArray[np.bool_]:
    """Dilate a ``(Z, Y, X)`` mask by an ellipsoid of radius ``margin_mm`` in mm.

    The ellipsoid holds every voxel offset whose length in mm is at most ``margin_mm``;
    the result equals ``scipy.ndimage.binary_dilation`` with that structuring element
    (nothing enters from outside the array), computed as the union of shifted copies.

    Parameters
    ----------
    mask : (Z, Y, X) bool ndarray
    spacing : (3,) voxel size (z, y, x) in mm
    margin_mm : float, > 0, radius in mm

    Returns
    -------
    (Z, Y, X) bool ndarray, a new array
    """
    radius = np.maximum(np.round(margin_mm / spacing).astype(int), 0)
    grids = np.ogrid[tuple(slice(-r, r + 1) for r in radius)]
    ball = sum((g * s / margin_mm) ** 2 for g, s in zip(grids, spacing, strict=True)) <= 1.0
    dilated = np.array(mask, dtype=bool)
    shape = dilated.shape
    for offset in np.argwhere(ball) - radius:
        if not offset.any():
            continue
        source = tuple(slice(max(0, -o), n - max(0, o)) for o, n in zip(offset, shape, strict=True))
        target = tuple(slice(max(0, o), n - max(0, -o)) for o, n in zip(offset, shape, strict=True))
        dilated[target] |= mask[source]
    return dilated
