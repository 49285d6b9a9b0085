"""Reference volumes of interest (VOIs) in normal liver or spleen and their SUV statistics.

Carlsen et al. 2022 place a region of interest in normal liver (spleen when the liver is
fully involved) and derive the patient's threshold from its SUVmean and SD. petseg's
default VOI is a sphere of radius 15 mm (3 cm diameter).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from petseg.study import Geometry

__all__ = [
    "DEFAULT_SPHERE_RADIUS_MM",
    "ReferenceStats",
    "reference_stats",
    "sphere_kernel",
    "sphere_mask",
]

DEFAULT_SPHERE_RADIUS_MM = 15.0
#: A VOI with fewer voxels gives an SD too noisy to set a threshold with.
MIN_REFERENCE_VOXELS = 10


@dataclass(frozen=True)
class ReferenceStats:
    """SUV statistics inside a reference VOI.

    Attributes
    ----------
    mean : float
        SUVmean in g/mL.
    sd : float
        Sample SD (ddof=1) of the SUV in g/mL.
    voxels : int
        Number of voxels in the VOI.
    volume_ml : float
        VOI volume in mL.
    description : str
        How the VOI was defined (recorded in reports).
    """

    mean: float
    sd: float
    voxels: int
    volume_ml: float
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The statistics under their field names."""
        return asdict(self)


def sphere_mask(
    geometry: Geometry,
    centre: tuple[float, float, float],
    radius_mm: float = DEFAULT_SPHERE_RADIUS_MM,
    units: Literal["mm", "voxel"] = "mm",
) -> NDArray[np.bool_]:
    """Boolean ``(Z, Y, X)`` mask of the voxels whose centres lie within a sphere.

    Parameters
    ----------
    geometry : Geometry
        The image grid.
    centre : (3,) tuple of float
        Sphere centre: LPS patient coordinates ``(x, y, z)`` in mm with ``units="mm"``,
        array indices ``(k, j, i)`` (may be fractional) with ``units="voxel"``.
    radius_mm : float
        Radius in mm (always mm, whatever ``units`` is).
    units : {"mm", "voxel"}
        How ``centre`` is given.

    Returns
    -------
    (Z, Y, X) bool ndarray
        The sphere on ``geometry``.

    Raises
    ------
    ValueError
        If the radius is not positive or the sphere holds no voxel of the image.
    """
    if radius_mm <= 0:
        raise ValueError(f"reference sphere radius must be positive, got {radius_mm} mm")
    if units == "mm":
        centre_mm = np.asarray(centre, dtype=np.float64)
    elif units == "voxel":
        centre_mm = geometry.index_to_patient(np.asarray(centre, dtype=np.float64))
    else:
        raise ValueError(f"units must be 'mm' or 'voxel', got {units!r}")
    centre_idx = geometry.patient_to_index(centre_mm)
    spacing = np.asarray(geometry.spacing)
    half = np.ceil(radius_mm / spacing).astype(int) + 1
    lo = np.maximum(np.floor(centre_idx).astype(int) - half, 0)
    hi = np.minimum(np.ceil(centre_idx).astype(int) + half + 1, geometry.shape)
    mask = np.zeros(geometry.shape, dtype=bool)
    if np.any(hi <= lo):
        raise ValueError(
            f"reference sphere at {tuple(np.round(centre_mm, 1))} mm (index "
            f"{tuple(np.round(centre_idx, 1))}) lies outside the image of shape {geometry.shape}; "
            "give the centre in patient mm (x,y,z) or voxel indices (k,j,i) inside the image"
        )
    grid = np.stack(
        np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi, strict=True)), indexing="ij"), axis=-1
    )
    dist = np.linalg.norm(geometry.index_to_patient(grid) - centre_mm, axis=-1)
    mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = dist <= radius_mm
    if not mask.any():
        raise ValueError(
            f"reference sphere at {tuple(np.round(centre_mm, 1))} mm with radius {radius_mm} mm "
            "contains no voxel centre of the image; move it inside the image or enlarge it"
        )
    return mask


def sphere_kernel(geometry: Geometry, radius_mm: float) -> NDArray[np.bool_]:
    """The voxel offsets of a sphere centred on a voxel centre, as an odd-sized bool kernel.

    ``sphere_kernel(g, r)`` placed with its centre on voxel ``(k, j, i)`` selects exactly
    the voxels of ``sphere_mask(g, (k, j, i), r, units="voxel")`` (a voxel is in when its
    centre lies within ``radius_mm``, distances measured with the grid's affine).

    Parameters
    ----------
    geometry : Geometry
        The image grid; its 3×3 affine part sets the voxel steps in mm.
    radius_mm : float
        Radius in mm.

    Returns
    -------
    (2a+1, 2b+1, 2c+1) bool ndarray
        The sphere, its centre at index ``(a, b, c)``.
    """
    if radius_mm <= 0:
        raise ValueError(f"sphere radius must be positive, got {radius_mm} mm")
    half = np.ceil(radius_mm / np.asarray(geometry.spacing)).astype(int)
    grid = np.stack(np.meshgrid(*(np.arange(-h, h + 1) for h in half), indexing="ij"), axis=-1)
    dist = np.linalg.norm(grid @ geometry.affine[:3, :3].T, axis=-1)
    return np.asarray(dist <= radius_mm)


def reference_stats(
    suv: NDArray[np.floating],
    mask: NDArray[np.bool_],
    geometry: Geometry,
    description: str = "",
    body: NDArray[np.bool_] | None = None,
) -> ReferenceStats:
    """SUVmean and SD (ddof=1) of ``suv`` inside ``mask``.

    Parameters
    ----------
    suv : (Z, Y, X) float ndarray
        SUVbw in g/mL.
    mask : (Z, Y, X) bool ndarray
        The reference VOI.
    geometry : Geometry
        Grid of both, for the VOI volume in mL.
    description : str
        How the VOI was defined (recorded in reports).
    body : (Z, Y, X) bool ndarray, optional
        Body mask; a VOI mostly outside it is refused.

    Returns
    -------
    ReferenceStats

    Raises
    ------
    ValueError
        If the VOI has fewer than 10 voxels, or more than half of it lies outside the body.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != suv.shape:
        raise ValueError(
            f"reference mask shape {mask.shape} differs from the PET shape {suv.shape}"
        )
    voxels = int(mask.sum())
    if voxels < MIN_REFERENCE_VOXELS:
        raise ValueError(
            f"reference VOI ({description or 'mask'}) has {voxels} voxels; at least "
            f"{MIN_REFERENCE_VOXELS} are needed for a stable SD — enlarge the sphere or mask"
        )
    if body is not None and np.count_nonzero(mask & body) < 0.5 * voxels:
        raise ValueError(
            f"reference VOI ({description or 'mask'}) lies mostly outside the body contour; "
            "place it in normal liver or spleen tissue"
        )
    values = suv[mask].astype(np.float64)
    return ReferenceStats(
        mean=float(values.mean()),
        sd=float(values.std(ddof=1)),
        voxels=voxels,
        volume_ml=voxels * geometry.voxel_volume_ml,
        description=description,
    )
