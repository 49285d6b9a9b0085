"""k-fold training of the planned network, with checkpoints, resume, log and curve.

Model folder (``MODEL``)::

    plan.json              the plan (spacing, patch, topology, normalisation, budget)
    folds.json             the patient-level split (reusable by other engines)
    training.json          the training configuration, dataset, petseg version
    fold_<k>/checkpoint.pt model + optimizer + scheduler + log after the last full epoch
    fold_<k>/best.pt       the weights of the best smoothed validation Dice so far (float16)
    fold_<k>/model.pt      the best weights (float16), written when the fold finishes
    fold_<k>/log.jsonl     one line per epoch: epoch, train loss, validation Dice, lr, time
    fold_<k>/curve.png     loss and validation Dice per epoch

Recipe (every choice is a :class:`TrainConfig` field, saved in training.json and in each
checkpoint; docs/network.md measures each one):

- loss: Dice over the lesion channel + cross-entropy (MONAI ``DiceCELoss``, batch Dice, no
  background Dice, as nnU-Net), weighted ``dice_weight`` : ``ce_weight``; with
  ``deep_supervision`` the loss is also taken on the two coarser decoder outputs,
  weights 1, ½, ¼ normalised (nnU-Net's scheme);
- optimiser: nnU-Net's SGD (Nesterov momentum 0.99, learning rate 0.01) for the
  ``nnunet`` budget, AdamW (1e-3) for the CPU budgets; weight decay 3e-5;
- learning rate per iteration: a linear warm-up over ``warmup_iterations``, then
  nnU-Net's polynomial decay (exponent 0.9) or a cosine decay to 0;
- patches: ``foreground`` share lesion-centred, the lesion drawn per voxel or per lesion
  (``foreground_sampling``, :mod:`petseg.nn.data`);
- early stopping: after each epoch the Dice on fixed validation patches is smoothed
  (exponential moving average, ``VAL_DICE_EMA``, as nnU-Net's pseudo Dice); its best
  weights are kept in ``best.pt`` and become ``model.pt``; with ``patience`` the fold
  stops once that many epochs pass without a new best.

An interrupted fold resumes from its checkpoint (written after every epoch of
``iterations_per_epoch`` iterations); because every random draw is seeded by ``(seed,
fold, epoch, iteration)`` and the checkpoint holds all optimiser state, the resumed run
ends with the same weights as an uninterrupted one (CPU).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from petseg import __version__
from petseg.io.atomic import atomic_file, claim_dir, write_json_atomic
from petseg.io.dataset import list_cases, read_dataset_info
from petseg.nn.data import (
    FOREGROUND_OVERSAMPLING,
    FOREGROUND_SAMPLING,
    Case,
    augmentation,
    label_lesions,
    preprocess,
    read_case,
    sample_batch,
    validation_patches,
)
from petseg.nn.folds import make_folds, validate_folds
from petseg.nn.model import build_model
from petseg.nn.plan import Plan, fingerprint_cases, make_plan

__all__ = [
    "FoldResult",
    "TrainConfig",
    "finish_fold",
    "learning_rate_factor",
    "load_cases",
    "make_loss",
    "make_optimizer",
    "plan_model_folder",
    "resolve_device",
    "torch_threads",
    "train",
    "train_fold",
]

DEVICES = ("auto", "cpu", "cuda")
OPTIMIZERS = ("auto", "sgd", "adamw")
SCHEDULES = ("poly", "cosine")
VAL_DICE_EMA = 0.7
"""Weight of the previous value in the smoothed validation Dice (nnU-Net uses 0.9 over
1000 epochs; short CPU trainings have tens of epochs)."""
SGD_LEARNING_RATE = 0.01
"""nnU-Net's initial learning rate (SGD)."""
ADAMW_LEARNING_RATE = 1e-3
"""Initial learning rate for ``optimizer="adamw"``."""


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (saved in training.json and in every checkpoint).

    Parameters
    ----------
    epochs, iterations_per_epoch : int
        Training length; a checkpoint and a validation Dice after every epoch. nnU-Net
        trains 1000 × 250 on a GPU; the CPU defaults here are far smaller.
    optimizer : str
        "sgd" (nnU-Net's: Nesterov, ``momentum``), "adamw" (not nnU-Net's; for CPU
        trainings of about a thousand iterations, where SGD at 0.01 still predicts only
        background on small lesions — docs/network.md) or "auto": SGD for the ``nnunet``
        budget, AdamW for the CPU budgets. :meth:`for_budget` resolves it.
    learning_rate : float or None
        None: 0.01 for SGD, ``ADAMW_LEARNING_RATE`` for AdamW.
    momentum, weight_decay : float
        SGD momentum; weight decay of both optimisers.
    schedule : str
        "poly" (nnU-Net's ``(1 - t) ** poly_exponent``) or "cosine"; per iteration.
    poly_exponent : float
        Exponent of the polynomial decay.
    warmup_iterations : int
        Iterations of linear learning-rate warm-up before the decay (0: none).
    foreground : float
        Share of lesion-centred patches per batch (at least one), nnU-Net's 0.33.
    foreground_sampling : str
        "voxel" (nnU-Net's) or "lesion" (every lesion equally often), see
        :mod:`petseg.nn.data`.
    deep_supervision : bool
        Loss also on the two coarser decoder outputs (weights 1, ½, ¼ normalised); on by
        default since it was the one change that helped in docs/network.md's screening.
    dice_weight, ce_weight : float
        Weights of the Dice and cross-entropy terms of the loss.
    patience : int or None
        Stop a fold after this many epochs without a new best smoothed validation Dice;
        None trains all epochs. The best weights become model.pt either way.
    init_from : str or None
        A model folder whose ``fold_<k>/model.pt`` initialises fold k (fine-tuning; the
        plan must have the same topology); None starts from random weights.
    seed : int
        Seed of the split, the initial weights and every patch draw.
    val_patches : int
        Fixed validation patches (half lesion-centred) for the per-epoch Dice.
    augment : bool
        nnU-Net-like augmentation (:func:`petseg.nn.data.augmentation`).
    device : str
        "auto" (CUDA when present), "cpu" or "cuda"; mixed precision on CUDA.
    threads : int or None
        torch CPU threads while training (restored afterwards); None leaves torch's.
    """

    epochs: int = 50
    iterations_per_epoch: int = 50
    optimizer: str = "auto"
    learning_rate: float | None = None
    momentum: float = 0.99
    weight_decay: float = 3e-5
    schedule: str = "poly"
    poly_exponent: float = 0.9
    warmup_iterations: int = 0
    foreground: float = FOREGROUND_OVERSAMPLING
    foreground_sampling: str = "voxel"
    deep_supervision: bool = True
    dice_weight: float = 1.0
    ce_weight: float = 1.0
    patience: int | None = None
    init_from: str | None = None
    seed: int = 12345
    val_patches: int = 8
    augment: bool = True
    device: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.iterations_per_epoch < 1:
            raise ValueError("epochs and iterations_per_epoch must be at least 1")
        choices = {
            "device": DEVICES,
            "optimizer": OPTIMIZERS,
            "schedule": SCHEDULES,
            "foreground_sampling": FOREGROUND_SAMPLING,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0 <= self.foreground <= 1:
            raise ValueError(f"foreground must be a share in [0, 1], got {self.foreground}")
        if self.warmup_iterations < 0 or (self.patience is not None and self.patience < 1):
            raise ValueError("warmup_iterations must be >= 0 and patience >= 1 (or None)")
        if self.dice_weight < 0 or self.ce_weight < 0 or self.dice_weight + self.ce_weight == 0:
            raise ValueError("dice_weight and ce_weight must be >= 0, not both 0")

    @property
    def total_iterations(self) -> int:
        """``epochs × iterations_per_epoch``."""
        return self.epochs * self.iterations_per_epoch

    def for_budget(self, budget: str) -> TrainConfig:
        """This configuration with ``optimizer`` and ``learning_rate`` made concrete."""
        optimizer = self.optimizer
        if optimizer == "auto":
            optimizer = "sgd" if budget == "nnunet" else "adamw"
        learning_rate = self.learning_rate
        if learning_rate is None:
            learning_rate = SGD_LEARNING_RATE if optimizer == "sgd" else ADAMW_LEARNING_RATE
        return dataclasses.replace(self, optimizer=optimizer, learning_rate=learning_rate)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(threads)``, restoring the previous value.

    Parameters
    ----------
    threads : int or None
        torch CPU threads inside the block; None (or 0) leaves the setting alone.
    """
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def learning_rate_factor(iteration: int, config: TrainConfig) -> float:
    """Multiplier of the initial learning rate at a (0-based) training iteration.

    Linear warm-up ``(i + 1) / warmup`` for the first ``warmup_iterations``, then with
    ``t`` the fraction of the remaining iterations done: ``(1 - t) ** poly_exponent``
    ("poly") or ``(1 + cos(pi t)) / 2`` ("cosine").

    Parameters
    ----------
    iteration : int
        0-based training iteration of the fold.
    config : TrainConfig
        Gives ``warmup_iterations``, ``schedule``, ``poly_exponent`` and the total.

    Returns
    -------
    float
        The factor in [0, 1].
    """
    warmup = config.warmup_iterations
    if iteration < warmup:
        return (iteration + 1) / warmup
    t = min((iteration - warmup) / max(config.total_iterations - warmup, 1), 1.0)
    if config.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return float((1.0 - t) ** config.poly_exponent)


def make_optimizer(parameters: Any, config: TrainConfig) -> Any:
    """The torch optimiser of a configuration made concrete by :meth:`TrainConfig.for_budget`.

    Parameters
    ----------
    parameters : iterable of torch.nn.Parameter
        The parameters to optimise (``model.parameters()``).
    config : TrainConfig
        Resolved by :meth:`TrainConfig.for_budget`; gives ``optimizer`` (``"sgd"``,
        Nesterov, or ``"adamw"``), ``learning_rate``, ``momentum`` (SGD) and
        ``weight_decay``.

    Returns
    -------
    torch.optim.Optimizer
        SGD or AdamW.
    """
    import torch

    if config.learning_rate is None or config.optimizer == "auto":
        raise ValueError("resolve the configuration first: config.for_budget(plan.budget)")
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=config.learning_rate,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=True,
        )
    return torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)


