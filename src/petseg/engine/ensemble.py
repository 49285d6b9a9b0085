"""The ensemble both engines share: mean, decision, post-processing, uncertainty."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.engine.protocol import DEFAULT_POST, PROBABILITY_THRESHOLD, PostProcessing, Prediction
from petseg.study import Study

__all__ = ["ensemble_prediction"]


def ensemble_prediction(
    study: Study,
    fold_maps: Iterable[tuple[int, NDArray[np.floating]]],
    folds: Sequence[int],
    provenance: Mapping[str, Any],
    *,
    parameters: Mapping[str, Any] | None = None,
    keep_folds: bool = False,
    post: PostProcessing = DEFAULT_POST,
) -> Prediction:
    """Mean of the fold probabilities, decision, post-processing and uncertainty.

    Parameters
    ----------
    study : Study
        The study predicted (its PET grid is the maps' grid).
    fold_maps : iterable of (int, (Z, Y, X) float ndarray)
        ``(fold, lesion probability)`` on the PET grid, consumed one at a time.
    folds : sequence of int
        The folds ``fold_maps`` yields.
    provenance : mapping
        The model's provenance, written to ``report.json["model"]``.
    parameters : mapping, optional
        Engine parameters added to the result's parameters.
    keep_folds : bool
        Keep each fold's probability in the prediction (float32, one map per fold).
    post : PostProcessing
        Post-processing of the ensemble mask.
    """
    from petseg.progress import progress
    from petseg.result import segmentation_from_mask
    from petseg.uncertainty import FoldEnsemble, lesion_uncertainty

    ensemble = FoldEnsemble(study.geometry.shape, folds)
    kept: dict[int, NDArray[np.float32]] = {}
    bar = progress(fold_maps, total=len(folds), desc=f"{study.patient_id}: folds", unit="fold")
    for fold, probability in bar:
        ensemble.add(fold, probability)
        if keep_folds:
            kept[fold] = np.asarray(probability, dtype=np.float32)
    mean = ensemble.mean()
    result = segmentation_from_mask(
        study,
        mean > PROBABILITY_THRESHOLD,
        provenance,
        min_volume_ml=post.min_volume_ml,
        connectivity=post.connectivity,
        body=post.body,
        parameters={
            "probability_threshold": PROBABILITY_THRESHOLD,
            "ensemble": "mean of fold lesion probabilities" if len(folds) > 1 else "single fold",
            "members": len(folds),
            "uncertainty": "mutual information of the folds, bits (petseg.uncertainty)",
            **(parameters or {}),
        },
    )
    uncertainty = None
    if len(folds) > 1:
        uncertainty = ensemble.mutual_information()
        result.lesion_uncertainty = lesion_uncertainty(
            result.labels, uncertainty, ensemble.votes(), len(folds)
        )
    return Prediction(result, mean, uncertainty, kept)
