"""Realistic synthetic whole-body [64Cu]Cu-DOTATATE PET/CT studies with ground truth.

No real whole-body DOTATATE PET/CT can be shared with petseg, so this generator stands
in for it: plausible anatomy (body outline with subcutaneous fat, arms, brain,
pituitary, salivary glands, thyroid, lungs, heart and aorta, liver, spleen, kidneys,
adrenals, pancreas, stomach, bowel, bladder, skeleton with spine, ribs and pelvis),
physiological DOTATATE uptake in SUVbw, 0–40 neuroendocrine lesions per patient,
partial-volume blur, PET noise and a CT in HU. Everything is drawn from one
``numpy.random.Generator``: the same seed gives identical arrays.

Modules (the image model is in :mod:`~petseg.phantom.generate` and ``docs/phantom.md``):

:mod:`~petseg.phantom.config`
    :class:`PhantomConfig` (uptake, CT numbers, resolution, noise, lesion counts), the grid.
:mod:`~petseg.phantom.shapes`
    Signed-distance shapes and the canvas they are painted on.
:mod:`~petseg.phantom.anatomy`
    Organ labels (:data:`ORGANS`) and the reference adult's layers.
:mod:`~petseg.phantom.lesions`
    Lesion sites, sizes and uptake; placement and painting.
:mod:`~petseg.phantom.truth`
    The truth table (``truth.json``).
:mod:`~petseg.phantom.generate`
    :func:`generate_study`: one patient, in memory.
:mod:`~petseg.phantom.writers`
    :func:`write_dataset`: case folders on disk (NIfTI, optionally DICOM).
"""

from petseg.io.dicom_write import CU64_HALF_LIFE_S
from petseg.phantom.anatomy import ORGANS
from petseg.phantom.config import (
    DEFAULT_HU,
    DEFAULT_SPACING,
    DEFAULT_UPTAKE,
    SYNTHETIC_NOTE,
    PhantomConfig,
    phantom_geometry,
)
from petseg.phantom.generate import PhantomCase, generate_study
from petseg.phantom.writers import write_dataset

__all__ = [
    "CU64_HALF_LIFE_S",
    "DEFAULT_HU",
    "DEFAULT_SPACING",
    "DEFAULT_UPTAKE",
    "ORGANS",
    "SYNTHETIC_NOTE",
    "PhantomCase",
    "PhantomConfig",
    "generate_study",
    "phantom_geometry",
    "write_dataset",
]