def make_loss(config: TrainConfig = TrainConfig()) -> Callable[[Any, Any], Any]:
    """Loss on two-channel logits and (B, 1, …) labels: Dice (lesion channel) + CE.

    Background is left out of the Dice, as in nnU-Net's soft Dice (``do_bg=False``): with
    it in the mean, "all background" scores Dice loss 0.5 and training on small lesions
    sticks there (measured: validation Dice 0 for 350 iterations, docs/network.md). A
    (B, H, 2, …) output of a deeply supervised network (H heads, all at full size, as
    MONAI's DynUNet returns them in training) gets weights 1, ½, ¼ … normalised.

    Parameters
    ----------
    config : TrainConfig
        Gives ``dice_weight`` and ``ce_weight``.
    """
    from monai.losses import DiceCELoss

    base = DiceCELoss(
        to_onehot_y=True,
        softmax=True,
        batch=True,
        include_background=False,
        lambda_dice=config.dice_weight,
        lambda_ce=config.ce_weight,
    )

    def loss(output: Any, target: Any) -> Any:
        if output.ndim == target.ndim:
            return base(output, target)
        weights = [0.5**h for h in range(output.shape[1])]
        return sum(w / sum(weights) * base(output[:, h], target) for h, w in enumerate(weights))

    return loss


