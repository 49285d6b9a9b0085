"""The truth table of a phantom case (``truth.json``): organs, lesions, reference VOIs.

Everything a test or a user may check a segmentation against: per organ its true and
measured SUV, CT number and volume; per lesion its site, size, true and measured SUV and
position; the liver and spleen reference spheres with the threshold they give.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petseg import __version__
from petseg.phantom.anatomy import LABEL, ORGANS
from petseg.phantom.config import SYNTHETIC_NOTE, PhantomConfig
from petseg.phantom.lesions import Lesion
from petseg.study import Geometry

__all__ = ["reference_sphere", "truth_table"]

#: Reference sphere radius in mm (Carlsen: a 3 cm diameter sphere in normal liver).
REFERENCE_RADIUS_MM = 15.0
#: Threshold = factor · mean + 2 · SD of the reference sphere (liver 1.5, spleen 0.67).
THRESHOLD_FACTORS = {"liver": 1.5, "spleen": 0.67}


def reference_sphere(
    organs: NDArray[np.uint8], lesions: NDArray[np.int32], organ: str, geometry: Geometry
) -> dict[str, Any] | None:
    """A reference sphere in an organ: centred on the organ voxel farthest from the
    organ's border and from every lesion.

    Parameters
    ----------
    organs : (Z, Y, X) uint8 ndarray
        Organ labels (:data:`~petseg.phantom.anatomy.ORGANS`).
    lesions : (Z, Y, X) int32 ndarray
        Lesion labels (0 = background).
    organ : str
        Organ name, ``"liver"`` or ``"spleen"``.
    geometry : Geometry
        The grid of both.

    Returns
    -------
    dict or None
        ``centre_mm`` (LPS), ``radius_mm`` and ``clearance_mm`` (distance to the nearest
        border or lesion); None when the organ is not in the field.
    """
    mask = (organs == LABEL[organ]) & (lesions == 0)
    found = ndimage.find_objects(mask.astype(np.uint8))
    if not found or found[0] is None:
        return None
    box = found[0]
    depth = ndimage.distance_transform_edt(np.pad(mask[box], 1), sampling=geometry.spacing)[
        1:-1, 1:-1, 1:-1
    ]
    best = np.unravel_index(int(np.argmax(depth)), depth.shape)
    index = np.array([b + s.start for b, s in zip(best, box, strict=True)], dtype=np.float64)
    return {
        "centre_mm": [round(float(v), 3) for v in geometry.index_to_patient(index)],
        "radius_mm": REFERENCE_RADIUS_MM,
        "clearance_mm": round(float(depth[best]), 2),
    }


def _organ_table(
    geometry: Geometry,
    pet: NDArray[np.float32],
    organs: NDArray[np.uint8],
    lesions: NDArray[np.int32],
    suv: dict[str, float],
    hu: dict[str, float],
) -> dict[str, dict[str, Any]]:
    """Per organ: label, true SUV, mean SUV of its lesion-free voxels, HU, volume (mL)."""
    vv = geometry.voxel_volume_ml
    background = (lesions == 0).ravel()
    organ_flat = organs.ravel()
    pet_flat = pet.ravel().astype(np.float64)
    counts = np.bincount(organ_flat[background], minlength=len(ORGANS))
    sums = np.bincount(organ_flat[background], weights=pet_flat[background], minlength=len(ORGANS))
    table = {}
    for label, name in ORGANS.items():
        if label == 0:
            continue
        table[name] = {
            "label": label,
            "suv_true": round(suv[name], 4),
            "suv_mean_image": round(float(sums[label] / counts[label]), 4)
            if counts[label]
            else None,
            "hu": round(hu[name], 1),
            "volume_ml": round(float(counts[label] * vv), 3),
        }
    return table


def _lesion_table(
    geometry: Geometry, pet: NDArray[np.float32], lesions: NDArray[np.int32], drawn: list[Lesion]
) -> list[dict[str, Any]]:
    """Per lesion: site, size, true and measured SUV, CT number, centre and centroid."""
    if not drawn:
        return []
    vv = geometry.voxel_volume_ml
    index = np.arange(1, len(drawn) + 1)
    voxels = np.bincount(lesions.ravel(), minlength=len(drawn) + 1)[1:]
    centroids = ndimage.center_of_mass(np.ones(lesions.shape, np.uint8), lesions, index)
    maxima = ndimage.maximum(pet, lesions, index)
    means = ndimage.mean(pet, lesions, index)
    table = []
    for number, lesion in enumerate(drawn, start=1):
        centroid = geometry.index_to_patient(np.asarray(centroids[number - 1]))
        table.append(
            {
                "label": number,
                "site": lesion.site,
                "kind": lesion.kind,
                "diameter_mm": round(lesion.diameter_mm, 3),
                "semi_axes_mm": [round(float(a), 3) for a in lesion.axes],
                "suv_true": round(lesion.suv, 4),
                "low_uptake": lesion.low_uptake,
                "hu": round(lesion.hu, 1),
                "voxels": int(voxels[number - 1]),
                "volume_ml": round(float(voxels[number - 1] * vv), 6),
                "shape_volume_ml": round(float(4.0 / 3.0 * np.pi * np.prod(lesion.axes) / 1000), 6),
                "centre_mm": [round(float(v), 3) for v in lesion.centre],
                "centroid_mm": [round(float(v), 3) for v in centroid],
                "suv_max_image": round(float(maxima[number - 1]), 4),
                "suv_mean_image": round(float(means[number - 1]), 4),
            }
        )
    return table


def _reference_table(
    geometry: Geometry,
    pet: NDArray[np.float32],
    organs: NDArray[np.uint8],
    lesions: NDArray[np.int32],
) -> dict[str, dict[str, Any] | None]:
    """Liver and spleen reference spheres with their measured mean, SD and threshold."""
    from petseg.reference import sphere_mask

    reference = {}
    for organ, factor in THRESHOLD_FACTORS.items():
        sphere = reference_sphere(organs, lesions, organ, geometry)
        if sphere is not None:
            values = pet[sphere_mask(geometry, tuple(sphere["centre_mm"]), sphere["radius_mm"])]
            mean, sd = float(values.mean()), float(values.std(ddof=1))
            sphere.update(
                voxels=int(values.size),
                suv_mean_image=round(mean, 4),
                suv_sd_image=round(sd, 4),
                threshold_suv=round(factor * mean + 2 * sd, 4),
            )
        reference[organ] = sphere
    return reference


def truth_table(
    *,
    geometry: Geometry,
    pet: NDArray[np.float32],
    organs: NDArray[np.uint8],
    lesions: NDArray[np.int32],
    drawn: list[Lesion],
    suv: dict[str, float],
    hu: dict[str, float],
    seed: int | None,
    config: PhantomConfig,
    patient: dict[str, Any],
    noise: dict[str, Any],
    negative_control: bool,
    requested: int,
    threshold_estimate: float,
) -> dict[str, Any]:
    """The JSON-ready truth table of one case.

    Parameters
    ----------
    geometry : Geometry
        The case's grid.
    pet : (Z, Y, X) float32 ndarray
        The final PET, SUVbw in g/mL (measured values come from it).
    organs : (Z, Y, X) uint8 ndarray
        Organ labels.
    lesions : (Z, Y, X) int32 ndarray
        Lesion labels 1..N.
    drawn : list of Lesion
        The placed lesions, label ``k`` is ``drawn[k - 1]``.
    suv, hu : dict of str to float
        This patient's organ SUVbw (g/mL) and CT numbers (HU).
    seed : int or None
        The case's seed (None when a Generator was given).
    config : PhantomConfig
        The generator's parameters.
    patient : dict
        Patient description (id, weight in kg, scales, fat in mm, arms, primary site).
    noise : dict
        Noise model and its parameters.
    negative_control : bool
        A case without lesions by design.
    requested : int
        Lesions drawn before placement (some may not fit).
    threshold_estimate : float
        Expected liver threshold, SUVbw in g/mL.

    Returns
    -------
    dict
    """
    lesion_table = _lesion_table(geometry, pet, lesions, drawn)
    return {
        "synthetic": True,
        "note": SYNTHETIC_NOTE,
        "petseg_version": __version__,
        "generator": "petseg.phantom.generate_study",
        "seed": seed,
        "negative_control": negative_control,
        "patient": patient,
        "geometry": geometry.to_dict(),
        "parameters": config.to_dict(),
        "resolution": {
            "psf_fwhm_mm": config.psf_fwhm_mm,
            "postfilter_fwhm_mm": config.postfilter_fwhm_mm,
            "effective_fwhm_mm": round(config.resolution_fwhm_mm, 4),
            "applied": "Gaussian on the output grid to the anti-aliased activity",
        },
        "noise": noise,
        "organ_legend": {str(k): v for k, v in ORGANS.items()},
        "organs": _organ_table(geometry, pet, organs, lesions, suv, hu),
        "lesion_count": len(lesion_table),
        "lesions_requested": requested,
        "expected_liver_threshold_suv": round(threshold_estimate, 4),
        "lesions": lesion_table,
        "reference": _reference_table(geometry, pet, organs, lesions),
    }
