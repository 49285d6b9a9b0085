"""Placement of a reference sphere inside an organ mask, at a fixed point with its own lesions.

The sphere goes where the organ is homogeneous, representative and free of lesions.
Lesions are what lies above the threshold the sphere itself sets, so placement and
threshold depend on each other; :func:`place_in_organ` iterates the two to a fixed point:

0. Excluded voxels ``L`` = none.
1. Allowed centres: voxels whose sphere lies inside the organ eroded by
   ``organ_margin_mm`` and at least ``lesion_margin_mm`` from every voxel of ``L``
   (``depth_in_organ >= r + organ_margin`` and ``distance_to_L > r + lesion_margin``,
   Euclidean distance transforms in mm), and whose SUV SD is at most 35 % of its mean
   (normal tissue; a sphere full of lesions would set a threshold above them all and be
   its own fixed point). When no centre allows the full radius, the
   radius shrinks (whole mm) to what fits, down to ``min_radius_mm``.
2. Centre: of the most homogeneous quarter of the allowed centres (sphere SD at most the
   25th percentile), the one whose threshold is closest to the median threshold of all
   allowed centres. The lowest SD alone would pick a sphere whose SD, and so threshold,
   is low by chance; the median keeps the threshold typical of the organ. Sphere means
   and SDs at every voxel come from two FFT convolutions (SUV and SUV²) with the sphere
   kernel, computed once.
3. Threshold ``T = a·mean + b·SD`` of that sphere (liver 1.5, 2; spleen 0.67, 2).
4. ``L`` = every voxel above ``T`` (the lesions by the sphere's own rule), and every
   component of at least 1 mL above ``mean + 3·SD`` (hot spots below the threshold:
   low-uptake lesions, the realistic misses of the method, still do not belong in a
   reference VOI). The spleen's formula gives a threshold below normal spleen uptake;
   there, and wherever ``T < mean + 3·SD``, single voxels count from ``mean + 3·SD``.
   Back to 1, until centre and radius repeat (then ``T`` and ``L`` repeat too: a fixed
   point), at most ``max_iterations`` placements. A centre that comes back after a
   different one is a cycle: the iteration stops and the result is marked not
   converged.

The confidence figure is the *threshold agreement*: the share of the allowed centres at
the fixed point (the lesion-free, eroded organ) whose own sphere gives a threshold within
±5 % of the chosen one. Near 1, any lesion-free sphere of the organ gives the same
threshold; a low value means the organ's uptake varies (diffuse disease, an organ found
in the wrong place, little lesion-free room) and the VOI should be looked at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petseg.lesions import label_components, min_voxels_for_volume
from petseg.reference import (
    DEFAULT_SPHERE_RADIUS_MM,
    MIN_REFERENCE_VOXELS,
    ReferenceStats,
    sphere_kernel,
)
from petseg.study import Geometry
from petseg.threshold import ORGAN_FACTORS, reference_threshold

__all__ = [
    "AGREEMENT_TOLERANCE",
    "HOMOGENEOUS_QUANTILE",
    "HOT_SPOT_ML",
    "HOT_SPOT_SD",
    "LESION_MARGIN_MM",
    "MAX_COV",
    "MAX_ITERATIONS",
    "MIN_RADIUS_MM",
    "ORGAN_MARGIN_MM",
    "NoPositionError",
    "Placement",
    "place_in_organ",
    "sphere_statistics",
]

#: The sphere lies inside the organ eroded by this much (mm): no partial volume with its
#: neighbours, room for misregistration of an organ map.
ORGAN_MARGIN_MM = 10.0
#: Least distance (mm) between the sphere and any voxel above its threshold: the
#: spill-over of a hot lesion reaches about one resolution FWHM around it.
LESION_MARGIN_MM = 10.0
#: Smallest radius (mm) the sphere may shrink to when the full one does not fit.
MIN_RADIUS_MM = 10.0
MAX_ITERATIONS = 10
#: Relative threshold difference counted as agreement by the confidence figure.
AGREEMENT_TOLERANCE = 0.05
#: A sphere whose SD exceeds this share of its mean is not normal tissue (normal liver:
#: 10-25 % in PET and SPECT); a sphere full of lesions would otherwise set a threshold
#: above them all and be its own fixed point.
MAX_COV = 0.35
#: Centres whose sphere SD is at most this quantile of the allowed ones are "homogeneous".
HOMOGENEOUS_QUANTILE = 0.25
#: Hot spots above ``mean + HOT_SPOT_SD·SD`` of the sphere, of at least ``HOT_SPOT_ML``,
#: are kept out of the sphere even below the threshold.
HOT_SPOT_SD = 3.0
HOT_SPOT_ML = 1.0


class NoPositionError(ValueError):
    """No lesion-free sphere fits in the organ."""


@dataclass(frozen=True)
class Placement:
    """A reference sphere placed in one organ.

    Attributes
    ----------
    organ : {"liver", "spleen"}
        Sets the threshold formula.
    centre_index : (3,) tuple of int
        ``(k, j, i)`` voxel of the sphere's centre.
    centre_mm : (3,) tuple of float
        ``(x, y, z)`` of the centre, LPS mm.
    radius_mm : float
        Sphere radius in mm.
    stats : ReferenceStats
        SUV mean and SD (g/mL) in the sphere.
    threshold_suv : float
        The organ's threshold from ``stats``, g/mL.
    iterations : int
        Placements made, the confirming one included (2 = the first was stable).
    converged : bool
        False when the iteration cycled or reached its bound.
    confidence : float
        Threshold agreement in [0, 1] (module docstring).
    allowed_volume_ml : float
        Volume of the allowed centres at the fixed point, mL.
    history : list of dict
        Per iteration: centre (mm), radius, threshold and excluded voxels.
    """

    organ: str
    centre_index: tuple[int, int, int]
    centre_mm: tuple[float, float, float]
    radius_mm: float
    stats: ReferenceStats
    threshold_suv: float
    iterations: int
    converged: bool
    confidence: float
    allowed_volume_ml: float
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (statistics under ``stats``)."""
        return {
            "organ": self.organ,
            "centre_mm": [round(v, 3) for v in self.centre_mm],
            "centre_index_kji": list(self.centre_index),
            "radius_mm": self.radius_mm,
            "threshold_suv": self.threshold_suv,
            "iterations": self.iterations,
            "converged": self.converged,
            "confidence": self.confidence,
            "confidence_definition": (
                "share of the lesion-free eroded organ whose sphere gives a threshold within "
                f"±{AGREEMENT_TOLERANCE:.0%} of this one"
            ),
            "allowed_volume_ml": self.allowed_volume_ml,
            "stats": self.stats.to_dict(),
            "history": self.history,
        }


