"""Finding the liver without an organ map and without model weights: from the CT, or the PET.

Both finders work on a coarse copy of the study (block means of about 6 mm) and share one
scheme: a *tissue* mask (CT: soft-tissue HU; PET: a band of moderate uptake) is cut into
*cores* (voxels at least ``CORE_DEPTH_MM`` inside it, which separates organs that touch),
and each core is checked against the anatomy of a liver:

* **trunk**: on the core's slices the body's largest cross-section is at least
  ``TRUNK_WIDTH_MM`` wide from side to side and holds most of the slice's body area (a
  limb, two legs or a head are not a trunk);
* **right side**: most of the core lies on the patient's right (LPS −x) of the trunk's
  centre, its centroid at least ``RIGHT_OFFSET_MM`` from it;
* **size**: the core holds at least ``MIN_CORE_ML``;
* **below the lungs** (CT): when the field of view shows a right lung, the core's
  centroid lies below the right lung's centroid, and the search is limited to
  ``ZONE_DEPTH_MM`` below the lung's base;
* **homogeneous uptake** (with a PET): the interquartile range of the core's SUV is at
  most ``MAX_UPTAKE_SPREAD`` of its median.

The largest core that passes is the liver; it is grown back to the tissue it came from
(the voxels of the tissue mask within ``CORE_DEPTH_MM`` plus one coarse voxel of it), cut
to the voxels at the core's uptake level when there is a PET, and brought to the PET grid.
No core passing is a refusal (:class:`NoOrganError`), never a guess: the caller asks the
user for a reference sphere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petseg.lesions import label_components
from petseg.study import Geometry

__all__ = [
    "COARSE_MM",
    "CORE_DEPTH_MM",
    "MIN_CORE_ML",
    "RIGHT_OFFSET_MM",
    "SOFT_TISSUE_HU",
    "TRUNK_WIDTH_MM",
    "NoOrganError",
    "OrganEstimate",
    "find_liver_ct",
    "find_liver_pet",
]

#: Voxel size (mm) the finders work at.
COARSE_MM = 6.0
#: CT numbers of soft tissue (HU): fatty to contrast-enhanced liver.
SOFT_TISSUE_HU = (-20.0, 200.0)
#: Depth (mm) of the upper-abdomen zone searched below the right lung's base.
ZONE_DEPTH_MM = 250.0
#: Least ratio of the liver's SUV to the body's median SUV (muscle, fat) when a PET is given.
LIVER_UPTAKE_RATIO = 2.0
#: Largest interquartile range of the SUV in a liver core, relative to its median (normal
#: liver is homogeneous; a core merging liver with bowel, kidney or spleen is not).
MAX_UPTAKE_SPREAD = 0.5
#: With a PET, the organ found is cut to the voxels whose coarse SUV lies within these
#: factors of its core's median SUV (bowel, kidney or spleen beside the liver drop out).
LEVEL_RANGE = (0.7, 1.5)
#: PET bands around a histogram peak: these factors of the peak's SUV (wide enough for
#: SPECT-like noise; lesions inside the band's region are filled in as holes).
BAND_RANGE = (0.6, 1.5)
#: Width of the SUV histogram's bins, in log units (about 8 %).
LOG_BIN = 0.08
#: Depth (mm) below the right lung's base whose right half gives the liver's CT number.
SEED_DEPTH_MM = 120.0
#: Half-width (HU) of the narrow soft-tissue bands around the histogram's peaks.
BAND_HU = 12.0
#: Air (lungs, bowel gas, outside the body), HU.
AIR_HU = -400.0
#: Depth (mm) inside the tissue mask that separates touching organs into cores.
CORE_DEPTH_MM = 15.0
#: Smallest liver core (mL).
MIN_CORE_ML = 100.0
#: Least side-to-side width (mm) of a trunk's cross-section.
TRUNK_WIDTH_MM = 200.0
#: Least share of a slice's body area in its largest cross-section, for a trunk.
TRUNK_SHARE = 0.6
#: Least distance (mm) of the core's centroid to the right of the trunk's centre.
RIGHT_OFFSET_MM = 35.0
#: Least share of the core inside the trunk's cross-section (arms lie outside it).
IN_TRUNK_SHARE = 0.9
#: Least share of the core's voxels on the patient's right.
RIGHT_SHARE = 0.8
#: The right lung is air inside the body at least this deep (mm) ...
LUNG_CORE_MM = 12.0
#: ... holding at least this volume (mL); lung bases alone, below a chest field of view,
#: are not enough to place the search zone by.
MIN_LUNG_ML = 150.0


class NoOrganError(ValueError):
    """No plausible liver (or spleen) in the field of view."""


@dataclass(frozen=True)
class OrganEstimate:
    """An organ found without an organ map.

    Attributes
    ----------
    organ : str
        "liver".
    mask : (Z, Y, X) bool ndarray
        The organ on the PET grid.
    source : {"CT", "PET"}
        The image it was found on.
    details : dict
        JSON-ready record of how it was found (core volume, centroid, checks).
    """

    organ: str
    mask: NDArray[np.bool_]
    source: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Coarse:
    factors: tuple[int, int, int]
    geometry: Geometry
    shape: tuple[int, int, int]  # the full grid's shape


def _coarse(geometry: Geometry, target_mm: float = COARSE_MM) -> _Coarse:
    factors = tuple(max(1, round(target_mm / s)) for s in geometry.spacing)
    fz, fy, fx = factors
    shape = tuple(n // f for n, f in zip(geometry.shape, factors, strict=True))
    if min(shape) < 1:
        raise NoOrganError(f"the image ({geometry.shape} voxels) is too small to hold a liver")
    affine = geometry.affine.copy()
    affine[:3, :3] = geometry.affine[:3, :3] * np.array(factors, dtype=float)
    affine[:3, 3] = geometry.index_to_patient((np.array(factors, dtype=float) - 1) / 2)
    return _Coarse((fz, fy, fx), Geometry(affine, shape), geometry.shape)  # type: ignore[arg-type]


def _block_reduce(volume: NDArray[np.floating], coarse: _Coarse, how: str) -> NDArray[np.float32]:
    """Block mean or maximum of ``volume`` on the coarse grid (blocks cut at the far edges
    are dropped), accumulated over the ``fz·fy·fx`` strided sub-grids: one pass of
    contiguous adds instead of a reduction over a 6-D view."""
    fz, fy, fx = coarse.factors
    z, y, x = coarse.geometry.shape
    out: NDArray[np.float32] | None = None
    for a in range(fz):
        for b in range(fy):
            for c in range(fx):
                part = np.asarray(
                    volume[a : z * fz : fz, b : y * fy : fy, c : x * fx : fx], dtype=np.float32
                )
                if out is None:
                    out = part.copy()
                elif how == "max":
                    np.maximum(out, part, out=out)
                else:
                    out += part
    assert out is not None
    return out if how == "max" else out / np.float32(fz * fy * fx)


def _block_mean(volume: NDArray[np.floating], coarse: _Coarse) -> NDArray[np.float32]:
    return _block_reduce(volume, coarse, "mean")


def _upsample(mask: NDArray[np.bool_], coarse: _Coarse) -> NDArray[np.bool_]:
    """The coarse mask on the full grid (each coarse voxel fills its block)."""
    full = np.zeros(coarse.shape, dtype=bool)
    found = ndimage.find_objects(mask.astype(np.uint8))
    if not found or found[0] is None:
        return full
    box = found[0]
    grown = mask[box]
    for axis, f in enumerate(coarse.factors):
        grown = grown.repeat(f, axis=axis)
    start = [b.start * f for b, f in zip(box, coarse.factors, strict=True)]
    full[tuple(slice(a, a + n) for a, n in zip(start, grown.shape, strict=True))] = grown
    return full


def _fill_holes(mask: NDArray[np.bool_], per_slice: bool = False) -> NDArray[np.bool_]:
    """``mask`` with its holes filled: the background components that touch no face of
    the array (in each axial slice with ``per_slice``), found by one labelling."""
    if per_slice:
        structure = np.zeros((3, 3, 3), dtype=bool)
        structure[1] = ndimage.generate_binary_structure(2, 1)
        faces = [
            (slice(None), 0),
            (slice(None), -1),
            (slice(None), slice(None), 0),
            (slice(None), slice(None), -1),
        ]
    else:
        structure = ndimage.generate_binary_structure(3, 1)
        faces = [
            (0,),
            (-1,),
            (slice(None), 0),
            (slice(None), -1),
            (slice(None), slice(None), 0),
            (slice(None), slice(None), -1),
        ]
    labels, _ = ndimage.label(~mask, structure)
    outside = np.unique(np.concatenate([labels[face].ravel() for face in faces]))
    return np.asarray(mask | ~np.isin(labels, outside[outside > 0]) & (labels > 0))


def _depth(mask: NDArray[np.bool_], spacing: tuple[float, float, float]) -> NDArray[np.float64]:
    padded = np.pad(mask, 1, constant_values=False)
    return ndimage.distance_transform_edt(padded, sampling=spacing)[1:-1, 1:-1, 1:-1]


@dataclass(frozen=True)
class _Trunk:
    """Per slice: the body's largest cross-section (mask), its centre x and width (mm),
    and its share of the slice's body area."""

    mask: NDArray[np.bool_]
    centre_x: NDArray[np.float64]
    width_mm: NDArray[np.float64]
    share: NDArray[np.float64]