@dataclass(frozen=True)
class FoldResult:
    """Outcome of one fold: where its weights are and its last epoch's figures.

    Attributes
    ----------
    fold : int
        The fold number k.
    model_path : Path
        ``out/fold_<k>/model.pt``; written once the fold has finished (all epochs, early
        stop or :func:`finish_fold`), so absent after a run stopped part-way.
    epochs_done : int
        Epochs trained so far, those before a resume included.
    final_loss : float
        Mean training loss (Dice + cross-entropy) of the last epoch; NaN before any.
    final_val_dice : float
        Validation Dice (not smoothed) of the last epoch; NaN before any.
    seconds : float
        Wall time of this call in s, data preparation included.
    resumed_from_epoch : int
        Epoch of the checkpoint the call resumed from (0: a fresh start).
    best_epoch : int
        Epoch of the best smoothed validation Dice (0: none yet).
    best_val_dice : float
        That smoothed Dice (exponential moving average, ``VAL_DICE_EMA``); -1 before the
        first epoch.
    stopped_early : bool
        True when the fold stopped after ``patience`` epochs without a new best.
    """

    fold: int
    model_path: Path
    epochs_done: int
    final_loss: float
    final_val_dice: float
    seconds: float
    resumed_from_epoch: int
    best_epoch: int = 0
    best_val_dice: float = float("nan")
    stopped_early: bool = False


