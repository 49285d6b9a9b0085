"""petseg's nnU-Net trainer classes (subclasses of nnU-Net's default ``nnUNetTrainer``).

Only the training length differs from nnU-Net's default; the network, loss, optimiser,
augmentation and sampling are nnU-Net's own. For other budgets pass
:class:`petseg.nnunet.training.TrainBudget` to :func:`~petseg.nnunet.training.train_nnunet`
instead of adding a class per epoch count. :func:`trainer_class` finds a trainer by name.

This module imports nnU-Net at import time: import it only where nnunetv2 is installed
(petseg imports it lazily, inside the engine's functions).
"""

from __future__ import annotations

from typing import Any

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

__all__ = ["TRAINERS", "nnUNetTrainer_petsegTiny", "trainer_class"]

#: petseg's own trainer classes, by name.
TRAINERS = ("nnUNetTrainer_petsegTiny",)


class nnUNetTrainer_petsegTiny(nnUNetTrainer):
    """Smoke-test budget for CI on 2 CPU cores: 1 epoch × 2 iterations, 1 validation
    iteration (nnU-Net's default: 1000 × 250, 50). Learns almost nothing; it
    proves that the whole chain runs through the real nnU-Net.

    Parameters
    ----------
    plans : dict
        nnU-Net's ``nnUNetPlans.json`` content.
    configuration : str
        The plans' configuration trained (``"3d_fullres"``, ...).
    fold : int or str
        Cross-validation fold (0–4) or ``"all"``.
    dataset_json : dict
        The dataset's ``dataset.json`` content.
    device : torch.device
        Where to train (default: the CPU).
    """

    # nnU-Net records the __init__ arguments by name in its checkpoints: keep its signature.
    def __init__(
        self,
        plans: dict[str, Any],
        configuration: str,
        fold: int,
        dataset_json: dict[str, Any],
        device: torch.device = torch.device("cpu"),  # noqa: B008
    ) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 1
        self.num_iterations_per_epoch = 2
        self.num_val_iterations_per_epoch = 1


def trainer_class(name: str) -> Any:
    """A trainer class by name.

    Parameters
    ----------
    name : str
        One of petseg's :data:`TRAINERS`, ``"nnUNetTrainer"``, or another nnU-Net trainer
        (found by nnU-Net's own lookup, which needs every trainer module importable).
    """
    if name in TRAINERS:
        return globals()[name]
    if name == "nnUNetTrainer":
        return nnUNetTrainer
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    try:
        return recursive_find_trainer_class_by_name(name)
    except (ImportError, RuntimeError) as err:
        raise ValueError(
            f"nnU-Net trainer {name!r} could not be loaded ({err}); use nnUNetTrainer or one of "
            f"petseg's {list(TRAINERS)}"
        ) from err