def _trunk(body: NDArray[np.bool_], geometry: Geometry) -> _Trunk:
    z = body.shape[0]
    trunk = np.zeros_like(body)
    centre = np.full(z, np.nan)
    width = np.zeros(z)
    share = np.zeros(z)
    row = geometry.affine[0]
    jj, ii = np.meshgrid(np.arange(body.shape[1]), np.arange(body.shape[2]), indexing="ij")
    x_in_plane = row[1] * jj + row[2] * ii + row[3]
    for k in range(z):
        labels, n = ndimage.label(body[k])
        if n == 0:
            continue
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        largest = labels == int(np.argmax(sizes))
        trunk[k] = largest
        xs = x_in_plane[largest] + row[0] * k
        centre[k] = float(xs.mean())
        width[k] = float(xs.max() - xs.min()) + geometry.spacing[2]
        share[k] = float(largest.sum() / body[k].sum())
    return _Trunk(trunk, centre, width, share)


def _body_from_ct(block_max: NDArray[np.floating]) -> NDArray[np.bool_]:
    """The body on the coarse grid from the blocks' maximum HU: a block holding any tissue
    is body, so a thin chest wall still closes around the lungs (filled per slice)."""
    labels = label_components(block_max > AIR_HU, 26)
    if labels.max() == 0:
        raise NoOrganError(f"the CT shows no body (no voxel above {AIR_HU:g} HU)")
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))
    return _fill_holes(body, per_slice=True)