def resolve_device(device: str) -> str:
    """``"auto"`` → ``"cuda"`` when available else ``"cpu"``; ``"cuda"`` must be available.

    Parameters
    ----------
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    str
        ``"cpu"`` or ``"cuda"``.

    Raises
    ------
    ValueError
        If ``"cuda"`` is asked for and torch sees no CUDA GPU.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    return device


def load_cases(dataset: str | Path, channels: Sequence[str] = ("pet", "ct")) -> list[Case]:
    """Read every labelled case of a dataset folder (physical units, own grid).

    Parameters
    ----------
    dataset : str or Path
        The dataset folder; every case must hold ``lesions.nii.gz``.
    channels : sequence of str
        Channels to read, in this order (``"pet"``, ``"ct"``).

    Returns
    -------
    list of Case
        In the order of :func:`petseg.io.dataset.list_cases`.
    """
    return [read_case(dataset, c, channels) for c in list_cases(dataset, labelled=True)]


def plan_model_folder(
    dataset: str | Path,
    out: str | Path,
    cases: Sequence[Case],
    *,
    n_folds: int = 5,
    budget: str = "cpu-small",
    split_seed: int = 12345,
) -> tuple[Plan, dict[str, Any]]:
    """Write (or reuse) ``plan.json`` and ``folds.json`` in the model folder.

    An existing plan/split is reused so that resumed and additional folds train on the
    same plan; a split that does not match the dataset's cases is an error. ``out`` must
    be new, empty or a petseg model folder (:func:`petseg.io.atomic.claim_dir`).

    Parameters
    ----------
    dataset : str or Path
        The dataset folder; its ``dataset.json`` may give ``patient_of`` for a new split.
    out : str or Path
        The model folder.
    cases : sequence of Case
        The dataset's labelled cases (:func:`load_cases`): fingerprinted for a new plan,
        split into folds (negative controls spread) or checked against ``folds.json``.
    n_folds : int
        Number of patient-level folds; must match an existing ``folds.json``.
    budget : str
        A ``BUDGETS`` name for a new plan (an existing plan keeps its own).
    split_seed : int
        Shuffling seed of a new split.

    Returns
    -------
    tuple of (Plan, dict)
        The plan and the split, as saved in ``plan.json`` and ``folds.json``.
    """
    out = claim_dir(out, kind="model", inputs=[dataset], recognise=("plan.json",))
    plan_path = out / "plan.json"
    channels = ("pet", "ct")
    if plan_path.exists():
        plan = Plan.from_dict(json.loads(plan_path.read_text(encoding="utf-8")))
    else:
        fingerprint = fingerprint_cases(
            [c.case_id for c in cases],
            [c.image for c in cases],
            [c.label for c in cases],
            [c.geometry.spacing for c in cases],
            channels,
        )
        plan = make_plan(fingerprint, budget)
        write_json_atomic(plan_path, {"petseg_version": __version__, **plan.to_dict()})
    folds_path = out / "folds.json"
    ids = [c.case_id for c in cases]
    if folds_path.exists():
        split = json.loads(folds_path.read_text(encoding="utf-8"))
        validate_folds(split, ids)
        if split["n_folds"] != n_folds:
            raise ValueError(
                f"{folds_path} has {split['n_folds']} folds but --folds {n_folds} was given; "
                "use a new --out folder to change the number of folds"
            )
    else:
        info = read_dataset_info(dataset)
        split = make_folds(
            ids,
            n_folds,
            seed=split_seed,
            patient_of=info.get("patient_of"),
            negatives=[c.case_id for c in cases if c.negative],
        )
        write_json_atomic(folds_path, split)
    return plan, split


def _dice(pred: np.ndarray, target: np.ndarray) -> float:
    """Global Dice over a batch; 1.0 when both are empty (declared policy)."""
    inter = float(np.logical_and(pred, target).sum())
    total = float(pred.sum() + target.sum())
    return 1.0 if total == 0 else 2.0 * inter / total


def _save_curve(path: Path, log: list[dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    epochs = [row["epoch"] for row in log]
    ax.plot(epochs, [row["train_loss"] for row in log], label="train loss (Dice+CE)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(epochs, [row["val_dice"] for row in log], color="tab:orange", label="val Dice")
    ax2.set_ylabel("validation Dice")
    ax2.set_ylim(0, 1)
    fig.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_file(path, force=True) as tmp:
        fig.savefig(tmp, format="png")


def _prepare(case: Case, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """A case at the plan's spacing, normalised, with its lesions numbered."""
    image, label = preprocess(case.image, case.geometry.spacing, plan, case.label)
    assert label is not None
    return image, label_lesions(label)


