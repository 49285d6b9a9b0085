"""One synthetic patient: draw the body, paint anatomy and lesions, blur, add noise.

The image model (``docs/phantom.md``):

1. Organs and lesions are signed-distance shapes painted on the output grid with an
   anti-aliased volume fraction (a linear ramp of the signed distance over one voxel),
   giving the noiseless activity concentration ``A`` in SUV (g/mL).
2. Organs get a smooth multiplicative texture (Gaussian field, ``texture_cov``).
3. ``A`` is blurred with a Gaussian of FWHM ``sqrt(psf_fwhm_mm² + postfilter_fwhm_mm²)``
   (scanner PSF combined with the paper's 2 mm post-filter) on the output grid:
   ``B = G * A``.
4. Noise: ``PET = max(0, B + sqrt(k·B)·n)``, ``n`` a unit-variance Gaussian field with
   correlation FWHM ``noise_fwhm_mm``; ``k = cov² · SUV_liver`` so the liver's
   coefficient of variation on the output grid is ``cov`` (drawn per patient).

Ground-truth lesion labels are the lesion shapes before blur, voxelised by the
voxel-centre-inside rule; PET values near their border are lower (partial volume).
Every draw comes from one ``numpy.random.Generator``, in a fixed order: the same seed
gives identical arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petseg import __version__
from petseg.phantom.anatomy import Body, anatomy_layers
from petseg.phantom.config import (
    DEFAULT_SPACING,
    FWHM_PER_SIGMA,
    SYNTHETIC_NOTE,
    PhantomConfig,
    check_spacing,
    phantom_geometry,
)
from petseg.phantom.lesions import LesionPlacer, draw_lesions, paint_lesions
from petseg.phantom.shapes import Canvas
from petseg.phantom.truth import truth_table
from petseg.study import Geometry, Study

__all__ = ["PhantomCase", "gaussian_field", "generate_study"]


@dataclass
class PhantomCase:
    """One synthetic patient.

    Attributes
    ----------
    study : Study
        PET (SUVbw g/mL) and CT (HU), ``provenance["synthetic"] = True``.
    lesions : (Z, Y, X) int32 ndarray
        Ground-truth lesion labels 1..N (0 = background).
    organs : (Z, Y, X) uint8 ndarray
        Organ labels (legend :data:`~petseg.phantom.anatomy.ORGANS`, also in ``truth``).
    truth : dict
        JSON-ready truth table (lesions, organs, reference spheres, parameters).
    """

    study: Study
    lesions: NDArray[np.int32]
    organs: NDArray[np.uint8]
    truth: dict[str, Any]


def _rng(rng_or_seed: int | np.random.Generator) -> tuple[np.random.Generator, int | None]:
    """The generator to draw from, and the seed when one was given."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed, None
    if isinstance(rng_or_seed, (int, np.integer)) and not isinstance(rng_or_seed, bool):
        if rng_or_seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {rng_or_seed}")
        return np.random.default_rng(int(rng_or_seed)), int(rng_or_seed)
    raise TypeError(
        f"rng_or_seed must be an int seed or a numpy Generator, got {type(rng_or_seed).__name__}"
    )


def gaussian_field(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    fwhm_mm: float,
    spacing: tuple[float, ...],
) -> NDArray[np.float32]:
    """Zero-mean, unit-variance Gaussian random field with correlation FWHM ``fwhm_mm``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the white noise.
    shape : (3,) tuple of int
        ``(Z, Y, X)`` shape of the field.
    fwhm_mm : float
        Correlation length (FWHM of the Gaussian kernel) in mm.
    spacing : (3,) tuple of float
        ``(dz, dy, dx)`` voxel size in mm.

    Returns
    -------
    (Z, Y, X) float32 ndarray
    """
    field_ = rng.standard_normal(shape, dtype=np.float32)
    sigma = [fwhm_mm / FWHM_PER_SIGMA / s for s in spacing]
    field_ = ndimage.gaussian_filter(field_, sigma, mode="wrap")
    field_ /= np.float32(field_.std() or 1.0)
    return field_


@dataclass
class _Patient:
    """What is drawn per patient before anything is painted."""

    body: Body
    arms: str
    fat_mm: float
    weight_kg: float
    suv: dict[str, float]
    hu: dict[str, float]
    bladder_axes: tuple[float, float, float]
    liver_cov: float


