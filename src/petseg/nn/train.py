"""k-fold training of the planned network, with checkpoints, resume, log and curve.

Model folder (``MODEL``)::

    plan.json              the plan (spacing, patch, topology, normalisation, budget)
    folds.json             the patient-level split (reusable by other engines)
    training.json          the training configuration, dataset, petseg version
    fold_<k>/checkpoint.pt model + optimizer + scheduler + log after the last full epoch
    fold_<k>/model.pt      final weights (float16), written when the fold finishes
    fold_<k>/log.jsonl     one line per epoch: epoch, train loss, validation Dice, lr, time
    fold_<k>/curve.png     loss and validation Dice per epoch

Loss: Dice over the lesion channel + cross-entropy (MONAI ``DiceCELoss``, batch Dice, no
background Dice, as nnU-Net). Optimiser (``TrainConfig.optimizer``): nnU-Net's SGD
(Nesterov momentum 0.99, learning rate 0.01) for the ``nnunet`` budget, AdamW (1e-3) for
the CPU budgets; weight decay 3e-5 and nnU-Net's polynomial decay (exponent 0.9) per
epoch for both. An interrupted fold resumes from its checkpoint; because every
random draw is seeded by ``(seed, fold, epoch, iteration)`` and the checkpoint holds all
optimiser state, the resumed run ends with the same weights as an uninterrupted one (CPU).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from petseg import __version__
from petseg.io.atomic import atomic_file, claim_dir, write_json_atomic
from petseg.nn.data import (
    Case,
    augmentation,
    list_cases,
    preprocess,
    read_case,
    read_dataset_info,
    sample_batch,
    validation_patches,
)
from petseg.nn.folds import make_folds, validate_folds
from petseg.nn.model import build_model
from petseg.nn.plan import Plan, fingerprint_cases, make_plan

__all__ = [
    "FoldResult",
    "TrainConfig",
    "load_cases",
    "make_loss",
    "make_optimizer",
    "plan_model_folder",
    "resolve_device",
    "train",
    "train_fold",
]

DEVICES = ("auto", "cpu", "cuda")
OPTIMIZERS = ("auto", "sgd", "adamw")
SGD_LEARNING_RATE = 0.01
"""nnU-Net's initial learning rate (SGD)."""
ADAMW_LEARNING_RATE = 1e-3
"""Initial learning rate for ``optimizer="adamw"``."""


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (nnU-Net's values unless noted; saved in training.json).

    ``epochs`` × ``iterations_per_epoch``: nnU-Net trains 1000 × 250 on a GPU; the CPU
    defaults here are far smaller. ``val_patches``: patches for the per-epoch Dice.
    ``device``: "auto" (CUDA when present), "cpu" or "cuda"; mixed precision on CUDA.
    ``optimizer``: "sgd" (nnU-Net's: Nesterov, ``momentum``), "adamw" (not nnU-Net's; for
    CPU trainings of about a thousand iterations, where SGD at 0.01 still predicts only
    background on small lesions — see docs/network.md) or "auto": SGD for the ``nnunet``
    budget, AdamW for the CPU budgets. ``learning_rate`` None: 0.01 for SGD,
    ``ADAMW_LEARNING_RATE`` for AdamW. :meth:`for_budget` resolves both before training.
    """

    epochs: int = 50
    iterations_per_epoch: int = 50
    optimizer: str = "auto"
    learning_rate: float | None = None
    momentum: float = 0.99
    weight_decay: float = 3e-5
    poly_exponent: float = 0.9
    seed: int = 12345
    val_patches: int = 8
    augment: bool = True
    device: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.iterations_per_epoch < 1:
            raise ValueError("epochs and iterations_per_epoch must be at least 1")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")

    def for_budget(self, budget: str) -> TrainConfig:
        """This configuration with ``optimizer`` and ``learning_rate`` made concrete."""
        optimizer = self.optimizer
        if optimizer == "auto":
            optimizer = "sgd" if budget == "nnunet" else "adamw"
        learning_rate = self.learning_rate
        if learning_rate is None:
            learning_rate = SGD_LEARNING_RATE if optimizer == "sgd" else ADAMW_LEARNING_RATE
        return dataclasses.replace(self, optimizer=optimizer, learning_rate=learning_rate)


def make_optimizer(parameters: Any, config: TrainConfig) -> Any:
    """The torch optimiser of a configuration made concrete by :meth:`TrainConfig.for_budget`."""
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


def make_loss() -> Any:
    """Dice over the lesion channel + cross-entropy on two-channel logits and (B, 1, …) labels.

    Background is left out of the Dice, as in nnU-Net's soft Dice (``do_bg=False``): with
    it in the mean, "all background" scores Dice loss 0.5 and training on small lesions
    sticks there (measured: validation Dice 0 for 350 iterations, docs/network.md).
    """
    from monai.losses import DiceCELoss

    return DiceCELoss(to_onehot_y=True, softmax=True, batch=True, include_background=False)


@dataclass(frozen=True)
class FoldResult:
    """Outcome of one fold: where its weights are and its last epoch's figures."""

    fold: int
    model_path: Path
    epochs_done: int
    final_loss: float
    final_val_dice: float
    seconds: float
    resumed_from_epoch: int


def resolve_device(device: str) -> str:
    """``"auto"`` → ``"cuda"`` when available else ``"cpu"``; ``"cuda"`` must be available."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    return device


def load_cases(dataset: str | Path, channels: Sequence[str] = ("pet", "ct")) -> list[Case]:
    """Read every labelled case of a dataset folder (physical units, own grid)."""
    return [read_case(dataset, c, channels) for c in list_cases(dataset)]


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
    image, label = preprocess(case.image, case.geometry.spacing, plan, case.label)
    assert label is not None
    return image, label


def _save_torch(path: Path, obj: Any) -> None:
    import torch

    with atomic_file(path, force=True) as tmp:
        torch.save(obj, tmp)


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
    """Train (or resume) one fold; writes checkpoint, log, curve and, at the end, model.pt.

    Parameters
    ----------
    cases : all dataset cases (the split picks this fold's training/validation part)
    stop_after_epochs : stop (as if interrupted) once this many epochs of this call are
        done, leaving the checkpoint to resume from; None trains to ``config.epochs``
    progress : show a tqdm bar (epoch, loss, validation Dice)
    """
    import torch
    from tqdm import tqdm

    config = config.for_budget(plan.budget)
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    fold_dir = Path(out) / f"fold_{fold}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    entry = next((f for f in split["folds"] if f["fold"] == fold), None)
    if entry is None:
        raise ValueError(f"fold {fold} is not in the split (folds 0..{split['n_folds'] - 1})")
    by_id = {c.case_id: c for c in cases}
    train_set = [_prepare(by_id[c], plan) for c in entry["train"]]
    val_set = [_prepare(by_id[c], plan) for c in entry["val"]]
    val_images, val_labels = validation_patches(
        val_set, plan, config.val_patches, config.seed + fold
    )

    torch.manual_seed(config.seed + fold)
    model = build_model(plan).to(device)
    optimizer = make_optimizer(model.parameters(), config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda epoch: (1 - epoch / config.epochs) ** config.poly_exponent
    )
    loss_fn = make_loss()
    use_amp = device == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    config_dict = dataclasses.asdict(config)

    start_epoch = 0
    log: list[dict[str, Any]] = []
    ckpt_path = fold_dir / "checkpoint.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        saved = {k: v for k, v in ckpt["config"].items() if k not in ("device", "threads")}
        wanted = {k: v for k, v in config_dict.items() if k not in ("device", "threads")}
        if saved != wanted:
            raise ValueError(
                f"{ckpt_path} was made with other settings ({saved}); resume with the same "
                "settings or pass --force to restart the fold"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch = int(ckpt["epoch"])
        log = list(json.loads(ckpt["log"]))
    resumed_from = start_epoch
    augment = augmentation() if config.augment else None
    started = time.perf_counter()
    end_epoch = config.epochs
    if stop_after_epochs is not None:
        end_epoch = min(end_epoch, start_epoch + stop_after_epochs)
    bar = tqdm(
        range(start_epoch, end_epoch),
        desc=f"fold {fold}",
        unit="epoch",
        disable=not progress,
        initial=start_epoch,
        total=config.epochs,
    )
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        losses = []
        for it in range(config.iterations_per_epoch):
            x, y = sample_batch(train_set, plan, (config.seed, fold, epoch, it), augment=augment)
            xt = torch.from_numpy(x).to(device)
            yt = torch.from_numpy(y.astype(np.int64)).to(device)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device, enabled=use_amp):
                loss = loss_fn(model(xt), yt)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 12.0)
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        model.eval()
        with torch.no_grad(), torch.autocast(device_type=device, enabled=use_amp):
            logits = model(torch.from_numpy(val_images).to(device))
        val_dice = _dice(logits.argmax(1).cpu().numpy() == 1, val_labels[:, 0] == 1)
        row = {
            "epoch": epoch + 1,
            "iterations": (epoch + 1) * config.iterations_per_epoch,
            "train_loss": float(np.mean(losses)),
            "val_dice": val_dice,
            "lr": lr,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        log.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_dice=f"{val_dice:.3f}")
        _save_torch(
            ckpt_path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch + 1,
                "log": json.dumps(log),
                "config": config_dict,
            },
        )
        with atomic_file(fold_dir / "log.jsonl", force=True) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in log), encoding="utf-8")
        _save_curve(fold_dir / "curve.png", log, f"fold {fold}: {plan.budget} plan, {device}")
        if on_epoch is not None:
            on_epoch(row)
    bar.close()
    done = log[-1]["epoch"] if log else 0
    model_path = fold_dir / "model.pt"
    if done >= config.epochs:
        state = {
            k: v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.cpu()
            for k, v in model.state_dict().items()
        }
        _save_torch(
            model_path,
            {"state_dict": state, "fold": fold, "petseg_version": __version__, "epochs": done},
        )
    return FoldResult(
        fold=fold,
        model_path=model_path,
        epochs_done=done,
        final_loss=float(log[-1]["train_loss"]) if log else float("nan"),
        final_val_dice=float(log[-1]["val_dice"]) if log else float("nan"),
        seconds=time.perf_counter() - started,
        resumed_from_epoch=resumed_from,
    )


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
) -> list[FoldResult]:
    """Plan from ``dataset``, split it into ``n_folds`` patient-level folds and train folds.

    Parameters
    ----------
    dataset : dataset folder (docs/dataset-layout.md)
    out : model folder; created, or resumed when it holds a plan and checkpoints
    folds : which folds to train (default all)
    force : retrain folds that already have a finished ``model.pt`` (from scratch)

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
    meta_path = out / "training.json"
    meta = {
        "petseg_version": __version__,
        "dataset": str(Path(dataset).resolve()),
        "synthetic": bool(read_dataset_info(dataset).get("synthetic", False)),
        "cases": [c.case_id for c in cases],
        "config": dataclasses.asdict(config),
        "loss": "Dice (lesion channel) + cross-entropy (monai.losses.DiceCELoss, batch Dice, include_background=False)",
        "optimizer": ("SGD nesterov" if config.optimizer == "sgd" else "AdamW")
        + ", poly learning-rate decay per epoch",
    }
    write_json_atomic(meta_path, meta, force=True)
    todo = list(range(n_folds)) if folds is None else list(folds)
    results = []
    for fold in todo:
        fold_dir = out / f"fold_{fold}"
        if (fold_dir / "model.pt").exists():
            if not force:
                raise FileExistsError(
                    f"{fold_dir / 'model.pt'} exists (fold {fold} is trained); pass --force to "
                    "retrain it from scratch or choose other --fold values"
                )
            (fold_dir / "model.pt").unlink()
            (fold_dir / "checkpoint.pt").unlink(missing_ok=True)
        results.append(train_fold(cases, plan, split, fold, out, config, progress=progress))
    return results
