"""Lesions as connected components: labelling, minimum volume, editing, quantification.

A *lesion map* is a ``(Z, Y, X)`` int32 array on the Study grid: 0 is background and
each lesion has its own positive label. Connectivity is 6, 18 or 26 (3D face, edge or
corner neighbours); the default is 26, the usual choice for PET lesion counting
(a lesion whose voxels touch only at a corner is one lesion).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import cc3d
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petseg.study import Geometry

__all__ = [
    "CONNECTIVITIES",
    "DEFAULT_CONNECTIVITY",
    "MIN_LESION_VOLUME_ML",
    "Connectivity",
    "LesionStats",
    "PatientStats",
    "as_label_map",
    "label_components",
    "min_voxels_for_volume",
    "patient_stats",
    "quantify_lesions",
    "relabel_sequential",
    "remove_labels",
    "remove_small_components",
    "suv_peak",
]

#: The 3D connectivities accepted by :func:`check_connectivity` (and ``cc3d``).
Connectivity = Literal[6, 18, 26]
CONNECTIVITIES: tuple[Connectivity, ...] = (6, 18, 26)
DEFAULT_CONNECTIVITY = 26
#: Carlsen et al. 2022: "all volumes < 0.1 mL (< 9 voxels) are automatically removed".
MIN_LESION_VOLUME_ML = 0.1
#: Largest lesion label (int32, the type petseg writes label maps in).
MAX_LABEL = 2**31 - 1


def as_label_map(values: NDArray[Any], source: str) -> NDArray[np.int32]:
    """A label map (0 background, lesions 1, 2, …) as int32, or a ValueError naming ``source``.

    Parameters
    ----------
    values : (Z, Y, X) ndarray
        Voxel values as read from a file; floats are accepted when they are whole numbers.
    source : str
        What the values came from (a file name), for the error message.

    Returns
    -------
    (Z, Y, X) int32 ndarray
        The labels; a bool mask becomes 0/1.

    Raises
    ------
    ValueError
        Non-finite or fractional values (a probability or SUV map, not labels), negative
        labels, or labels above ``2**31 - 1``.
    """
    array = np.asarray(values)
    if array.dtype == np.bool_:
        return array.astype(np.int32)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{source} holds {array.dtype} values, not integer lesion labels")
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise ValueError(
                f"{source} holds non-integer values (dtype {array.dtype}, e.g. a probability "
                "map); a lesion map holds integer labels (0 = background): threshold it "
                "into a label map first"
            )
    low, high = (array.min(), array.max()) if array.size else (0, 0)
    if low < 0 or high > MAX_LABEL:
        raise ValueError(
            f"{source} holds labels from {low:g} to {high:g}; lesion labels are 0 (background) "
            f"to 2**31 - 1 = {MAX_LABEL}: renumber them (petseg.lesions.relabel_sequential)"
        )
    return array.astype(np.int32)


#: SUVpeak: mean SUV in a 1 mL sphere (radius 6.2035 mm), PERCIST-style.
SUV_PEAK_SPHERE_ML = 1.0


def check_connectivity(connectivity: int) -> Connectivity:
    """Return ``connectivity`` if it is 6, 18 or 26, else raise a ValueError naming the choices.

    Parameters
    ----------
    connectivity : int
        3D neighbourhood: 6 (faces), 18 (faces and edges) or 26 (faces, edges and corners).

    Returns
    -------
    Connectivity
        The same value, typed as one of :data:`CONNECTIVITIES`.
    """
    if connectivity not in CONNECTIVITIES:
        raise ValueError(
            f"connectivity must be one of {CONNECTIVITIES} (3D face/edge/corner neighbours), "
            f"got {connectivity!r}"
        )
    # Checked just above: the value is one of the Literal's members.
    return cast(Connectivity, int(connectivity))


def label_components(
    mask: NDArray[np.bool_], connectivity: int = DEFAULT_CONNECTIVITY, min_voxels: int = 0
) -> NDArray[np.int32]:
    """Label the connected components of a binary ``(Z, Y, X)`` mask.

    Labels run 1..N in raster order of each component's first voxel (cc3d's order).
    Components of fewer than ``min_voxels`` voxels are dropped before labelling
    (``cc3d.dust``), which is faster than labelling then removing them.

    Parameters
    ----------
    mask : (Z, Y, X) bool ndarray
        Voxels segmented as lesion (any dtype, read as ``!= 0``).
    connectivity : int
        6, 18 or 26.
    min_voxels : int
        Components smaller than this many voxels are dropped; 0 or 1 keeps all.

    Returns
    -------
    (Z, Y, X) int32 ndarray
        0 background, components 1..N.
    """
    connectivity = check_connectivity(connectivity)
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"mask must be 3D (Z, Y, X), got {mask.ndim}D")
    mask = mask.astype(bool, copy=False)
    if min_voxels > 1:
        mask = cc3d.dust(mask, threshold=int(min_voxels), connectivity=connectivity, in_place=False)
    labels = cc3d.connected_components(mask, connectivity=connectivity)
    return labels.astype(np.int32, copy=False)


def min_voxels_for_volume(volume_ml: float, voxel_volume_ml: float) -> int:
    """Smallest whole number of voxels whose volume reaches ``volume_ml``.

    On the Carlsen grid (2×2×3 mm = 0.012 mL) 0.1 mL is 9 voxels (8.33 rounded up); 0 mL
    is 0 voxels (every component kept).

    Parameters
    ----------
    volume_ml : float
        The volume in mL, finite and >= 0.
    voxel_volume_ml : float
        Volume of one voxel in mL (``Geometry.voxel_volume_ml``), > 0.

    Returns
    -------
    int
        Number of voxels.

    Raises
    ------
    ValueError
        A volume that is negative, NaN or infinite (NaN would switch the filter off).
    """
    if not voxel_volume_ml > 0:
        raise ValueError(f"voxel volume must be positive, got {voxel_volume_ml} mL")
    if not np.isfinite(volume_ml) or volume_ml < 0:
        raise ValueError(
            f"the minimum lesion volume must be a finite volume >= 0 mL, got {volume_ml}"
        )
    return int(np.ceil(volume_ml / voxel_volume_ml - 1e-9))


def remove_small_components(
    labels: NDArray[np.integer],
    voxel_volume_ml: float,
    min_volume_ml: float = MIN_LESION_VOLUME_ML,
) -> NDArray[np.int32]:
    """Set to 0 every label whose volume is below ``min_volume_ml`` (mL).

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        Lesion map, 0 background.
    voxel_volume_ml : float
        Volume of one voxel in mL.
    min_volume_ml : float
        Smallest volume kept, in mL (Carlsen: 0.1 mL).

    Returns
    -------
    (Z, Y, X) int32 ndarray
        The remaining labels renumbered 1..N in their previous order.
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels.ravel())
    keep = counts >= min_voxels_for_volume(min_volume_ml, voxel_volume_ml)
    keep[0] = False
    return _apply_keep(labels, keep)


