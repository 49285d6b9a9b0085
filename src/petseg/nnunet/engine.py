"""nnU-Net v2 as a :class:`petseg.engine.Engine`: train, load and predict through its Python API.

Modules behind it: :mod:`~petseg.nnunet.environment` (installation, environment variables,
work folder), :mod:`~petseg.nnunet.training`, :mod:`~petseg.nnunet.loading`,
:mod:`~petseg.nnunet.prediction`. Each fold predicts softmax probabilities on its own; the
ensemble is petseg's mean of the fold lesion probabilities, followed by petseg's
post-processing and uncertainty (:func:`petseg.engine.ensemble_prediction`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from petseg.engine.ensemble import ensemble_prediction
from petseg.engine.protocol import DEFAULT_POST, PostProcessing, Prediction, TrainedFold
from petseg.nnunet.loading import NnunetModel
from petseg.nnunet.training import NnunetTraining
from petseg.study import Study

__all__ = ["NnunetEngine"]


class NnunetEngine:
    """nnU-Net v2 (optional extra ``petseg[nnunet]``).

    Parameters
    ----------
    use_mirroring : bool
        nnU-Net's test-time mirroring when predicting (about 8× slower on CPU).
    """

    name = "nnunet"

    def __init__(self, *, use_mirroring: bool = True) -> None:
        self.use_mirroring = use_mirroring

    def train(
        self,
        dataset: Path,
        out: Path,
        config: NnunetTraining,
        *,
        n_folds: int = 5,
        folds: Sequence[int] | None = None,
        force: bool = False,
        progress: bool = True,
    ) -> list[TrainedFold]:
        """Export, plan, preprocess and train (:func:`petseg.nnunet.training.train_nnunet`;
        nnU-Net logs its own progress, so ``progress`` changes nothing)."""
        from petseg.nnunet.training import train_nnunet

        record = train_nnunet(dataset, out, config, n_folds=n_folds, folds=folds, force=force)
        model = Path(out) / record["model"]
        return [
            TrainedFold(int(fold), model / f"fold_{fold}", seconds, None, "nnU-Net")
            for fold, seconds in record["fold_seconds"].items()
        ]

    def load(
        self, path: Path | None, folds: str | Sequence[int] | None = "all", *, device: str = "cpu"
    ) -> NnunetModel:
        """Load a work folder of ``petseg train --engine nnunet`` or an nnU-Net results folder."""
        from petseg.nnunet.loading import load_nnunet_model

        if path is None:
            raise ValueError(
                "the nnunet engine has no shipped model: give --model, a folder made by "
                "petseg train --engine nnunet"
            )
        return load_nnunet_model(path, folds, device=device)

    def predict(
        self,
        study: Study,
        model: NnunetModel,
        *,
        keep_folds: bool = False,
        post: PostProcessing = DEFAULT_POST,
    ) -> Prediction:
        """Every loaded fold, then the shared ensemble (:func:`petseg.engine.ensemble_prediction`)."""
        from petseg.nnunet.environment import PLANS_IDENTIFIER, nnunet_version
        from petseg.nnunet.prediction import fold_probabilities

        started = time.perf_counter()
        mirroring = bool(self.use_mirroring and model.mirror_axes)
        provenance = {
            "engine": "nnunet",
            "path": str(model.path),
            "nnunetv2_version": nnunet_version(),
            "configuration": model.configuration,
            "trainer": model.trainer,
            "plans_identifier": model.plans.get("plans_name", PLANS_IDENTIFIER),
            "folds": model.folds,
            "pet_normalisation": model.pet_normalisation,
            "test_time_mirroring": mirroring,
            "mirror_axes": model.mirror_axes,
            "trained_on_synthetic_data": bool(model.info.get("synthetic", False)),
            "budget": model.info.get("budget_used"),
            "device": model.device,
        }
        prediction = ensemble_prediction(
            study,
            fold_probabilities(study, model, use_mirroring=self.use_mirroring),
            model.folds,
            provenance,
            parameters={"sliding_window_overlap": 0.5, "test_time_mirroring": mirroring},
            keep_folds=keep_folds,
            post=post,
        )
        seconds = round(time.perf_counter() - started, 2)
        prediction.result.extra["model"]["inference_seconds"] = seconds
        return prediction