def sphere_statistics(
    suv: NDArray[np.floating], kernel: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and sample SD (ddof=1) of ``suv`` in the sphere ``kernel`` centred on every voxel.

    Two FFT convolutions (of SUV and SUV², float64), so the cost does not grow with the
    sphere. Values near the array's faces count the zeros beyond it; use the interior.

    Parameters
    ----------
    suv : (Z, Y, X) float ndarray
        SUV in g/mL.
    kernel : (2a+1, 2b+1, 2c+1) bool ndarray
        Odd-sized sphere (:func:`petseg.reference.sphere_kernel`).

    Returns
    -------
    mean, sd : (Z, Y, X) float64 ndarray
        In g/mL.
    """
    from scipy.signal import fftconvolve  # imported here: scipy.signal takes ~1 s to import

    n = int(kernel.sum())
    if n < 2:
        raise ValueError(f"the sphere kernel holds {n} voxel(s); at least 2 are needed for an SD")
    values = np.asarray(suv, dtype=np.float64)
    weights = kernel.astype(np.float64)
    total = fftconvolve(values, weights, mode="same")
    squares = fftconvolve(values * values, weights, mode="same")
    mean = total / n
    variance = np.maximum(squares - total * mean, 0.0) / (n - 1)
    return mean, np.sqrt(variance)


def _box(mask: NDArray[np.bool_], pad: NDArray[np.int_]) -> tuple[slice, slice, slice]:
    found = ndimage.find_objects(mask.astype(np.uint8))
    if not found or found[0] is None:
        raise NoPositionError("the organ mask is empty")
    box = found[0]
    return tuple(  # type: ignore[return-value]
        slice(max(b.start - p, 0), min(b.stop + p, n))
        for b, p, n in zip(box, pad, mask.shape, strict=True)
    )


def _distance_inside(mask: NDArray[np.bool_], spacing: tuple[float, float, float]) -> NDArray:
    """Distance (mm) from each voxel of ``mask`` to the nearest voxel outside it; the
    array's faces count as outside."""
    padded = np.pad(mask, 1, constant_values=False)
    return ndimage.distance_transform_edt(padded, sampling=spacing)[1:-1, 1:-1, 1:-1]


def _representative(mean: NDArray[np.float64], sd: NDArray[np.float64], a: float, b: float) -> int:
    """Index of the centre chosen among allowed ones (1-D arrays of their sphere statistics):
    of the most homogeneous quarter (sphere SD at most its 25th percentile), the one whose
    threshold is closest to the median threshold of all allowed centres."""
    thresholds = a * mean + b * sd
    homogeneous = sd <= np.quantile(sd, HOMOGENEOUS_QUANTILE)
    distance = np.where(homogeneous, np.abs(thresholds - np.median(thresholds)), np.inf)
    return int(np.argmin(distance))


@dataclass
class _Search:
    """The organ's bounding box, searched by every placement: SUV and room in it, and the
    sphere statistics at each radius tried (computed once per radius)."""

    geometry: Geometry
    offset: NDArray[np.int_]
    suv: NDArray[np.float32]
    depth: NDArray[np.float64]
    statistics: dict[float, tuple[NDArray[np.float64], NDArray[np.float64], int]] = field(
        default_factory=dict
    )

    def sphere(self, radius: float) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
        """Sphere mean, SD (g/mL) at every voxel of the box, and the sphere's voxel count."""
        if radius not in self.statistics:
            kernel = sphere_kernel(self.geometry, radius)
            if kernel.sum() < MIN_REFERENCE_VOXELS:
                raise NoPositionError(
                    f"a {radius:g} mm sphere holds {int(kernel.sum())} voxels of "
                    f"{self.geometry.spacing} mm, fewer than the {MIN_REFERENCE_VOXELS} a "
                    "reference VOI needs"
                )
            mean, sd = sphere_statistics(self.suv, kernel)
            self.statistics[radius] = (mean, sd, int(kernel.sum()))
        return self.statistics[radius]


@dataclass(frozen=True)
class _Step:
    """One placement: the chosen sphere and the thresholds of every allowed centre."""

    centre: tuple[int, int, int]
    radius: float
    stats: ReferenceStats
    threshold: float
    allowed_thresholds: NDArray[np.float64]


def _check_arguments(
    organ: str, radius_mm: float, margins_mm: tuple[float, float], min_radius_mm: float
) -> None:
    if organ not in ORGAN_FACTORS:
        raise ValueError(f"organ must be one of {sorted(ORGAN_FACTORS)}, got {organ!r}")
    if not 0 < min_radius_mm <= radius_mm:
        raise ValueError(
            f"need 0 < min_radius_mm <= radius_mm, got {min_radius_mm} and {radius_mm} mm"
        )
    if min(margins_mm) < 0:
        raise ValueError(
            f"margins must be >= 0 mm, got organ {margins_mm[0]} and lesion {margins_mm[1]}"
        )


def _search_box(
    suv: NDArray[np.floating],
    geometry: Geometry,
    organ_mask: NDArray[np.bool_],
    organ: str,
    reach_mm: float,
    organ_margin_mm: float,
    min_radius_mm: float,
) -> _Search:
    """The organ's box padded by ``reach_mm``, with the depth inside the eroded organ."""
    if organ_mask.shape != suv.shape or suv.shape != geometry.shape:
        raise ValueError(
            f"organ mask {organ_mask.shape}, SUV {suv.shape} and geometry {geometry.shape} "
            "must share one shape"
        )
    spacing = geometry.spacing
    box = _box(organ_mask, np.ceil(reach_mm / np.asarray(spacing)).astype(int) + 1)
    depth = _distance_inside(organ_mask[box], spacing) - organ_margin_mm
    if depth.max() < min_radius_mm:
        raise NoPositionError(
            f"the {organ} is nowhere thicker than {2 * (min_radius_mm + organ_margin_mm):.0f} mm "
            f"(a {2 * min_radius_mm:.0f} mm sphere {organ_margin_mm:.0f} mm inside its border)"
        )
    offset = np.array([b.start for b in box])
    return _Search(geometry, offset, np.asarray(suv[box], dtype=np.float32), depth)


def _place_once(
    search: _Search,
    lesions: NDArray[np.bool_],
    organ: str,
    radius_mm: float,
    lesion_margin_mm: float,
    min_radius_mm: float,
    last_threshold: float,
) -> _Step:
    """Steps 1 to 3 of the scheme: allowed centres, the chosen one, its threshold."""
    room = search.depth
    if lesions.any():
        clearance = _distance_inside(~lesions, search.geometry.spacing) - lesion_margin_mm
        room = np.minimum(search.depth, clearance)
    best_room = float(room.max())
    if best_room < min_radius_mm:
        raise NoPositionError(
            f"no lesion-free {2 * min_radius_mm:.0f} mm sphere fits in the {organ}: "
            f"{int(lesions.sum())} voxels above its threshold "
            f"{last_threshold:.2f} g/mL or in hot spots leave no room "
            f"({lesion_margin_mm:.0f} mm margin around them)"
        )
    radius = radius_mm if best_room >= radius_mm else float(np.floor(best_room))
    mean, sd, voxels = search.sphere(radius)
    allowed = (room >= radius) & (sd <= MAX_COV * mean)
    if not allowed.any():
        raise NoPositionError(
            f"no {2 * radius:g} mm sphere in the {organ} is homogeneous enough for normal "
            f"tissue (SD at most {MAX_COV:.0%} of the mean; diffuse involvement?)"
        )
    a, b = ORGAN_FACTORS[organ]
    flat = np.flatnonzero(allowed)
    best = int(flat[_representative(mean.ravel()[flat], sd.ravel()[flat], a, b)])
    local = np.unravel_index(best, allowed.shape)
    k, j, i = (int(v) for v in np.asarray(local) + search.offset)
    stats = ReferenceStats(
        mean=float(mean[local]),
        sd=float(sd[local]),
        voxels=voxels,
        volume_ml=voxels * search.geometry.voxel_volume_ml,
    )
    threshold = reference_threshold(stats, organ)
    return _Step((k, j, i), radius, stats, threshold, a * mean[allowed] + b * sd[allowed])


def _excluded(
    suv: NDArray[np.float32], stats: ReferenceStats, threshold: float, hot_voxels: int
) -> NDArray[np.bool_]:
    """Step 4: voxels above the threshold, and hot spots above ``mean + 3·SD``."""
    hot = stats.mean + HOT_SPOT_SD * stats.sd
    return (suv > max(threshold, hot)) | (
        label_components(suv > hot, 26, min_voxels=hot_voxels) > 0
    )


def _fixed_point(
    search: _Search,
    organ: str,
    radius_mm: float,
    lesion_margin_mm: float,
    min_radius_mm: float,
    max_iterations: int,
) -> tuple[_Step, list[dict[str, Any]], bool]:
    """Placements until centre and radius repeat: the last one, the history, converged."""
    geometry = search.geometry
    hot_voxels = max(2, min_voxels_for_volume(HOT_SPOT_ML, geometry.voxel_volume_ml))
    lesions = np.zeros(search.suv.shape, dtype=bool)
    history: list[dict[str, Any]] = []
    seen: list[tuple[tuple[int, int, int], float]] = []
    threshold = float("nan")
    for _ in range(max_iterations):
        step = _place_once(
            search, lesions, organ, radius_mm, lesion_margin_mm, min_radius_mm, threshold
        )
        threshold = step.threshold
        history.append(
            {
                "centre_mm": [round(float(v), 3) for v in geometry.index_to_patient(step.centre)],
                "radius_mm": step.radius,
                "threshold_suv": threshold,
                "excluded_voxels": int(lesions.sum()),
            }
        )
        key = (step.centre, step.radius)
        if seen and seen[-1] == key:
            return step, history, True
        if key in seen:  # a cycle: stop at this position
            break
        seen.append(key)
        lesions = _excluded(search.suv, step.stats, threshold, hot_voxels)
    return step, history, False


def place_in_organ(
    suv: NDArray[np.floating],
    geometry: Geometry,
    organ_mask: NDArray[np.bool_],
    *,
    organ: str = "liver",
    radius_mm: float = DEFAULT_SPHERE_RADIUS_MM,
    organ_margin_mm: float = ORGAN_MARGIN_MM,
    lesion_margin_mm: float = LESION_MARGIN_MM,
    min_radius_mm: float = MIN_RADIUS_MM,
    max_iterations: int = MAX_ITERATIONS,
) -> Placement:
    """Place the reference sphere in ``organ_mask`` by the fixed-point scheme (module docstring).

    Parameters
    ----------
    suv : (Z, Y, X) float ndarray
        SUVbw in g/mL.
    geometry : Geometry
        Grid of ``suv`` and ``organ_mask``.
    organ_mask : (Z, Y, X) bool ndarray
        The organ (liver or spleen) on the PET grid.
    organ : {"liver", "spleen"}
        Sets the threshold formula.
    radius_mm : float
        Sphere radius in mm; Carlsen et al.'s 3 cm VOI is 15 mm.
    organ_margin_mm : float
        The sphere lies inside the organ eroded by this much (mm).
    lesion_margin_mm : float
        Least distance (mm) between the sphere and any voxel above its threshold.
    min_radius_mm : float
        Smallest radius (mm) when the full sphere fits nowhere.
    max_iterations : int
        Bound on the placements.

    Returns
    -------
    Placement
        The sphere at the fixed point (or where a cycle stopped the iteration).

    Raises
    ------
    NoPositionError
        No lesion-free sphere of at least ``min_radius_mm`` fits in the eroded organ.
    """
    organ_mask = np.asarray(organ_mask, dtype=bool)
    margins = (organ_margin_mm, lesion_margin_mm)
    _check_arguments(organ, radius_mm, margins, min_radius_mm)
    if max_iterations < 1:
        raise ValueError(f"max_iterations must be >= 1, got {max_iterations}")
    reach = radius_mm + max(margins)
    search = _search_box(suv, geometry, organ_mask, organ, reach, organ_margin_mm, min_radius_mm)
    step, history, converged = _fixed_point(
        search, organ, radius_mm, lesion_margin_mm, min_radius_mm, max_iterations
    )
    threshold = step.threshold
    agreement = np.mean(
        np.abs(step.allowed_thresholds - threshold) <= AGREEMENT_TOLERANCE * threshold
    )
    centre_mm = geometry.index_to_patient(np.asarray(step.centre, dtype=np.float64))
    return Placement(
        organ=organ,
        centre_index=step.centre,
        centre_mm=(float(centre_mm[0]), float(centre_mm[1]), float(centre_mm[2])),
        radius_mm=step.radius,
        stats=step.stats,
        threshold_suv=threshold,
        iterations=len(history),
        converged=converged,
        confidence=round(float(agreement), 4),
        allowed_volume_ml=float(step.allowed_thresholds.size * geometry.voxel_volume_ml),
        history=history,
    )