def _candidates(
    tissue: NDArray[np.bool_],
    trunk: _Trunk,
    geometry: Geometry,
    *,
    lung_centroid_z: float | None = None,
    uptake: NDArray[np.float32] | None = None,
) -> tuple[list[dict[str, Any]], NDArray[np.int32]]:
    """The cores of ``tissue`` with their measurements and the checks they fail."""
    spacing = geometry.spacing
    core = _depth(tissue, spacing) >= CORE_DEPTH_MM
    labels = label_components(core, 26)
    n = int(labels.max())
    found = ndimage.find_objects(labels)
    voxel_ml = geometry.voxel_volume_ml
    out = []
    for label in range(1, n + 1):
        box = found[label - 1]
        if box is None:
            continue
        local = labels[box] == label
        index = np.argwhere(local) + np.array([b.start for b in box])
        points = geometry.index_to_patient(index)
        slices = index[:, 0]
        offset = points[:, 0] - trunk.centre_x[slices]
        core_ml = float(local.sum() * voxel_ml)
        centroid = points.mean(axis=0)
        right_share = float(np.mean(offset < 0))
        right_offset = float(-np.mean(offset))
        width = float(np.median(trunk.width_mm[slices]))
        share = float(np.median(trunk.share[slices]))
        in_trunk = float(np.mean(trunk.mask[tuple(index.T)]))
        record: dict[str, Any] = {
            "label": label,
            "core_ml": round(core_ml, 1),
            "centroid_mm": [round(float(v), 1) for v in centroid],
            "right_share": round(right_share, 3),
            "right_offset_mm": round(right_offset, 1),
            "trunk_width_mm": round(width, 1),
            "trunk_share": round(share, 3),
            "in_trunk": round(in_trunk, 3),
        }
        failed = []
        if core_ml < MIN_CORE_ML:
            failed.append(f"core {core_ml:.0f} mL < {MIN_CORE_ML:.0f} mL")
        if width < TRUNK_WIDTH_MM or share < TRUNK_SHARE:
            failed.append(
                f"not in a trunk (cross-section {width:.0f} mm wide, {share:.0%} of the body area)"
            )
        if in_trunk < IN_TRUNK_SHARE:
            failed.append(f"only {in_trunk:.0%} inside the trunk (an arm?)")
        if right_share < RIGHT_SHARE or right_offset < RIGHT_OFFSET_MM:
            failed.append(
                f"not on the patient's right ({right_share:.0%} right of the midline, "
                f"centroid {right_offset:.0f} mm to the right)"
            )
        if lung_centroid_z is not None and centroid[2] > lung_centroid_z:
            failed.append("lies above the right lung's centroid")
        if uptake is not None:
            q1, q2, q3 = (float(q) for q in np.percentile(uptake[tuple(index.T)], [25, 50, 75]))
            spread = (q3 - q1) / q2 if q2 > 0 else float("inf")
            record["suv_median"] = round(q2, 3)
            record["suv_spread"] = round(spread, 3)
            if spread > MAX_UPTAKE_SPREAD:
                failed.append(
                    f"uptake not homogeneous (interquartile range {spread:.2f} of the median SUV)"
                )
        record["failed"] = failed
        out.append(record)
    return out, labels


