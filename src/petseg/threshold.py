"""Threshold rules for PET lesion segmentation.

* ``reference_threshold``: Carlsen et al. 2022 — liver ``1.5·SUVmean + 2·SD``,
  spleen ``0.67·SUVmean + 2·SD`` of a reference VOI in normal tissue.
* ``threshold_mask``: every voxel with SUV strictly above the threshold.
* ``percent_max_mask``: per-lesion adaptive threshold, a fraction (default 40 %) of each
  candidate's own SUVmax.
* ``region_grow``: the connected region above a threshold that contains a seed voxel.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petseg.lesions import DEFAULT_CONNECTIVITY, check_connectivity, label_components
from petseg.reference import ReferenceStats

__all__ = [
    "DEFAULT_PERCENT_MAX",
    "ORGAN_FACTORS",
    "percent_max_mask",
    "reference_threshold",
    "region_grow",
    "threshold_mask",
]

#: (factor on SUVmean, factor on SD) per reference organ, Carlsen et al. 2022.
ORGAN_FACTORS: dict[str, tuple[float, float]] = {"liver": (1.5, 2.0), "spleen": (0.67, 2.0)}
DEFAULT_PERCENT_MAX = 0.40

Organ = Literal["liver", "spleen"]


def reference_threshold(stats: ReferenceStats, organ: str = "liver") -> float:
    """Patient threshold in SUV (g/mL) from a liver or spleen reference VOI.

    >>> from petseg.reference import ReferenceStats
    >>> reference_threshold(ReferenceStats(mean=6.0, sd=1.0, voxels=100, volume_ml=14.0))
    11.0

    Parameters
    ----------
    stats : ReferenceStats
        SUV mean and SD (g/mL) of the reference VOI.
    organ : {"liver", "spleen"}
        Liver: ``1.5·mean + 2·SD``; spleen: ``0.67·mean + 2·SD`` (:data:`ORGAN_FACTORS`).

    Returns
    -------
    float
        The threshold, SUV in g/mL.

    Raises
    ------
    ValueError
        If the threshold is not a positive finite SUV (a VOI outside the organ, or a PET
        that is not in SUV): every voxel of the body would be "tumour".
    """
    if organ not in ORGAN_FACTORS:
        raise ValueError(f"reference organ must be one of {sorted(ORGAN_FACTORS)}, got {organ!r}")
    a, b = ORGAN_FACTORS[organ]
    threshold = float(a * stats.mean + b * stats.sd)
    if not np.isfinite(threshold) or threshold <= 0:
        where = f" ({stats.description})" if stats.description else ""
        raise ValueError(
            f"the {organ} reference VOI{where} gives a threshold of {threshold:g} g/mL (mean "
            f"{stats.mean:g}, SD {stats.sd:g}), not a positive SUV; place the VOI in normal "
            f"{organ} and check that the PET is in SUV"
        )
    return threshold


def threshold_mask(suv: NDArray[np.floating], threshold: float) -> NDArray[np.bool_]:
    """Voxels with SUV strictly greater than ``threshold`` (g/mL).

    Parameters
    ----------
    suv : (Z, Y, X) float ndarray
        SUVbw in g/mL.
    threshold : float
        SUV in g/mL, finite.

    Returns
    -------
    (Z, Y, X) bool ndarray
    """
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite SUV, got {threshold}")
    return np.asarray(suv > threshold)


def percent_max_mask(
    suv: NDArray[np.floating],
    candidates: NDArray[np.bool_],
    fraction: float = DEFAULT_PERCENT_MAX,
    connectivity: int = DEFAULT_CONNECTIVITY,
) -> NDArray[np.bool_]:
    """Adaptive per-lesion threshold: keep voxels above ``fraction`` × the lesion's SUVmax.

    Each connected component of ``candidates`` (for example a region above a low fixed
    threshold) is thresholded at ``fraction`` of its own maximum; voxels outside the
    candidates are never included.

    Parameters
    ----------
    suv : (Z, Y, X) float ndarray
        SUVbw in g/mL.
    candidates : (Z, Y, X) bool ndarray
        The regions to threshold one by one.
    fraction : float
        Share of each component's SUVmax, in (0, 1) (default 0.40).
    connectivity : int
        6, 18 or 26, for the components of ``candidates``.

    Returns
    -------
    (Z, Y, X) bool ndarray
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction of SUVmax must be in (0, 1), got {fraction}")
    labels = label_components(candidates, connectivity)
    if labels.max() == 0:
        return np.zeros(suv.shape, dtype=bool)
    maxima = np.zeros(int(labels.max()) + 1, dtype=np.float64)
    maxima[1:] = ndimage.maximum(suv, labels, np.arange(1, labels.max() + 1))
    cut = maxima[labels] * fraction
    return (labels > 0) & (suv > cut)


def region_grow(
    suv: NDArray[np.floating],
    seed_index: tuple[int, int, int],
    threshold: float,
    connectivity: int = DEFAULT_CONNECTIVITY,
) -> NDArray[np.bool_]:
    """The connected region of voxels with SUV > ``threshold`` that contains the seed.

    Parameters
    ----------
    suv : (Z, Y, X) float ndarray
        SUVbw in g/mL.
    seed_index : (3,) tuple of int
        ``(k, j, i)`` voxel index of the seed.
    threshold : float
        SUV in g/mL.
    connectivity : int
        6, 18 or 26.

    Returns
    -------
    (Z, Y, X) bool ndarray
        The region holding the seed.

    Raises
    ------
    ValueError
        If the seed lies outside the image or its own SUV is not above the threshold.
    """
    check_connectivity(connectivity)
    seed = tuple(int(s) for s in seed_index)
    if len(seed) != 3 or any(not 0 <= s < n for s, n in zip(seed, suv.shape, strict=True)):
        raise ValueError(f"seed {seed_index} lies outside the image of shape {suv.shape}")
    if not suv[seed] > threshold:
        raise ValueError(
            f"seed {seed} has SUV {float(suv[seed]):.2f} g/mL, not above the threshold "
            f"{threshold:.2f}; place the seed in the lesion or lower the threshold"
        )

    labels = label_components(suv > threshold, connectivity)
    return np.asarray(labels == labels[seed])
