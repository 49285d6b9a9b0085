"""Case folders of a prediction, for either engine (:mod:`petseg.engine`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from petseg.engine.protocol import DEFAULT_POST, Engine, EngineModel, PostProcessing, Prediction
from petseg.study import Study

if TYPE_CHECKING:
    from petseg.result import SegmentationResult

__all__ = ["predict_dataset", "predict_to_folder", "prediction_files"]


def prediction_files(
    prediction: Prediction, study: Study, save_probabilities: bool
) -> Callable[[Path], list[str]]:
    """The ``write_segmentation_outputs`` extra that writes a prediction's own files.

    Parameters
    ----------
    prediction : Prediction
        What the folds said.
    study : Study
        The study predicted (its grid is written into the NIfTI headers).
    save_probabilities : bool
        Also write the probabilities (module docstring), not only ``uncertainty.nii.gz``.
    """
    from petseg.io.nifti import write_nifti

    def write(folder: Path) -> list[str]:
        names = []
        if prediction.uncertainty is not None:
            write_nifti(folder / "uncertainty.nii.gz", prediction.uncertainty, study.geometry)
            names.append("uncertainty.nii.gz")
        if save_probabilities:
            write_nifti(folder / "probabilities.nii.gz", prediction.probability, study.geometry)
            names.append("probabilities.nii.gz")
            for fold, p in prediction.fold_probabilities.items():
                lesion = np.asarray(p, dtype=np.float32)
                name = f"nnunet_fold_{fold}.npz"
                np.savez_compressed(folder / name, probabilities=np.stack([1 - lesion, lesion]))
                names.append(name)
        return names

    return write


def predict_to_folder(
    engine: Engine,
    study: Study,
    model: EngineModel,
    out: str | Path,
    *,
    force: bool = False,
    save_probabilities: bool = False,
    rtstruct: bool = True,
    post: PostProcessing = DEFAULT_POST,
) -> Prediction:
    """Predict a study and write the same case folder as ``petseg segment`` plus the
    prediction's files (module docstring).

    Parameters
    ----------
    engine : Engine
        The engine of ``model``.
    study : Study
        The study to segment.
    model : EngineModel
        A model loaded by ``engine.load``.
    out : str or Path
        Case folder; refused if it exists, unless ``force``.
    force : bool
        Replace a case folder petseg wrote before (keeping its ``review/``).
    save_probabilities : bool
        Also write ``probabilities.nii.gz`` and the folds' ``nnunet_fold_<k>.npz``.
    rtstruct : bool
        Also write ``rtstruct.dcm`` for a study read from DICOM.
    post : PostProcessing
        Post-processing of the ensemble mask.
    """
    from petseg.report import write_segmentation_outputs

    prediction = engine.predict(study, model, keep_folds=save_probabilities, post=post)
    write_segmentation_outputs(
        out,
        study,
        prediction.result,
        force=force,
        rtstruct=rtstruct,
        extras=prediction_files(prediction, study, save_probabilities),
        inputs=[model.path],
    )
    return prediction


def predict_dataset(
    engine: Engine,
    dataset: str | Path,
    model_path: str | Path | None,
    out: str | Path,
    *,
    folds: str = "all",
    device: str = "cpu",
    force: bool = False,
    save_probabilities: bool = False,
) -> dict[str, SegmentationResult]:
    """Predict every case of a dataset folder into ``OUT/<case_id>/``.

    Parameters
    ----------
    engine : Engine
        The engine of the model folder.
    dataset : str or Path
        Dataset folder (docs/dataset-layout.md); lesion labels are not needed.
    model_path : str or Path or None
        Model folder (None: the engine's shipped model).
    out : str or Path
        Output folder, one case folder per case.
    folds : str
        ``"all"``, e.g. ``"0,2"``, or ``"crossval"``: each case with the single fold that
        did not train on it (the model's ``folds.json``), the cross-validation predictions.
    device : str
        ``"cpu"`` or ``"cuda"``.
    force : bool
        Replace case folders petseg wrote before.
    save_probabilities : bool
        Also write each case's probabilities (:func:`prediction_files`).
    """
    from petseg.io import load_study
    from petseg.io.dataset import list_cases
    from petseg.nn.folds import fold_of_case
    from petseg.progress import progress

    crossval = folds == "crossval"
    model = engine.load(
        None if model_path is None else Path(model_path),
        "all" if crossval else folds,
        device=device,
    )
    split = model.split()
    if crossval and split is None:
        raise FileNotFoundError(f"{model.path} has no folds.json; --folds crossval needs the split")
    results = {}
    for case_id in progress(list_cases(dataset, labelled=False), desc="predict", unit="case"):
        case_model = model
        if crossval:
            case_model = model.select([fold_of_case(split, case_id)])  # type: ignore[arg-type]
        prediction = predict_to_folder(
            engine,
            load_study(Path(dataset) / case_id),
            case_model,
            Path(out) / case_id,
            force=force,
            save_probabilities=save_probabilities,
            rtstruct=False,
        )
        results[case_id] = prediction.result
    return results