def _draw_patient(rng: np.random.Generator, geometry: Geometry, config: PhantomConfig) -> _Patient:
    """Body size, arms, fat, weight, organ uptake and CT numbers, noise level."""
    top = config.axial_range_mm[0]
    z_top = geometry.index_to_patient([geometry.shape[0] - 1, 0, 0])[2] + geometry.spacing[0] / 2
    body = Body(
        z_vertex=float(z_top + top), height=rng.uniform(0.93, 1.05), girth=rng.uniform(0.85, 1.15)
    )
    arms = "up" if rng.uniform() < config.arms_up_probability else "down"
    fat_mm = float(6.0 + 60.0 * (body.girth - 0.85) + rng.uniform(-2.0, 2.0))
    weight_kg = float(np.clip(72.0 * body.girth**2 * body.height + rng.normal(0, 3), 50, 110))
    suv = {name: float(rng.uniform(lo, hi)) for name, (lo, hi) in config.uptake.items()}
    hu = {name: float(v + rng.normal(0.0, 5.0)) for name, v in config.hu.items()}
    bladder_axes = (rng.uniform(30, 55), rng.uniform(25, 45), rng.uniform(25, 45) * body.height)
    liver_cov = float(rng.uniform(*config.liver_cov))
    return _Patient(body, arms, fat_mm, weight_kg, suv, hu, bladder_axes, liver_cov)


def _paint_anatomy(
    rng: np.random.Generator, geometry: Geometry, patient: _Patient, config: PhantomConfig
) -> Canvas:
    """The anatomy painted on the grid, with the organs' multiplicative texture."""
    canvas = Canvas(geometry)
    for layer in anatomy_layers(
        rng,
        patient.body,
        patient.suv,
        patient.hu,
        arms=patient.arms,
        fat_mm=patient.fat_mm,
        bladder_axes=patient.bladder_axes,
    ):
        canvas.paint(layer)
    texture = gaussian_field(rng, geometry.shape, config.texture_fwhm_mm, geometry.spacing)
    texture *= np.float32(config.texture_cov)
    texture += np.float32(1.0)
    canvas.activity *= texture
    return canvas


def _lesion_count(
    rng: np.random.Generator,
    n_lesions: int | None,
    negative_control: bool,
    config: PhantomConfig,
) -> int:
    """The requested count, or a draw from the log-normal of ``config`` (1..max)."""
    if negative_control:
        return 0
    if n_lesions is not None:
        return int(n_lesions)
    draw = rng.lognormal(np.log(config.median_lesions), config.lesion_count_sigma)
    return int(np.clip(round(draw), 1, config.max_lesions))


