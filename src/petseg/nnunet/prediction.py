"""Prediction with a loaded nnU-Net model, one fold at a time.

Prediction builds the network with the trainer's ``build_network_architecture`` and hands
it to ``nnUNetPredictor.manual_initialization`` (its ``initialize_from_trained_model_folder``
looks the trainer up by name, which imports every trainer module). Each fold predicts
softmax probabilities on its own with nnU-Net's preprocessing, Gaussian sliding window
(step 0.5) and optional test-time mirroring; the ensemble, decision and post-processing
are petseg's (:func:`petseg.engine.ensemble_prediction`).

nnU-Net's image order is SimpleITK's, which for petseg's NIfTI files is petseg's
``(Z, Y, X)`` with spacing ``(dz, dy, dx)``, so the study's arrays go in as they are.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.nnunet.environment import quiet_nnunet_warnings
from petseg.nnunet.loading import NnunetModel
from petseg.study import Study

__all__ = ["fold_probabilities", "nnunet_predictor"]


def _study_image(study: Study) -> NDArray[np.float32]:
    """(2, Z, Y, X): PET SUV and CT HU, the channel order of the export."""
    if study.ct is None:
        raise ValueError(
            f"the nnU-Net model needs a CT channel but study {study.patient_id!r} has none; "
            "give --ct CT.nii.gz or a folder with a CT series"
        )
    return np.stack([study.pet, study.ct]).astype(np.float32)


def nnunet_predictor(model: NnunetModel, fold: int, *, use_mirroring: bool = True) -> Any:
    """An ``nnUNetPredictor`` holding one fold of ``model`` on the model's device.

    Parameters
    ----------
    model : NnunetModel
        The loaded model.
    fold : int
        One of its loaded folds.
    use_mirroring : bool
        Test-time mirroring along the model's allowed axes.
    """
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from petseg.nnunet.trainers import trainer_class

    plans_manager = PlansManager(model.plans)
    configuration = plans_manager.get_configuration(model.configuration)
    n_inputs = determine_num_input_channels(plans_manager, configuration, model.dataset_json)
    n_outputs = plans_manager.get_label_manager(model.dataset_json).num_segmentation_heads
    network = trainer_class(model.trainer).build_network_architecture(
        plans_manager, configuration, n_inputs, n_outputs, enable_deep_supervision=False
    )
    weights = model.parameters[fold]
    network.load_state_dict(weights)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a note about CPU devices
        predictor = nnUNetPredictor(
            tile_step_size=0.5,
            use_gaussian=True,
            use_mirroring=use_mirroring,
            perform_everything_on_device=model.device.startswith("cuda"),
            device=torch.device(model.device),
            verbose=False,
            allow_tqdm=False,
        )
    predictor.manual_initialization(
        network,
        plans_manager,
        configuration,
        [weights],
        model.dataset_json,
        model.trainer,
        model.mirror_axes,
    )
    return predictor


def fold_probabilities(
    study: Study, model: NnunetModel, *, use_mirroring: bool = True
) -> Iterator[tuple[int, NDArray[np.float32]]]:
    """Each loaded fold's (Z, Y, X) lesion probability (1 − background softmax) on the
    study's PET grid, one fold at a time.

    Parameters
    ----------
    study : Study
        PET in SUV (g/mL) and CT in HU on the PET grid.
    model : NnunetModel
        The folds to run.
    use_mirroring : bool
        nnU-Net's test-time mirroring.
    """
    image = _study_image(study)
    n_inputs = len(model.dataset_json["channel_names"])
    if n_inputs != image.shape[0]:
        raise ValueError(f"the model expects {n_inputs} input channels, petseg gives PET and CT")
    properties = {"spacing": [float(s) for s in study.geometry.spacing]}
    for fold in model.folds:
        predictor = nnunet_predictor(model, fold, use_mirroring=use_mirroring)
        with quiet_nnunet_warnings():
            _, softmax = predictor.predict_single_npy_array(
                image.copy(), dict(properties), None, None, True
            )
        if softmax.shape[1:] != study.geometry.shape:
            raise ValueError(
                f"nnU-Net returned probabilities of shape {softmax.shape[1:]}, expected the "
                f"PET grid {study.geometry.shape}"
            )
        yield fold, (1.0 - np.asarray(softmax[0], dtype=np.float32)).astype(np.float32)
