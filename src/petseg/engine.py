"""One interface for the network engines: petseg's built-in network and nnU-Net v2.

An engine (:class:`Engine`) trains k folds on a dataset folder, loads a model folder and
predicts a study; a prediction (:class:`Prediction`) is the segmentation result plus what
the folds said: the ensemble probability, the folds' disagreement (:mod:`petseg.uncertainty`)
and, when asked, each fold's probability. Everything after the folds' probabilities is
shared by both engines (:func:`ensemble_prediction`): the mean of the fold lesion
probabilities, the decision p > 0.5 (the argmax of the two-class softmax), the Carlsen post-processing (outside the PET body contour removed, components
< 0.1 mL removed) and the per-lesion uncertainty. :func:`predict_to_folder` and
:func:`predict_dataset` write case folders for either engine.

Case folder of a prediction (besides ``petseg segment``'s files, :mod:`petseg.report`):

* ``uncertainty.nii.gz`` — float32 mutual information of the folds in bits (≥ 2 folds);
* with ``save_probabilities``: ``probabilities.nii.gz`` (float32 ensemble lesion
  probability) and ``nnunet_fold_<k>.npz`` (fold k's softmax, key ``probabilities``,
  (2, Z, Y, X) float32: nnU-Net's layout, so ``petseg nnunet import`` reads them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from petseg.lesions import DEFAULT_CONNECTIVITY, MIN_LESION_VOLUME_ML
from petseg.study import Study

if TYPE_CHECKING:
    from petseg.result import SegmentationResult

__all__ = [
    "DEFAULT_POST",
    "ENGINES",
    "PROBABILITY_THRESHOLD",
    "Engine",
    "EngineModel",
    "PostProcessing",
    "Prediction",
    "TrainedFold",
    "ensemble_prediction",
    "get_engine",
    "predict_dataset",
    "predict_to_folder",
    "prediction_files",
]

#: Engine names, as ``--engine`` takes them.
ENGINES = ("builtin", "nnunet")
#: Ensemble probability above which a voxel is lesion (argmax of the two-class softmax).
PROBABILITY_THRESHOLD = 0.5


@dataclass(frozen=True)
class PostProcessing:
    """What happens to the ensemble's mask (the Carlsen post-processing).

    Parameters
    ----------
    min_volume_ml : float
        Components smaller than this (mL) are removed.
    connectivity : int
        Voxel connectivity of components (6, 18 or 26).
    body : bool
        Remove what lies outside the PET body contour.
    """

    min_volume_ml: float = MIN_LESION_VOLUME_ML
    connectivity: int = DEFAULT_CONNECTIVITY
    body: bool = True


#: The Carlsen post-processing with its published settings.
DEFAULT_POST = PostProcessing()


@dataclass(frozen=True)
class TrainedFold:
    """One trained fold: where its weights are, how long it took, its validation Dice
    (None when the engine does not report one) and a one-line note."""

    fold: int
    path: Path
    seconds: float
    validation_dice: float | None
    note: str = ""


@dataclass
class Prediction:
    """A network's segmentation of one study and what its folds said.

    ``probability`` is the (Z, Y, X) float32 ensemble lesion probability on the PET grid;
    ``uncertainty`` the (Z, Y, X) float32 mutual information of the folds in bits (None for
    one fold); ``fold_probabilities`` each fold's (Z, Y, X) float32 lesion probability,
    filled only when the prediction was asked to keep them (otherwise the folds are never
    held together in memory).
    """

    result: SegmentationResult
    probability: NDArray[np.float32]
    uncertainty: NDArray[np.float32] | None
    fold_probabilities: dict[int, NDArray[np.float32]] = field(default_factory=dict)


class EngineModel(Protocol):
    """A loaded model folder: its folds, its patient-level split and its provenance."""

    path: Path

    @property
    def folds(self) -> list[int]:
        """The loaded folds, ascending."""
        ...

    def split(self) -> Mapping[str, Any] | None:
        """The model's ``folds.json`` (which cases trained which fold), None if absent."""
        ...

    def select(self, folds: Sequence[int]) -> EngineModel:
        """The same model restricted to ``folds`` (already loaded)."""
        ...


class Engine(Protocol):
    """A network engine: train k folds, load a model folder, predict a study."""

    name: str

    def train(
        self,
        dataset: Path,
        out: Path,
        config: Any,
        *,
        n_folds: int = 5,
        folds: Sequence[int] | None = None,
        force: bool = False,
    ) -> list[TrainedFold]:
        """Train ``folds`` (default all) of an ``n_folds`` split of ``dataset`` into ``out``
        with the engine's own configuration object."""
        ...

    def load(
        self, path: Path | None, folds: str | Sequence[int] | None = "all", *, device: str = "cpu"
    ) -> EngineModel:
        """Load a model folder (``path`` None: the engine's shipped model, if it has one)."""
        ...

    def predict(
        self,
        study: Study,
        model: Any,
        *,
        keep_folds: bool = False,
        post: PostProcessing = DEFAULT_POST,
    ) -> Prediction:
        """Segment ``study`` with every loaded fold of ``model`` (:func:`ensemble_prediction`)."""
        ...


def get_engine(name: str, **options: Any) -> Engine:
    """The engine called ``name`` (one of :data:`ENGINES`).

    Parameters
    ----------
    name : str
        ``"builtin"`` (petseg's MONAI DynUNet) or ``"nnunet"`` (nnU-Net v2, optional extra).
    **options
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
    from petseg.result import segmentation_from_mask
    from petseg.uncertainty import FoldEnsemble, lesion_uncertainty

    ensemble = FoldEnsemble(study.geometry.shape, folds)
    kept: dict[int, NDArray[np.float32]] = {}
    for fold, probability in fold_maps:
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
    """
    from petseg.io import load_study
    from petseg.nn.data import list_cases
    from petseg.nn.folds import fold_of_case

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
    for case_id in list_cases(dataset, labelled=False):
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