def _acquire(
    rng: np.random.Generator, canvas: Canvas, k: float, config: PhantomConfig
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """PET (blur, then signal-dependent noise with variance ``k·B``) and CT (HU, noise).

    Empties ``canvas.activity`` to free its memory; the CT is ``canvas.hu``, changed in
    place.
    """
    spacing = canvas.geometry.spacing
    shape = canvas.geometry.shape
    fwhm = config.resolution_fwhm_mm
    pet = ndimage.gaussian_filter(
        canvas.activity, [fwhm / FWHM_PER_SIGMA / s for s in spacing], mode="constant"
    )
    canvas.activity = np.empty((0, 0, 0), np.float32)
    np.maximum(pet, 0.0, out=pet)
    noise = gaussian_field(rng, shape, config.noise_fwhm_mm, spacing)
    noise *= np.sqrt(np.float32(k) * pet)
    pet += noise
    del noise
    np.maximum(pet, 0.0, out=pet)
    ct = canvas.hu
    ct_noise = rng.standard_normal(shape, dtype=np.float32)
    ct_noise *= np.float32(config.ct_noise_hu)
    ct += ct_noise
    del ct_noise
    np.clip(np.rint(ct, out=ct), -1024, 3071, out=ct)
    return pet, ct


def generate_study(
    rng_or_seed: int | np.random.Generator,
    *,
    spacing: tuple[float, float, float] = DEFAULT_SPACING,
    n_lesions: int | None = None,
    negative_control: bool = False,
    config: PhantomConfig | None = None,
    patient_id: str = "phantom",
) -> PhantomCase:
    """Generate one synthetic whole-body [64Cu]Cu-DOTATATE PET/CT with ground truth.

    Pure: no file is read or written.

    Parameters
    ----------
    rng_or_seed : int or numpy.random.Generator
        An int seed makes the case reproducible (recorded in ``truth["seed"]``).
    spacing : (3,) tuple of float
        ``(dz, dy, dx)`` output voxel size in mm; 4 mm isotropic by default, 3×2×2 mm is
        the paper's grid.
    n_lesions : int, optional
        Number of lesions to draw (0..``config.max_lesions``); default drawn from a
        log-normal with median ``config.median_lesions``, 1..max. Fewer may be
        placed when the anatomy is crowded (``truth["lesions_requested"]`` says).
    negative_control : bool
        A patient without lesions (``truth["negative_control"] = True``).
    config : PhantomConfig, optional
        Generator parameters (default :class:`PhantomConfig`).
    patient_id : str
        Patient id of the study and the truth table.

    Returns
    -------
    PhantomCase
        ``study.pet`` (Z, Y, X) float32 SUVbw g/mL, ``study.ct`` HU, ``lesions`` int32,
        ``organs`` uint8 and the ``truth`` table.
    """
    config = config or PhantomConfig()
    rng, seed = _rng(rng_or_seed)
    spacing = check_spacing(spacing)
    _check_lesion_count(n_lesions, negative_control, config)
    geometry = phantom_geometry(spacing, config)
    patient = _draw_patient(rng, geometry, config)
    canvas = _paint_anatomy(rng, geometry, patient, config)
    n = _lesion_count(rng, n_lesions, negative_control, config)
    suv = patient.suv
    threshold_estimate = suv["liver"] * (
        1.5 + 2.0 * math.hypot(patient.liver_cov, config.texture_cov)
    )
    placer = LesionPlacer(canvas, patient.body, config.lesion_gap_mm)
    drawn, primary = draw_lesions(rng, placer, n, threshold_estimate, config)
    lesions = paint_lesions(canvas, drawn)
    k = patient.liver_cov**2 * suv["liver"]
    pet, ct = _acquire(rng, canvas, k, config)
    truth = truth_table(
        geometry=geometry,
        pet=pet,
        organs=canvas.organs,
        lesions=lesions,
        drawn=drawn,
        suv=suv,
        hu=patient.hu,
        seed=seed,
        config=config,
        patient=_patient_record(patient, patient_id, primary),
        noise=_noise_record(patient, k, config),
        negative_control=negative_control,
        requested=n,
        threshold_estimate=threshold_estimate,
    )
    study = Study(
        pet=pet,
        geometry=geometry,
        ct=ct,
        patient_id=patient_id,
        study_id=f"{patient_id}-phantom",
        provenance=_provenance(seed),
    )
    return PhantomCase(study=study, lesions=lesions, organs=canvas.organs, truth=truth)


def _check_lesion_count(
    n_lesions: int | None, negative_control: bool, config: PhantomConfig
) -> None:
    if negative_control and n_lesions:
        raise ValueError(f"a negative control has no lesions; got n_lesions={n_lesions}")
    if n_lesions is not None and not 0 <= n_lesions <= config.max_lesions:
        raise ValueError(f"n_lesions must be in 0..{config.max_lesions}, got {n_lesions}")


def _noise_record(patient: _Patient, k: float, config: PhantomConfig) -> dict[str, Any]:
    """The noise part of the truth table."""
    return {
        "model": "PET = max(0, B + sqrt(k*B)*n), B = PSF-blurred activity, n unit Gaussian field",
        "liver_cov_target": round(patient.liver_cov, 4),
        "k_suv": round(k, 5),
        "noise_fwhm_mm": config.noise_fwhm_mm,
        "texture_cov": config.texture_cov,
    }


def _provenance(seed: int | None) -> dict[str, Any]:
    """The study's provenance: synthetic, the generator and its seed."""
    return {
        "synthetic": True,
        "generator": "petseg.phantom.generate_study",
        "petseg_version": __version__,
        "seed": seed,
        "note": SYNTHETIC_NOTE,
    }


def _patient_record(patient: _Patient, patient_id: str, primary: str) -> dict[str, Any]:
    """The patient part of the truth table."""
    return {
        "patient_id": patient_id,
        "weight_kg": round(patient.weight_kg, 1),
        "height_scale": round(patient.body.height, 4),
        "girth_scale": round(patient.body.girth, 4),
        "subcutaneous_fat_mm": round(patient.fat_mm, 1),
        "arms": patient.arms,
        "primary_site": primary,
    }