def _choose(candidates: list[dict[str, Any]], what: str) -> dict[str, Any]:
    passing = [c for c in candidates if not c["failed"]]
    if passing:
        return max(passing, key=lambda c: c["core_ml"])
    if not candidates:
        reason = f"no {what} region is {2 * CORE_DEPTH_MM:.0f} mm thick anywhere"
    else:
        biggest = max(candidates, key=lambda c: c["core_ml"])
        reason = f"the largest {what} region ({biggest['core_ml']:.0f} mL core): " + "; ".join(
            biggest["failed"]
        )
    raise NoOrganError(f"no plausible liver in the field of view ({reason})")


def _regrow(
    labels: NDArray[np.int32], label: int, tissue: NDArray[np.bool_], geometry: Geometry
) -> NDArray[np.bool_]:
    near = ndimage.distance_transform_edt(labels != label, sampling=geometry.spacing)
    return np.asarray(tissue & (near <= CORE_DEPTH_MM + max(geometry.spacing)))


@dataclass(frozen=True)
class _Lung:
    centroid_z: float
    base_z: float
    volume_ml: float


def _right_lung(air: NDArray[np.bool_], trunk: _Trunk, geometry: Geometry) -> _Lung | None:
    """The right lung: of the cores (at least ``LUNG_CORE_MM`` deep) of ``air`` (CT: air;
    PET: low uptake) inside the body on the right of the trunk's centre (the trachea
    joins both lungs; thin air gaps beside the arms and between the legs have no core)
    holding at least ``MIN_LUNG_ML`` in a trunk (not the head), the one whose centroid is
    highest (bowel gas lies below the lungs). None when there is none."""
    right = air & _right_of_midline(trunk, geometry)
    labels = label_components(_depth(right, geometry.spacing) >= LUNG_CORE_MM, 26)
    best: _Lung | None = None
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        index = np.argwhere(labels[box] == label) + np.array([b.start for b in box])
        volume = len(index) * geometry.voxel_volume_ml
        if volume < MIN_LUNG_ML or np.median(trunk.width_mm[index[:, 0]]) < TRUNK_WIDTH_MM:
            continue
        points = geometry.index_to_patient(index)
        z = float(points[:, 2].mean())
        if best is None or z > best.centroid_z:
            best = _Lung(z, float(points[:, 2].min()), volume)
    return best