def _save_torch(path: Path, obj: Any) -> None:
    import torch

    with atomic_file(path, force=True) as tmp:
        torch.save(obj, tmp)


def _inference_weights(model: Any) -> dict[str, Any]:
    """float16 CPU weights without the deep-supervision heads (unused at inference)."""
    import torch

    return {
        k: v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu()
        for k, v in model.state_dict().items()
        if "deep_supervision_heads" not in k and "super_head" not in k
    }


@dataclass
class _FoldData:
    """One fold's training cases and fixed validation patches (preprocessed)."""

    train_set: list[tuple[np.ndarray, np.ndarray]]
    val_images: np.ndarray
    val_labels: np.ndarray


def _fold_data(
    cases: Sequence[Case], plan: Plan, split: dict[str, Any], fold: int, config: TrainConfig
) -> _FoldData:
    entry = next((f for f in split["folds"] if f["fold"] == fold), None)
    if entry is None:
        raise ValueError(f"fold {fold} is not in the split (folds 0..{split['n_folds'] - 1})")
    by_id = {c.case_id: c for c in cases}
    train_set = [_prepare(by_id[c], plan) for c in entry["train"]]
    val_set = [_prepare(by_id[c], plan) for c in entry["val"]]
    images, labels = validation_patches(val_set, plan, config.val_patches, config.seed + fold)
    return _FoldData(train_set, images, labels)


@dataclass
class _FoldState:
    """Everything a checkpoint restores: model, optimiser, schedule, log and the best so far."""

    model: Any
    optimizer: Any
    scheduler: Any
    scaler: Any
    epoch: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": 0, "val_dice_ema": -1.0})
    stopped: bool = False


def _new_state(plan: Plan, config: TrainConfig, fold: int, device: str) -> _FoldState:
    import torch

    torch.manual_seed(config.seed + fold)
    model = build_model(plan, deep_supervision=config.deep_supervision)
    if config.init_from is not None:
        path = Path(config.init_from) / f"fold_{fold}" / "model.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; init_from needs a model with fold {fold}")
        weights = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        missing = model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
        if missing.unexpected_keys or any("head" not in k for k in missing.missing_keys):
            raise ValueError(f"{path} does not fit the plan's network: {missing}")
    model = model.to(device)
    optimizer = make_optimizer(model.parameters(), config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: learning_rate_factor(it, config)
    )
    scaler = torch.amp.GradScaler("cuda", enabled=device == "cuda")
    return _FoldState(model, optimizer, scheduler, scaler)


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in ("device", "threads")}


def _resume(path: Path, state: _FoldState, config: TrainConfig, device: str) -> None:
    """Load a fold checkpoint into ``state``; refuse one made with other settings."""
    import torch

    ckpt = torch.load(path, map_location=device, weights_only=True)
    saved = _comparable(ckpt["config"])
    if saved != _comparable(dataclasses.asdict(config)):
        raise ValueError(
            f"{path} was made with other settings ({saved}); resume with the same "
            "settings or pass --force to restart the fold"
        )
    for name in ("model", "optimizer", "scheduler", "scaler"):
        getattr(state, name).load_state_dict(ckpt[name])
    state.epoch = int(ckpt["epoch"])
    state.log = list(json.loads(ckpt["log"]))
    state.best = dict(json.loads(ckpt["best"]))
    state.stopped = bool(ckpt["stopped"])


