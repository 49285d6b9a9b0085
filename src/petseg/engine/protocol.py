"""The engine protocols and the records they exchange (:mod:`petseg.engine`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    """One trained fold, as an engine's ``train`` reports it.

    Attributes
    ----------
    fold : int
        The fold number.
    path : Path
        Where its weights are.
    seconds : float
        Training time of this run, s.
    validation_dice : float or None
        Its last validation Dice (None when the engine does not report one).
    note : str
        One line for the terminal (epochs, loss, resumption).
    """

    fold: int
    path: Path
    seconds: float
    validation_dice: float | None
    note: str = ""


@dataclass
class Prediction:
    """A network's segmentation of one study and what its folds said.

    Attributes
    ----------
    result : SegmentationResult
        Lesion map, lesion table (with ``lesion_uncertainty``) and provenance.
    probability : (Z, Y, X) float32 ndarray
        Ensemble lesion probability on the PET grid.
    uncertainty : (Z, Y, X) float32 ndarray or None
        Mutual information of the folds in bits (None for one fold).
    fold_probabilities : dict of int to (Z, Y, X) float32 ndarray
        Each fold's lesion probability, filled only when the prediction was asked to keep
        them (otherwise the folds are never held together in memory).
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
        progress: bool = True,
    ) -> list[TrainedFold]:
        """Train ``folds`` (default all) of an ``n_folds`` split of ``dataset`` into ``out``
        with the engine's own configuration object (``progress``: show progress bars)."""
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