def _right_of_midline(trunk: _Trunk, geometry: Geometry) -> NDArray[np.bool_]:
    """Voxels of the trunk on the patient's right of its centre (LPS x below the centre)."""
    row = geometry.affine[0]
    k, j, i = np.ogrid[tuple(slice(0, n) for n in geometry.shape)]
    x = row[0] * k + row[1] * j + row[2] * i + row[3]
    return np.asarray(trunk.mask & (x < trunk.centre_x[:, None, None]))


def _histogram_peaks(values: NDArray[np.floating], low: float, high: float) -> list[float]:
    """Centres of the main peaks (at least a quarter of the highest) of a histogram of
    ``values`` in [low, high] with 4-unit bins, highest first, at most two."""
    if values.size == 0:
        return []
    counts, edges = np.histogram(values, bins=np.arange(low, high + 4.0, 4.0))
    smooth = np.convolve(counts, [1, 2, 1], mode="same").astype(float)
    centres = (edges[:-1] + edges[1:]) / 2
    peaks = [
        n
        for n in range(len(smooth))
        if smooth[n] >= 0.25 * smooth.max()
        and smooth[n] >= (smooth[n - 1] if n else -1)
        and smooth[n] > (smooth[n + 1] if n + 1 < len(smooth) else -1)
    ]
    return [float(centres[n]) for n in sorted(peaks, key=lambda n: -smooth[n])[:2]]


def _slice_z(geometry: Geometry) -> NDArray[np.float64]:
    """Patient z (mm) of each slice's centre."""
    k = np.arange(geometry.shape[0], dtype=np.float64)
    centre = np.array([(geometry.shape[1] - 1) / 2, (geometry.shape[2] - 1) / 2])
    index = np.column_stack([k, np.broadcast_to(centre, (len(k), 2))])
    return geometry.index_to_patient(index)[:, 2]


def _zone(z: NDArray[np.float64], lung: _Lung | None) -> slice:
    """Slices of the upper abdomen: from ``ZONE_DEPTH_MM`` below the right lung's base up
    to the lung's centroid, or the top ``ZONE_DEPTH_MM`` of the field of view when it
    shows no lung (a study starting below the diaphragm)."""
    if lung is not None:
        inside = (z >= lung.base_z - ZONE_DEPTH_MM) & (z <= lung.centroid_z)
    else:
        inside = z >= z.max() - ZONE_DEPTH_MM
    found = np.flatnonzero(inside)
    return slice(int(found.min()), int(found.max()) + 1) if found.size else slice(0, 0)


def _crop(geometry: Geometry, zone: slice) -> Geometry:
    affine = geometry.affine.copy()
    affine[:3, 3] = geometry.index_to_patient(np.array([zone.start, 0.0, 0.0]))
    return Geometry(affine, (zone.stop - zone.start, geometry.shape[1], geometry.shape[2]))


def _at_level(
    found: NDArray[np.bool_],
    uptake: NDArray[np.float32],
    level: float,
    factors: tuple[float, float],
) -> NDArray[np.bool_]:
    """The largest component of ``found`` whose uptake lies within ``factors`` of
    ``level`` (SUV g/mL, the core's median), holes filled (lesions inside stay in the organ)."""
    low, high = factors
    near = found & (uptake >= low * level) & (uptake <= high * level)
    labels = label_components(near, 26)
    if labels.max() == 0:
        return found
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return _fill_holes(labels == int(np.argmax(sizes)))


def _search(
    value: NDArray[np.float32],
    bands: list[tuple[float, float]],
    allowed: NDArray[np.bool_],
    trunk: _Trunk,
    grid: Geometry,
    lung: _Lung | None,
    what: str,
    uptake: NDArray[np.float32] | None = None,
) -> tuple[dict[str, Any], NDArray[np.bool_]]:
    """The largest passing core over the tissue masks ``allowed & low <= value <= high``
    of every band, and that core grown back into its tissue (on ``grid``)."""
    best: tuple[dict[str, Any], NDArray[np.bool_], NDArray[np.int32]] | None = None
    every: list[dict[str, Any]] = []
    for low, high in bands:
        tissue = _fill_holes(allowed & (value >= low) & (value <= high))
        candidates, labels = _candidates(
            tissue,
            trunk,
            grid,
            lung_centroid_z=None if lung is None else lung.centroid_z,
            uptake=uptake,
        )
        for c in candidates:
            c["band"] = [round(low, 2), round(high, 2)]
        every.extend(candidates)
        passing = [c for c in candidates if not c["failed"]]
        if passing:
            top = max(passing, key=lambda c: c["core_ml"])
            if best is None or top["core_ml"] > best[0]["core_ml"]:
                best = (top, tissue, labels)
    if best is None:
        _choose(every, what)
        raise AssertionError("unreachable")  # pragma: no cover
    chosen, tissue, labels = best
    chosen["candidates"] = len(every)
    return chosen, _regrow(labels, chosen["label"], tissue, grid)