def _train_epoch(
    state: _FoldState,
    data: _FoldData,
    plan: Plan,
    config: TrainConfig,
    fold: int,
    device: str,
    on_iteration: Callable[[], object] = lambda: None,
) -> tuple[float, float]:
    """One epoch of iterations; returns (mean loss, learning rate of its last iteration).

    ``on_iteration`` is called after each iteration (the progress bar's step).
    """
    import torch

    augment = augmentation() if config.augment else None
    loss_fn = make_loss(config)
    use_amp = device == "cuda"
    state.model.train()
    losses = []
    lr = float("nan")
    for it in range(config.iterations_per_epoch):
        x, y = sample_batch(
            data.train_set,
            plan,
            (config.seed, fold, state.epoch, it),
            augment=augment,
            foreground=config.foreground,
            sampling=config.foreground_sampling,
        )
        xt = torch.from_numpy(x).to(device)
        yt = torch.from_numpy(y.astype(np.int64)).to(device)
        state.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, enabled=use_amp):
            loss = loss_fn(state.model(xt), yt)
        state.scaler.scale(loss).backward()
        state.scaler.unscale_(state.optimizer)
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), 12.0)
        lr = state.optimizer.param_groups[0]["lr"]
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.scheduler.step()
        losses.append(float(loss.detach()))
        on_iteration()
    return float(np.mean(losses)), lr


def _validation_dice(state: _FoldState, data: _FoldData, device: str) -> float:
    """Dice of the lesion class over the fixed validation patches (batches of 2)."""
    import torch

    state.model.eval()
    predictions = []
    with torch.no_grad(), torch.autocast(device_type=device, enabled=device == "cuda"):
        for start in range(0, len(data.val_images), 2):
            x = torch.from_numpy(data.val_images[start : start + 2]).to(device)
            predictions.append(state.model(x).argmax(1).cpu().numpy() == 1)
    return _dice(np.concatenate(predictions), data.val_labels[:, 0] == 1)


def _end_epoch(
    state: _FoldState,
    row: dict[str, Any],
    fold_dir: Path,
    config: TrainConfig,
    title: str,
) -> None:
    """Log the epoch, track the best smoothed Dice (best.pt), decide early stop, checkpoint."""
    previous = state.log[-1]["val_dice_ema"] if state.log else row["val_dice"]
    row["val_dice_ema"] = VAL_DICE_EMA * previous + (1 - VAL_DICE_EMA) * row["val_dice"]
    state.log.append(row)
    state.epoch = row["epoch"]
    if row["val_dice_ema"] > state.best["val_dice_ema"]:
        state.best = {"epoch": row["epoch"], "val_dice_ema": row["val_dice_ema"]}
        _save_torch(fold_dir / "best.pt", {"state_dict": _inference_weights(state.model)})
    if config.patience is not None:
        state.stopped = state.epoch - int(state.best["epoch"]) >= config.patience
    _save_torch(
        fold_dir / "checkpoint.pt",
        {
            **{n: getattr(state, n).state_dict() for n in ("model", "optimizer", "scheduler")},
            "scaler": state.scaler.state_dict(),
            "epoch": state.epoch,
            "log": json.dumps(state.log),
            "best": json.dumps(state.best),
            "stopped": state.stopped,
            "config": dataclasses.asdict(config),
        },
    )
    with atomic_file(fold_dir / "log.jsonl", force=True) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in state.log), encoding="utf-8")
    _save_curve(fold_dir / "curve.png", state.log, title)


def _write_model(
    fold_dir: Path, fold: int, epochs: int, best: dict[str, Any], weights: dict[str, Any]
) -> Path:
    """model.pt: the best weights (best.pt, else ``weights``) with the fold's provenance."""
    import torch

    if (fold_dir / "best.pt").exists():
        weights = torch.load(fold_dir / "best.pt", weights_only=True)["state_dict"]
    _save_torch(
        fold_dir / "model.pt",
        {
            "state_dict": weights,
            "fold": fold,
            "petseg_version": __version__,
            "epochs": epochs,
            "best_epoch": int(best["epoch"]),
            "best_val_dice_ema": float(best["val_dice_ema"]),
        },
    )
    return fold_dir / "model.pt"


def finish_fold(out: str | Path, fold: int) -> Path:
    """Make a fold's best weights its ``model.pt`` when its training stops for good early.

    For a fold whose time budget ran out before its last epoch: ``model.pt`` gets the
    weights of ``best.pt`` (the best smoothed validation Dice so far) and the epoch count
    of ``checkpoint.pt``.

    Parameters
    ----------
    out : str or Path
        The model folder.
    fold : int
        The fold to finish.

    Returns
    -------
    Path
        ``out/fold_<fold>/model.pt``.
    """
    import torch

    fold_dir = Path(out) / f"fold_{fold}"
    ckpt_path = fold_dir / "checkpoint.pt"
    if not ckpt_path.exists() or not (fold_dir / "best.pt").exists():
        raise FileNotFoundError(
            f"{fold_dir} has no checkpoint.pt and best.pt; train at least one epoch of fold "
            f"{fold} before finishing it"
        )
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    return _write_model(fold_dir, fold, int(ckpt["epoch"]), json.loads(ckpt["best"]), {})


