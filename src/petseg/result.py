"""The result of a segmentation, whatever made it: threshold pipeline or network engine.

:class:`SegmentationResult` is what :mod:`petseg.report` writes into a case folder;
:func:`segmentation_from_mask` turns a network's binary lesion mask into one, with the
Carlsen et al. post-processing (body contour, components < 0.1 mL removed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.lesions import (
    DEFAULT_CONNECTIVITY,
    MIN_LESION_VOLUME_ML,
    LesionStats,
    PatientStats,
    patient_stats,
    quantify_lesions,
)
from petseg.organs import OrganMap, PhysiologicalRemoval
from petseg.postprocess import postprocess
from petseg.study import Study
from petseg.uncertainty import LesionUncertainty

__all__ = ["SegmentationResult", "segmentation_from_mask"]


@dataclass
class SegmentationResult:
    """A lesion map and its measurements, as written by :mod:`petseg.report`.

    Attributes
    ----------
    labels : (Z, Y, X) int32 ndarray
        The lesion map on the study's grid, 0 background.
    lesions : list of LesionStats
        One row per label.
    patient : PatientStats
        Totals over the lesions.
    method : str
        What made the map ("liver", "spleen", "fixed", "percent_max", "network", …).
    parameters : dict
        The method's parameters, recorded in ``report.json``.
    reference : dict, optional
        The reference VOI's organ and statistics (threshold methods).
    threshold_suv : float, optional
        The threshold applied, SUV in g/mL.
    physiological : PhysiologicalRemoval, optional
        What was removed as physiological organ uptake (written as ``removed.nii.gz``).
    organ_map : OrganMap, optional
        The organ map used for the removal (``organ_map.nii.gz``).
    extra : dict
        Method-specific provenance, e.g. the model and folds of a network prediction.
    reference_mask : (Z, Y, X) bool ndarray, optional
        The reference VOI of a threshold method (outlined on the MIP).
    lesion_uncertainty : list of LesionUncertainty, optional
        The fold ensemble's disagreement per lesion (:mod:`petseg.uncertainty`; network
        ensembles only).
    """

    labels: NDArray[np.int32]
    lesions: list[LesionStats]
    patient: PatientStats
    method: str
    parameters: dict[str, Any]
    reference: dict[str, Any] | None = None
    threshold_suv: float | None = None
    physiological: PhysiologicalRemoval | None = None
    organ_map: OrganMap | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    reference_mask: NDArray[np.bool_] | None = None
    lesion_uncertainty: list[LesionUncertainty] | None = None


def segmentation_from_mask(
    study: Study,
    mask: NDArray[np.bool_],
    model: Mapping[str, Any],
    *,
    min_volume_ml: float = MIN_LESION_VOLUME_ML,
    connectivity: int = DEFAULT_CONNECTIVITY,
    body: bool = True,
    parameters: Mapping[str, Any] | None = None,
) -> SegmentationResult:
    """Post-process a network's (Z, Y, X) lesion mask and measure it (both network engines).

    Parameters
    ----------
    study : Study
        The PET (SUVbw, g/mL) the mask was predicted on.
    mask : (Z, Y, X) bool ndarray
        Voxels predicted as lesion, on the study's grid.
    model : mapping
        The model's provenance, kept as ``extra["model"]``.
    min_volume_ml : float
        Components below this volume (mL) are removed (Carlsen: 0.1 mL).
    connectivity : int
        6, 18 or 26.
    body : bool
        Remove what lies outside the PET body contour.
    parameters : mapping, optional
        Added to the post-processing parameters in ``report.json``.

    Returns
    -------
    SegmentationResult
        Method "network", with the lesion table.
    """
    labels = postprocess(
        mask,
        study.pet,
        study.geometry,
        min_volume_ml=min_volume_ml,
        connectivity=connectivity,
        body=body,
    )
    lesions = quantify_lesions(study.pet, labels, study.geometry)
    return SegmentationResult(
        labels=labels,
        lesions=lesions,
        patient=patient_stats(lesions),
        method="network",
        parameters={
            "min_volume_ml": min_volume_ml,
            "connectivity": connectivity,
            "body": body,
            **(parameters or {}),
        },
        extra={"model": dict(model)},
    )
