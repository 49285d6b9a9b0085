"""Manual corrections of a lesion map: add a lesion from a seed point.

Carlsen et al. 2022 (discussion): missed lesions are added "as seed point, where a seed
is placed in the lesion, and a SUV threshold is used for determining the outline" — the
liver-based threshold, a fixed SUV or an adaptive 40 % of SUVmax. Removing lesions by
label is :func:`petseg.lesions.remove_labels`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.checks import check_choice
from petseg.lesions import DEFAULT_CONNECTIVITY
from petseg.reference import ReferenceStats
from petseg.study import Geometry
from petseg.threshold import DEFAULT_PERCENT_MAX, reference_threshold, region_grow

__all__ = ["SEED_METHODS", "add_lesion_by_seed", "seed_threshold"]

SEED_METHODS = ("liver", "spleen", "fixed", "percent_max")
#: Radius (mm) searched around the seed for the lesion's SUVmax with ``percent_max``.
PERCENT_MAX_SEARCH_RADIUS_MM = 10.0


def _check_method(method: str) -> None:
    check_choice("seed method", method, SEED_METHODS)


def _local_maximum(
    suv: NDArray[np.floating], geometry: Geometry, seed: tuple[int, int, int], radius_mm: float
) -> tuple[tuple[int, int, int], float]:
    spacing = np.asarray(geometry.spacing)
    half = np.ceil(radius_mm / spacing).astype(int)
    lo = np.maximum(np.asarray(seed) - half, 0)
    hi = np.minimum(np.asarray(seed) + half + 1, suv.shape)
    box = suv[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    grids = np.ogrid[tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, seed, strict=True))]
    inside = sum((g * d) ** 2 for g, d in zip(grids, spacing, strict=True)) <= radius_mm**2
    local = np.where(inside, box, -np.inf)
    offset = np.unravel_index(int(np.argmax(local)), local.shape)
    peak = tuple(int(a + o) for a, o in zip(lo, offset, strict=True))
    return (peak[0], peak[1], peak[2]), float(suv[peak])


def seed_threshold(
    method: str,
    *,
    value: float | None = None,
    reference: ReferenceStats | dict[str, Any] | None = None,
    lesion_suv_max: float | None = None,
) -> float:
    """SUV threshold (g/mL) for seeded growing.

    Parameters
    ----------
    method : {"liver", "spleen", "fixed", "percent_max"}
        The threshold rule (:data:`SEED_METHODS`).
    value : float, optional
        SUV in g/mL for "fixed"; fraction of ``lesion_suv_max`` for "percent_max"
        (default 0.40).
    reference : ReferenceStats or dict, optional
        The reference VOI's statistics (a dict needs ``mean`` and ``sd``, g/mL); required
        for "liver" and "spleen".
    lesion_suv_max : float, optional
        The lesion's SUVmax in g/mL; required for "percent_max".

    Returns
    -------
    float
        The threshold, SUV in g/mL.
    """
    _check_method(method)
    if method in ("liver", "spleen"):
        if reference is None:
            raise ValueError(
                f"method {method!r} needs the reference VOI statistics (mean, sd); "
                "segment the study with a reference first or use method 'fixed'"
            )
        if isinstance(reference, dict):
            reference = ReferenceStats(
                mean=float(reference["mean"]),
                sd=float(reference["sd"]),
                voxels=int(reference.get("voxels", 0)),
                volume_ml=float(reference.get("volume_ml", 0.0)),
            )
        return reference_threshold(reference, method)
    if method == "fixed":
        if value is None or not np.isfinite(value) or value <= 0:
            raise ValueError(f"method 'fixed' needs a positive SUV value, got {value!r}")
        return float(value)
    fraction = DEFAULT_PERCENT_MAX if value is None else float(value)
    if not 0 < fraction < 1:
        raise ValueError(f"percent_max fraction must be in (0, 1), got {fraction}")
    if lesion_suv_max is None:
        raise ValueError("percent_max needs the lesion's SUVmax")
    return fraction * lesion_suv_max


def add_lesion_by_seed(
    labels: NDArray[np.integer],
    suv: NDArray[np.floating],
    geometry: Geometry,
    seed_index: tuple[int, int, int],
    *,
    method: str = "percent_max",
    value: float | None = None,
    reference: ReferenceStats | dict[str, Any] | None = None,
    connectivity: int = DEFAULT_CONNECTIVITY,
) -> tuple[NDArray[np.int32], int]:
    """Grow a new lesion from a seed and add it to the lesion map under a new label.

    Voxels that already belong to another lesion are left to that lesion. With
    ``percent_max`` the seed moves to the highest SUV within 10 mm (the lesion's SUVmax)
    and the threshold is ``value`` (default 0.40) of it.

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        Lesion map, 0 background (not modified).
    suv : (Z, Y, X) float ndarray
        SUVbw in g/mL.
    geometry : Geometry
        The grid of both arrays.
    seed_index : (3,) tuple of int
        ``(k, j, i)`` voxel index of the seed.
    method : {"liver", "spleen", "fixed", "percent_max"}
        The threshold rule (:func:`seed_threshold`).
    value : float, optional
        SUV in g/mL for "fixed", fraction of SUVmax for "percent_max".
    reference : ReferenceStats or dict, optional
        Reference VOI statistics for "liver" and "spleen".
    connectivity : int
        6, 18 or 26.

    Returns
    -------
    new_labels : (Z, Y, X) int32 ndarray
        The edited copy.
    new_label : int
        The label given to the new lesion.

    Raises
    ------
    ValueError
        Seed outside the image, seed below the threshold, or a region entirely inside
        existing lesions.
    """
    _check_method(method)
    labels = np.asarray(labels)
    if labels.shape != suv.shape:
        raise ValueError(f"labels {labels.shape} and SUV {suv.shape} differ in shape")
    seed = tuple(int(s) for s in seed_index)
    if len(seed) != 3 or any(not 0 <= s < n for s, n in zip(seed, suv.shape, strict=True)):
        raise ValueError(f"seed {tuple(seed_index)} lies outside the image of shape {suv.shape}")
    grow_from: tuple[int, int, int] = (seed[0], seed[1], seed[2])
    lesion_max = None
    if method == "percent_max":
        grow_from, lesion_max = _local_maximum(
            suv, geometry, grow_from, PERCENT_MAX_SEARCH_RADIUS_MM
        )
    threshold = seed_threshold(method, value=value, reference=reference, lesion_suv_max=lesion_max)
    region = region_grow(suv, grow_from, threshold, connectivity) & (labels == 0)
    if not region.any():
        existing = int(labels[grow_from])
        raise ValueError(
            f"the region grown from {grow_from} lies entirely inside existing lesion {existing}"
        )
    new_label = int(labels.max()) + 1
    out = labels.astype(np.int32, copy=True)
    out[region] = new_label
    return out, new_label