def find_liver_ct(
    ct: NDArray[np.floating], geometry: Geometry, suv: NDArray[np.floating] | None = None
) -> OrganEstimate:
    """Find the liver on a CT (HU) on the PET grid: the largest soft-tissue core in the
    right upper abdomen, below the right lung (module docstring).

    The search is limited to the upper abdomen (``ZONE_DEPTH_MM`` below the right lung's
    base, or below the top of a field of view without lungs). Soft tissue is tried as
    one wide band of HU (organs separated by fat) and as narrow bands (±``BAND_HU``)
    around the main peaks of the HU histogram of the right half of the trunk in the
    ``SEED_DEPTH_MM`` below the right lung's base (or the top of the field of view), which
    the liver fills (its own CT number, for organs that touch without fat between them).
    With the PET, soft tissue must also take up at least ``LIVER_UPTAKE_RATIO`` times
    the body's median SUV (liver, not muscle: FDG, DOTATATE and PSMA alike).

    Parameters
    ----------
    ct : (Z, Y, X) float ndarray
        CT in HU on ``geometry`` (e.g. ``Study.ct``).
    geometry : Geometry
        The grid of ``ct`` and ``suv``.
    suv : (Z, Y, X) float ndarray, optional
        PET in SUV (g/mL) on the same grid.

    Returns
    -------
    OrganEstimate
        The liver on the PET grid, source "CT".

    Raises
    ------
    NoOrganError
        No soft-tissue core passes the checks (head-and-neck or limb field of view, no
        CT in the trunk).
    """
    coarse = _coarse(geometry)
    small = _block_mean(ct, coarse)
    body = _body_from_ct(_block_reduce(ct, coarse, "max"))
    trunk = _trunk(body, coarse.geometry)
    lung = _right_lung(body & (small < AIR_HU), trunk, coarse.geometry)
    zone = _zone(_slice_z(coarse.geometry), lung)
    if zone.stop <= zone.start:
        raise NoOrganError("no plausible liver in the field of view (no slice below the lungs)")
    uptake: dict[str, Any] = {}
    allowed = body.copy()
    pet = None
    if suv is not None:
        pet = _block_mean(suv, coarse)
        background = float(np.median(pet[body]))
        allowed &= pet >= LIVER_UPTAKE_RATIO * background
        uptake = {"body_median_suv": round(background, 3), "least_ratio": LIVER_UPTAKE_RATIO}
        pet = pet[zone]
    grid = _crop(coarse.geometry, zone)
    small, allowed = small[zone], allowed[zone]
    trunk = _Trunk(trunk.mask[zone], trunk.centre_x[zone], trunk.width_mm[zone], trunk.share[zone])
    soft = allowed & (small >= SOFT_TISSUE_HU[0]) & (small <= SOFT_TISSUE_HU[1])
    z = _slice_z(grid)
    base = lung.base_z if lung is not None else z.max()
    window = (z >= base - SEED_DEPTH_MM) & (z <= base)
    seed = soft & _right_of_midline(trunk, grid) & window[:, None, None]
    peaks = _histogram_peaks(small[seed], *SOFT_TISSUE_HU)
    bands = [SOFT_TISSUE_HU] + [(p - BAND_HU, p + BAND_HU) for p in peaks]
    chosen, found = _search(small, bands, allowed, trunk, grid, lung, "soft-tissue", pet)
    if pet is not None:
        found = _at_level(found, pet, chosen["suv_median"], LEVEL_RANGE)
    zone_mask = np.zeros(coarse.geometry.shape, dtype=bool)
    zone_mask[zone] = found
    mask = _upsample(zone_mask, coarse)
    details = {
        "method": "largest soft-tissue core on the patient's right of the trunk, below the "
        "right lung" + (", with liver-like uptake" if suv is not None else ""),
        "coarse_voxel_mm": [round(v, 3) for v in grid.spacing],
        "bands_hu": [[round(a, 1), round(b, 1)] for a, b in bands],
        "uptake": uptake or None,
        "right_lung": _lung_record(lung),
        "chosen": chosen,
        "volume_ml": round(float(mask.sum() * geometry.voxel_volume_ml), 1),
    }
    return OrganEstimate("liver", mask, "CT", details)