def remove_labels(
    labels: NDArray[np.integer], remove: list[int] | tuple[int, ...]
) -> NDArray[np.int32]:
    """Remove the given lesion labels; the others keep their numbers.

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        Lesion map, 0 background.
    remove : list or tuple of int
        Labels to set to 0; each must be present.

    Returns
    -------
    (Z, Y, X) int32 ndarray
        A new lesion map.

    Raises
    ------
    ValueError
        If a label to remove is not present (so a typo does not pass silently).
    """
    labels = np.asarray(labels)
    # a comparison per label is ~50x faster than np.unique/np.bincount over a whole-body volume
    missing = sorted(int(r) for r in set(remove) if not np.any(labels == r))
    if missing:
        present = sorted(set(np.unique(labels).tolist()) - {0})
        raise ValueError(f"lesion label(s) {missing} not in the lesion map (labels: {present})")
    out = labels.astype(np.int32, copy=True)
    out[np.isin(out, list(remove))] = 0
    return out


def relabel_sequential(labels: NDArray[np.integer]) -> NDArray[np.int32]:
    """Renumber labels to 1..N keeping their order.

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        Lesion map with gaps in its labels, 0 background.

    Returns
    -------
    (Z, Y, X) int32 ndarray
        Labels 1..N, in the order of the old numbers.
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels.ravel())
    keep = counts > 0
    keep[0] = False
    return _apply_keep(labels, keep)


def _apply_keep(labels: NDArray[np.integer], keep: NDArray[np.bool_]) -> NDArray[np.int32]:
    lut = np.zeros(keep.size, dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels]


@dataclass(frozen=True)
class LesionStats:
    """Per-lesion quantities of one label of a lesion map.

    Attributes
    ----------
    label : int
        The lesion's label.
    voxels : int
        Number of voxels.
    volume_ml : float
        Volume in mL.
    suv_max, suv_mean, suv_peak : float
        SUVbw maximum, mean and peak (1 mL sphere, :func:`suv_peak`) in g/mL.
    tlg_g : float
        Total lesion glycolysis, SUVmean × volume, in g.
    centroid_x_mm, centroid_y_mm, centroid_z_mm : float
        Centroid in LPS patient coordinates, mm.
    """

    label: int
    voxels: int
    volume_ml: float
    suv_max: float
    suv_mean: float
    suv_peak: float
    tlg_g: float
    centroid_x_mm: float
    centroid_y_mm: float
    centroid_z_mm: float

    def to_dict(self) -> dict[str, Any]:
        """The quantities under their field names."""
        return asdict(self)


@dataclass(frozen=True)
class PatientStats:
    """Per-patient totals over all lesions (Carlsen's prognostic measures).

    Attributes
    ----------
    lesion_count : int
        Number of lesions.
    total_tumour_volume_ml : float
        TTV: the sum of the lesion volumes, mL.
    lowest_lesion_suv_mean : float
        The smallest per-lesion SUVmean (g/mL); NaN without lesions.
    highest_suv_max : float
        The largest per-lesion SUVmax (g/mL); NaN without lesions.
    total_tlg_g : float
        Sum of the lesions' TLG, g.
    """

    lesion_count: int
    total_tumour_volume_ml: float
    lowest_lesion_suv_mean: float
    highest_suv_max: float
    total_tlg_g: float

    def to_dict(self) -> dict[str, Any]:
        """The totals under their field names, NaN written as None (JSON null)."""
        return {
            k: (None if isinstance(v, float) and np.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def _sphere_kernel(spacing: tuple[float, float, float], volume_ml: float) -> NDArray[np.bool_]:
    radius = (3.0 * volume_ml * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0)
    half = [int(np.floor(radius / s)) for s in spacing]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    dist2 = sum((g * s) ** 2 for g, s in zip(grids, spacing, strict=True))
    return np.asarray(dist2 <= radius**2)


def suv_peak(
    suv: NDArray[np.floating],
    labels: NDArray[np.integer],
    spacing: tuple[float, float, float],
    sphere_ml: float = SUV_PEAK_SPHERE_ML,
) -> NDArray[np.float64]:
    """SUVpeak per label: the highest mean SUV of a ``sphere_ml`` sphere centred on a lesion voxel.

    The sphere mean uses all image voxels inside the sphere (PERCIST); centres are
    restricted to voxels of the lesion.

    Parameters
    ----------
    suv : (Z, Y, X) float ndarray
        SUVbw in g/mL.
    labels : (Z, Y, X) int ndarray
        Lesion map on the same grid, 0 background.
    spacing : (3,) tuple of float
        Voxel size ``(dz, dy, dx)`` in mm.
    sphere_ml : float
        Sphere volume in mL (PERCIST: 1 mL).

    Returns
    -------
    (N + 1,) float64 ndarray
        SUVpeak in g/mL indexed by label (index 0 unused, 0 for absent labels).
    """
    kernel = _sphere_kernel(spacing, sphere_ml).astype(np.float32)
    kernel /= kernel.sum()
    n = int(labels.max()) if labels.size else 0
    out = np.zeros(n + 1)
    if n == 0:
        return out
    objects = ndimage.find_objects(labels)
    pad = [k // 2 for k in kernel.shape]
    for label, box in enumerate(objects, start=1):
        if box is None:
            continue
        grown = tuple(
            slice(max(b.start - p, 0), min(b.stop + p, dim))
            for b, p, dim in zip(box, pad, suv.shape, strict=True)
        )
        local = ndimage.convolve(suv[grown].astype(np.float32), kernel, mode="nearest")
        out[label] = float(local[labels[grown] == label].max())
    return out


def quantify_lesions(
    suv: NDArray[np.floating], labels: NDArray[np.integer], geometry: Geometry
) -> list[LesionStats]:
    """Per-lesion volume, SUVmax/mean/peak, TLG and centroid.

    Parameters
    ----------
    suv : (Z, Y, X) float ndarray
        SUVbw (g/mL) on the lesion map's grid.
    labels : (Z, Y, X) int ndarray
        One label per lesion, 0 background, on the grid of ``suv``.
    geometry : Geometry
        The grid of both arrays (voxel volume, patient coordinates).

    Returns
    -------
    list of LesionStats
        One per label present, ordered by label.
    """
    if suv.shape != labels.shape:
        raise ValueError(f"SUV shape {suv.shape} and label shape {labels.shape} differ")
    labels = np.asarray(labels)
    if not labels.any():
        return []
    table = cc3d.statistics(labels.astype(np.uint32, copy=False))
    voxel_ml = geometry.voxel_volume_ml
    peaks = suv_peak(suv, labels, geometry.spacing)
    stats = []
    for label, box in enumerate(table["bounding_boxes"]):
        if label == 0 or box is None or table["voxel_counts"][label] == 0:
            continue
        values = suv[box][labels[box] == label].astype(np.float64)
        voxels = int(values.size)
        mean = float(values.mean())
        volume = voxels * voxel_ml
        x, y, z = geometry.index_to_patient(table["centroids"][label])
        stats.append(
            LesionStats(
                label=int(label),
                voxels=voxels,
                volume_ml=volume,
                suv_max=float(values.max()),
                suv_mean=mean,
                suv_peak=float(peaks[label]),
                tlg_g=mean * volume,
                centroid_x_mm=float(x),
                centroid_y_mm=float(y),
                centroid_z_mm=float(z),
            )
        )
    return stats


def patient_stats(lesions: list[LesionStats]) -> PatientStats:
    """TTV, lesion count, lowest lesion SUVmean, highest SUVmax and total TLG.

    Parameters
    ----------
    lesions : list of LesionStats
        The patient's lesions (:func:`quantify_lesions`).

    Returns
    -------
    PatientStats
        Zero count and volume, NaN SUVs, for an empty list.
    """
    if not lesions:
        return PatientStats(0, 0.0, float("nan"), float("nan"), 0.0)
    return PatientStats(
        lesion_count=len(lesions),
        total_tumour_volume_ml=float(sum(s.volume_ml for s in lesions)),
        lowest_lesion_suv_mean=float(min(s.suv_mean for s in lesions)),
        highest_suv_max=float(max(s.suv_max for s in lesions)),
        total_tlg_g=float(sum(s.tlg_g for s in lesions)),
    )