def train_fold(
    cases: Sequence[Case],
    plan: Plan,
    split: dict[str, Any],
    fold: int,
    out: str | Path,
    config: TrainConfig = TrainConfig(),
    *,
    stop_after_epochs: int | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> FoldResult:
    """Train (or resume) one fold; writes checkpoint, best.pt, log, curve and, at the end, model.pt.

    Parameters
    ----------
    cases : all dataset cases (the split picks this fold's training/validation part)
    plan, split : the model folder's plan and folds (:func:`plan_model_folder`)
    fold : which fold
    out : the model folder; the fold's files go to ``out/fold_<fold>``
    config : training settings (resolved with :meth:`TrainConfig.for_budget`)
    stop_after_epochs : stop (as if interrupted) once this many epochs of this call are
        done, leaving the checkpoint to resume from; None trains to ``config.epochs``
        (or to the early stop)
    progress : show a progress bar (iterations with their epoch, loss, validation Dice)
    on_epoch : called with each epoch's log row
    """
    from petseg.progress import progress as progress_bar
    from petseg.progress import quiet

    config = config.for_budget(plan.budget)
    device = resolve_device(config.device)
    fold_dir = Path(out) / f"fold_{fold}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with torch_threads(config.threads):
        data = _fold_data(cases, plan, split, fold, config)
        state = _new_state(plan, config, fold, device)
        if (fold_dir / "checkpoint.pt").exists():
            _resume(fold_dir / "checkpoint.pt", state, config, device)
        resumed_from = state.epoch
        end = config.epochs if stop_after_epochs is None else state.epoch + stop_after_epochs
        end = min(end, config.epochs)
        title = f"fold {fold}: {plan.budget} plan, {device}"
        shown = contextlib.nullcontext() if progress else quiet()
        per_epoch = config.iterations_per_epoch
        with (
            shown,
            progress_bar(
                total=config.epochs * per_epoch,
                initial=state.epoch * per_epoch,
                desc=f"fold {fold}",
                unit="it",
            ) as bar,
        ):
            while state.epoch < end and not state.stopped:
                t0 = time.perf_counter()
                loss, lr = _train_epoch(
                    state, data, plan, config, fold, device, on_iteration=lambda: bar.update(1)
                )
                row = {
                    "epoch": state.epoch + 1,
                    "iterations": (state.epoch + 1) * config.iterations_per_epoch,
                    "train_loss": loss,
                    "val_dice": _validation_dice(state, data, device),
                    "lr": lr,
                    "seconds": round(time.perf_counter() - t0, 3),
                }
                _end_epoch(state, row, fold_dir, config, title)
                bar.set_postfix(
                    epoch=row["epoch"], loss=f"{loss:.3f}", val_dice=f"{row['val_dice']:.3f}"
                )
                if on_epoch is not None:
                    on_epoch(row)
        if state.epoch >= config.epochs or state.stopped:
            weights = _inference_weights(state.model)
            _write_model(fold_dir, fold, state.epoch, state.best, weights)
    return _result(state, fold_dir, fold, time.perf_counter() - started, resumed_from)


def _result(
    state: _FoldState, fold_dir: Path, fold: int, seconds: float, resumed_from: int
) -> FoldResult:
    last = state.log[-1] if state.log else {}
    return FoldResult(
        fold=fold,
        model_path=fold_dir / "model.pt",
        epochs_done=state.epoch,
        final_loss=float(last.get("train_loss", float("nan"))),
        final_val_dice=float(last.get("val_dice", float("nan"))),
        seconds=seconds,
        resumed_from_epoch=resumed_from,
        best_epoch=int(state.best["epoch"]),
        best_val_dice=float(state.best["val_dice_ema"]),
        stopped_early=state.stopped,
    )


def _training_record(
    dataset: str | Path, cases: Sequence[Case], config: TrainConfig
) -> dict[str, Any]:
    """training.json: dataset, cases, configuration and the recipe in words."""
    return {
        "petseg_version": __version__,
        "dataset": str(Path(dataset).resolve()),
        "synthetic": bool(read_dataset_info(dataset).get("synthetic", False)),
        "cases": [c.case_id for c in cases],
        "config": dataclasses.asdict(config),
        "loss": f"{config.dice_weight} × Dice (lesion channel) + {config.ce_weight} × cross-entropy"
        " (monai.losses.DiceCELoss, batch Dice, include_background=False)"
        + (", deep supervision 1, 1/2, 1/4" if config.deep_supervision else ""),
        "optimizer": ("SGD nesterov" if config.optimizer == "sgd" else "AdamW")
        + f", {config.warmup_iterations} warm-up iterations, {config.schedule} decay per iteration",
        "sampling": f"{config.foreground:.0%} lesion-centred patches, lesion drawn per "
        f"{config.foreground_sampling}",
        "model_weights": "best smoothed validation Dice (best.pt)"
        + (
            f", early stop after {config.patience} epochs without a new best"
            if config.patience
            else ""
        ),
    }


def _train_in_turns(
    cases: Sequence[Case],
    plan: Plan,
    split: dict[str, Any],
    folds: Sequence[int],
    out: Path,
    config: TrainConfig,
    deadline: dt.datetime,
    progress: bool,
) -> list[FoldResult]:
    """Train folds one epoch each in turn until they finish or ``deadline`` passes.

    Every fold with at least one epoch then has a model.pt: its finished training's, or
    its best weights so far (:func:`finish_fold`), also when the deadline had passed
    before this call (a run stopped by hand is finished by calling again).
    """
    results: dict[int, FoldResult] = {}
    pending = list(folds)
    while pending and dt.datetime.now(dt.timezone.utc) < deadline:
        for fold in list(pending):
            if dt.datetime.now(dt.timezone.utc) >= deadline:
                break
            results[fold] = train_fold(
                cases, plan, split, fold, out, config, stop_after_epochs=1, progress=progress
            )
            if results[fold].model_path.exists():
                pending.remove(fold)
    for fold in pending:
        if (out / f"fold_{fold}" / "best.pt").exists():
            finish_fold(out, fold)
    return [results[f] for f in folds if f in results]


def train(
    dataset: str | Path,
    out: str | Path,
    *,
    n_folds: int = 5,
    folds: Sequence[int] | None = None,
    budget: str = "cpu-small",
    config: TrainConfig = TrainConfig(),
    force: bool = False,
    progress: bool = True,
    deadline: dt.datetime | None = None,
) -> list[FoldResult]:
    """Plan from ``dataset``, split it into ``n_folds`` patient-level folds and train folds.

    Parameters
    ----------
    dataset : dataset folder (docs/dataset-layout.md)
    out : model folder; created, or resumed when it holds a plan and checkpoints
    n_folds : number of patient-level folds
    folds : which folds to train (default all)
    budget : a ``petseg.nn.plan.BUDGETS`` name
    config : training settings
    force : retrain folds that already have a finished ``model.pt`` (from scratch)
    progress : show progress bars
    deadline : timezone-aware time to stop at: the folds then train one epoch each in
        turn, and a fold still unfinished at the deadline keeps its best weights as
        model.pt; None trains the folds one after the other to the end

    A fold with a finished ``model.pt`` is skipped unless ``force``; a fold with only a
    checkpoint resumes from it.
    """
    config = config.for_budget(budget)
    claim_dir(out, kind="model", inputs=[dataset], recognise=("plan.json",))  # before reading
    cases = load_cases(dataset)
    plan, split = plan_model_folder(
        dataset, out, cases, n_folds=n_folds, budget=budget, split_seed=config.seed
    )
    out = Path(out)
    write_json_atomic(out / "training.json", _training_record(dataset, cases, config), force=True)
    todo = list(range(n_folds)) if folds is None else list(folds)
    for fold in todo:
        fold_dir = out / f"fold_{fold}"
        if (fold_dir / "model.pt").exists():
            if not force:
                raise FileExistsError(
                    f"{fold_dir / 'model.pt'} exists (fold {fold} is trained); pass --force to "
                    "retrain it from scratch or choose other --fold values"
                )
            for name in ("model.pt", "checkpoint.pt", "best.pt"):
                (fold_dir / name).unlink(missing_ok=True)
    if deadline is not None:
        return _train_in_turns(cases, plan, split, todo, out, config, deadline, progress)
    return [train_fold(cases, plan, split, f, out, config, progress=progress) for f in todo]
