"""The built-in network (MONAI DynUNet, :mod:`petseg.nn`) as a :class:`petseg.engine.Engine`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from petseg.engine.ensemble import ensemble_prediction
from petseg.engine.protocol import DEFAULT_POST, PostProcessing, Prediction, TrainedFold
from petseg.study import Study

if TYPE_CHECKING:
    from petseg.nn.infer import LoadedModel
    from petseg.nn.train import TrainConfig

__all__ = ["BuiltinEngine", "BuiltinTraining"]


def _default_config() -> TrainConfig:
    from petseg.nn.train import TrainConfig

    return TrainConfig()


@dataclass(frozen=True)
class BuiltinTraining:
    """How the built-in network trains.

    Parameters
    ----------
    budget : str
        Compute budget of the plan (``petseg.nn.plan.BUDGETS``: "cpu-small", "nnunet", ...).
    config : TrainConfig
        Epochs, iterations, optimiser, seed, device, threads, augmentation.
    """

    budget: str = "cpu-small"
    config: TrainConfig = field(default_factory=_default_config)


class BuiltinEngine:
    """petseg's nnU-Net-style DynUNet: :func:`petseg.nn.train.train` and
    :mod:`petseg.nn.infer`; ``load(None)`` is the shipped demonstration model."""

    name = "builtin"

    def train(
        self,
        dataset: Path,
        out: Path,
        config: BuiltinTraining,
        *,
        n_folds: int = 5,
        folds: Sequence[int] | None = None,
        force: bool = False,
        progress: bool = True,
    ) -> list[TrainedFold]:
        """Plan, split and train folds (:func:`petseg.nn.train.train`)."""
        from petseg.nn.train import train

        results = train(
            dataset,
            out,
            n_folds=n_folds,
            folds=folds,
            budget=config.budget,
            config=config.config,
            force=force,
            progress=progress,
        )
        return [
            TrainedFold(
                fold=r.fold,
                path=r.model_path,
                seconds=r.seconds,
                validation_dice=r.final_val_dice,
                note=f"{r.epochs_done} epochs"
                + (f" (resumed at epoch {r.resumed_from_epoch})" if r.resumed_from_epoch else "")
                + f", loss {r.final_loss:.3f}",
            )
            for r in results
        ]

    def load(
        self, path: Path | None, folds: str | Sequence[int] | None = "all", *, device: str = "cpu"
    ) -> LoadedModel:
        """Load a model folder made by ``petseg train`` (None: the demonstration model)."""
        from petseg.nn.infer import load_model

        return load_model(path, folds, device=device)

    def predict(
        self,
        study: Study,
        model: LoadedModel,
        *,
        keep_folds: bool = False,
        post: PostProcessing = DEFAULT_POST,
    ) -> Prediction:
        """Every loaded fold, then the shared ensemble (:func:`petseg.engine.ensemble_prediction`)."""
        import time

        from petseg.nn.infer import OVERLAP, SIGMA_SCALE, fold_probabilities

        started = time.perf_counter()
        prediction = ensemble_prediction(
            study,
            fold_probabilities(study, model),
            model.folds,
            model.provenance(),
            parameters={"sliding_window_overlap": OVERLAP, "gaussian_sigma_scale": SIGMA_SCALE},
            keep_folds=keep_folds,
            post=post,
        )
        seconds = round(time.perf_counter() - started, 2)
        prediction.result.extra["model"]["inference_seconds"] = seconds
        return prediction
