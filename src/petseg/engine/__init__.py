"""One interface for the network engines: petseg's built-in network and nnU-Net v2.

An engine (:class:`Engine`) trains k folds on a dataset folder, loads a model folder and
predicts a study; a prediction (:class:`Prediction`) is the segmentation result plus what
the folds said: the ensemble probability, the folds' disagreement (:mod:`petseg.uncertainty`)
and, when asked, each fold's probability. Everything after the folds' probabilities is
shared by both engines (:func:`ensemble_prediction`): the mean of the fold lesion
probabilities, the decision p > 0.5 (the argmax of the two-class softmax), the Carlsen
post-processing (outside the PET body contour removed, components < 0.1 mL removed) and
the per-lesion uncertainty. :func:`predict_to_folder` and :func:`predict_dataset` write
case folders for either engine; :func:`get_engine` gives an engine by name.

Modules: ``protocol`` (the :class:`Engine` and ``EngineModel`` protocols, the records they
exchange, ``PROBABILITY_THRESHOLD`` and ``DEFAULT_POST``), ``ensemble`` (the shared
ensemble), ``folders`` (case folders).

Case folder of a prediction (besides ``petseg segment``'s files, :mod:`petseg.report`):

* ``uncertainty.nii.gz`` — float32 mutual information of the folds in bits (≥ 2 folds);
* with ``save_probabilities``: ``probabilities.nii.gz`` (float32 ensemble lesion
  probability) and ``nnunet_fold_<k>.npz`` (fold k's softmax, key ``probabilities``,
  (2, Z, Y, X) float32: nnU-Net's layout, so ``petseg nnunet import`` reads them).
"""

from __future__ import annotations

from typing import Any

from petseg.engine.ensemble import ensemble_prediction
from petseg.engine.folders import predict_dataset, predict_to_folder, prediction_files
from petseg.engine.protocol import ENGINES, Engine, PostProcessing, Prediction

__all__ = [
    "ENGINES",
    "Engine",
    "PostProcessing",
    "Prediction",
    "ensemble_prediction",
    "get_engine",
    "predict_dataset",
    "predict_to_folder",
    "prediction_files",
]


def get_engine(name: str, **options: Any) -> Engine:
    """The engine called ``name`` (one of :data:`ENGINES`).

    Parameters
    ----------
    name : str
        ``"builtin"`` (petseg's MONAI DynUNet) or ``"nnunet"`` (nnU-Net v2, optional extra).
    **options : Any
        Engine options: ``use_mirroring`` (bool, nnU-Net test-time mirroring).
    """
    from petseg.checks import check_choice

    check_choice("engine", name, ENGINES)
    if name == "nnunet":
        from petseg.nnunet.engine import NnunetEngine

        return NnunetEngine(**options)
    from petseg.nn.engine import BuiltinEngine

    if options:
        raise ValueError(f"the builtin engine takes no options, got {sorted(options)}")
    return BuiltinEngine()