def _lung_record(lung: _Lung | None) -> dict[str, float] | None:
    if lung is None:
        return None
    return {
        "centroid_z_mm": round(lung.centroid_z, 1),
        "base_z_mm": round(lung.base_z, 1),
        "volume_ml": round(lung.volume_ml, 1),
    }


def _peaks_log(values: NDArray[np.floating], low: float) -> list[float]:
    """Main peaks of the histogram of ``log(values)`` above ``low`` (SUV), highest first."""
    values = values[values > low]
    if values.size < 2:
        return []
    logs = np.log(values)
    centres = _histogram_peaks(
        logs / LOG_BIN * 4.0, float(logs.min() / LOG_BIN * 4.0), float(logs.max() / LOG_BIN * 4.0)
    )
    return [float(np.exp(c * LOG_BIN / 4.0)) for c in centres]


def find_liver_pet(suv: NDArray[np.floating], geometry: Geometry) -> OrganEstimate:
    """Find the liver on the PET alone: the largest core of homogeneous, moderate uptake
    (``LIVER_UPTAKE_RATIO`` times the body's median SUV or more) on the patient's right
    of the trunk.

    Uptake is tried as one band (everything above that floor) and as bands
    (``BAND_RANGE`` times the level) around the main peaks of the SUV histogram of the
    right half of the trunk above the floor, where the liver is the largest organ. Lungs
    are not used: in PET their uptake is close to that of fat, so they do not mark the
    upper abdomen reliably; the trunk, side, size and homogeneity checks stand alone.

    Parameters
    ----------
    suv : (Z, Y, X) float ndarray
        PET in SUV (g/mL).
    geometry : Geometry
        Its grid.

    Returns
    -------
    OrganEstimate
        The liver, source "PET".

    Raises
    ------
    NoOrganError
        No core passes the checks (head-and-neck or limb field of view, a field cropped
        around a tumour).
    """
    from petseg.body import body_mask

    coarse = _coarse(geometry)
    grid = coarse.geometry
    pet = _block_mean(suv, coarse)
    try:
        body = body_mask(pet, grid, margin_mm=0.0, smoothing_fwhm_mm=0.0)
    except ValueError as err:
        raise NoOrganError(f"no plausible liver in the field of view ({err})") from err
    trunk = _trunk(body, grid)
    background = float(np.median(pet[body]))
    floor = LIVER_UPTAKE_RATIO * background
    peaks = _peaks_log(pet[body & _right_of_midline(trunk, grid)], floor)
    low, high = BAND_RANGE
    bands = [(floor, float(np.inf))] + [(max(floor, low * p), high * p) for p in peaks]
    chosen, found = _search(pet, bands, body, trunk, grid, None, "moderate-uptake", pet)
    mask = _upsample(_at_level(found, pet, chosen["suv_median"], BAND_RANGE), coarse)
    details = {
        "method": "largest core of homogeneous uptake above twice the body's median SUV on "
        "the patient's right of the trunk",
        "coarse_voxel_mm": [round(v, 3) for v in grid.spacing],
        "body_median_suv": round(background, 3),
        "bands_suv": [[round(a, 3), round(b, 3)] for a, b in bands],
        "chosen": chosen,
        "volume_ml": round(float(mask.sum() * geometry.voxel_volume_ml), 1),
    }
    return OrganEstimate("liver", mask, "PET", details)
