"""Rainio et al. 2023's cross-validated comparison of the three 2D methods.

For each of ``n_folds`` patient-level test folds ("Structure of the experiment"):

1. **Method 1** — train the U-Net on the training slices; find the one constant
   threshold with the best *median* Dice on the U-Net's training-set outputs (the
   authors set it by hand; here it is searched); apply it to the test outputs.
2. **Method 2** — train the threshold CNN on the training PET slices against their
   optimal thresholds; threshold each test PET slice at its predicted value.
3. **Method 3** — find the optimal thresholds of the U-Net's *training* outputs, train a
   fresh threshold CNN on those outputs, and threshold each test output at its
   predicted value.

Also recorded per slice: the oracle (optimal threshold of each PET slice), the best
single constant threshold over *all* PET slices (the paper's 0.41 → median 0.558, an
oracle too), and an honest constant-threshold baseline chosen on the training PET
slices only.

Folds are balanced by slice count (the paper's six sets of 13 patients held 145-149
slices each): patients are shuffled with the seed, sorted by slice count (largest
first) and each goes to the fold with the fewest slices among those with the fewest
patients.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.slices.build import SliceSet
from petseg.slices.choices import UNET_LOSSES
from petseg.slices.precision import PRECISIONS, resolve_precision
from petseg.slices.threshold_search import (
    best_constant_threshold,
    dice_at_thresholds,
    optimal_thresholds,
)

__all__ = [
    "METHODS",
    "ExperimentConfig",
    "ExperimentResult",
    "patient_folds",
    "run_experiment",
    "table4",
    "table5",
]

#: Per-slice Dice columns compared in Tables 4 and 5.
METHODS = ("method1", "method2", "method3")


@dataclass(frozen=True)
class ExperimentConfig:
    """Settings of the whole experiment (defaults: the paper's).

    The training settings reach each network through :meth:`train_config`
    (:class:`petseg.slices.training.TrainConfig`).

    Parameters
    ----------
    n_folds : int
        Patient-level test folds (paper: 6).
    seed : int
        Seeds the fold assignment and, offset per fold and network, every training.
    unet_epochs, cnn_epochs : int
        Paper: 30 and 15.
    batch_size : int
        Slices per training batch (paper: 32).
    learning_rate : float
        Adam learning rate (paper: 1e-3).
    validation_split : float
        Fraction of the training slices kept for validation, 0–1 (paper: 0.3).
    unet_loss : str
        One of :data:`petseg.slices.choices.UNET_LOSSES` (``clipped_bce``: the paper's
        Keras binary cross-entropy).
    dropout : tuple of float
        Rates of the U-Net's five dropout layers, in the order of Table 2.
    precision : str
        ``"auto"`` (default: bf16 only where the CPU has native bf16, else fp32),
        ``"bf16"`` or ``"fp32"``; resolved when the config is made
        (:func:`petseg.slices.precision.resolve_precision`), so ``precision`` holds
        ``"bf16"`` or ``"fp32"`` and ``precision_reason`` says why (both in the report).
    threshold3d : bool
        Also run the 3D threshold CNN (:mod:`petseg.slices.threshold3d`) on the same folds.
    threshold3d_epochs : int
        Epochs of the 3D threshold CNN.
    precision_reason : str
        Why ``precision`` was resolved as it was (set by the config, not a parameter).
    """

    n_folds: int = field(default=6, metadata={"help": "patient-level test folds"})
    seed: int = field(default=0, metadata={"help": "seeds the fold assignment and every training"})
    unet_epochs: int = field(default=30, metadata={"help": "U-Net epochs"})
    cnn_epochs: int = field(default=15, metadata={"help": "threshold CNN epochs"})
    batch_size: int = field(default=32, metadata={"help": "slices per training batch"})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    validation_split: float = field(
        default=0.3, metadata={"help": "fraction of the training slices kept for validation"}
    )
    unet_loss: str = field(
        default="clipped_bce",
        metadata={
            "choices": UNET_LOSSES,
            "help": "U-Net loss (clipped_bce: the paper's Keras BCE)",
        },
    )
    dropout: tuple[float, ...] = field(
        default=(0.1, 0.1, 0.2, 0.1, 0.1),
        metadata={"help": "rates of the U-Net's five dropout layers, in the order of Table 2"},
    )
    precision: str = field(
        default="auto",
        metadata={
            "choices": ("auto", *PRECISIONS),
            "help": "training and inference precision; auto: bf16 where the CPU has native "
            "bf16, else fp32",
        },
    )
    threshold3d: bool = field(
        default=True, metadata={"help": "also run the 3D threshold CNN on the same folds"}
    )
    threshold3d_epochs: int = field(default=10, metadata={"help": "3D threshold CNN epochs"})
    precision_reason: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if self.n_folds < 2:
            raise ValueError(f"n_folds must be at least 2, got {self.n_folds}")
        precision, reason = resolve_precision(self.precision)
        object.__setattr__(self, "precision", precision)
        object.__setattr__(self, "precision_reason", reason)

    def train_config(self, epochs: int, seed: int) -> Any:
        """The :class:`~petseg.slices.training.TrainConfig` of one network."""
        from petseg.slices.training import TrainConfig

        return TrainConfig(
            epochs=epochs,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            validation_split=self.validation_split,
            seed=seed,
            unet_loss=self.unet_loss,
            dropout=tuple(self.dropout),
            precision=self.precision,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class ExperimentResult:
    """Everything the experiment measured.

    Attributes
    ----------
    table : dict of (N,) arrays
        One row per slice, in the SliceSet's order: ``patient``, ``slice``, ``fold``,
        ``dice_method1/2/3``, ``dice_oracle``, ``dice_pet_constant_all``,
        ``dice_pet_constant_train``, ``optimal_threshold_pet``,
        ``predicted_threshold_method2``, ``optimal_threshold_unet``,
        ``predicted_threshold_method3``, ``constant_threshold_method1``.
    unet_output : (N, S, S) float32
        Continuous test-fold output of each slice's U-Net, in [0, 1].
    folds : list of dict
        Per fold: patients, slice count, the constant thresholds, training histories,
        seconds.
    pet_constant : dict
        The best single constant threshold over all PET slices and its median Dice.
    models : list of dict
        Per fold the trained ``unet``, ``cnn_pet`` and ``cnn_unet`` modules (not saved
        in JSON).
    config : ExperimentConfig
        The settings the experiment ran with.
    seconds : float
        Wall-clock duration of the whole experiment.
    threshold3d : dict or None
        Per-patient results of the 3D threshold CNN (see :mod:`petseg.slices.threshold3d`).
    """

    table: dict[str, NDArray]
    unet_output: NDArray[np.float32]
    folds: list[dict[str, Any]]
    pet_constant: dict[str, float]
    config: ExperimentConfig
    seconds: float
    models: list[dict[str, Any]] = field(default_factory=list)
    threshold3d: dict[str, Any] | None = None


def patient_folds(patient_ids: NDArray[np.str_], n_folds: int, seed: int = 0) -> dict[str, int]:
    """Assign every patient to one of ``n_folds`` folds (1-based), balancing slice counts.

    Parameters
    ----------
    patient_ids : (N,) str ndarray
        Patient of each slice.
    n_folds : int
        Number of folds; at most the number of patients.
    seed : int
        Seeds the shuffle that breaks ties between patients with equal slice counts.

    Returns
    -------
    dict of str to int
        Patient id → fold number (1..n_folds).
    """
    ids, counts = np.unique(np.asarray(patient_ids), return_counts=True)
    if len(ids) < n_folds:
        raise ValueError(f"{len(ids)} patients cannot fill {n_folds} folds; use fewer folds")
    order = np.random.default_rng(seed).permutation(len(ids))
    order = order[np.argsort(-counts[order], kind="stable")]
    slices = np.zeros(n_folds, dtype=np.int64)
    members = np.zeros(n_folds, dtype=np.int64)
    out: dict[str, int] = {}
    for i in order:
        eligible = np.flatnonzero(members == members.min())
        f = int(eligible[np.argmin(slices[eligible])])
        out[str(ids[i])] = f + 1
        slices[f] += counts[i]
        members[f] += 1
    return out


def _empty_table(
    slices: SliceSet,
    fold: NDArray[np.int64],
    opt_pet: NDArray[np.floating],
    dice_oracle: NDArray[np.floating],
    t_all: float,
) -> dict[str, NDArray]:
    """The per-slice table with its fold-independent columns filled, the others NaN."""
    n = len(slices.images)
    return {
        "patient": slices.patient_ids.astype(str),
        "slice": slices.slice_index.astype(np.int64),
        "fold": fold,
        **{f"dice_{m}": np.full(n, np.nan) for m in METHODS},
        "dice_oracle": dice_oracle,
        "dice_pet_constant_all": dice_at_thresholds(slices.images, slices.masks, t_all),
        "dice_pet_constant_train": np.full(n, np.nan),
        "optimal_threshold_pet": opt_pet,
        "predicted_threshold_method2": np.full(n, np.nan),
        "optimal_threshold_unet": np.full(n, np.nan),
        "predicted_threshold_method3": np.full(n, np.nan),
        "constant_threshold_method1": np.full(n, np.nan),
    }


def _run_fold(
    slices: SliceSet,
    config: ExperimentConfig,
    f: int,
    test: NDArray[np.bool_],
    cols: dict[str, NDArray],
    unet_output: NDArray[np.float32],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train and test the three methods on fold ``f``; fill the ``test`` rows in place.

    Returns the fold's record (without patients and seconds) and its trained networks.
    """
    from petseg.slices.training import (
        predict_thresholds,
        predict_unet,
        train_threshold_cnn,
        train_unet,
    )

    train = ~test
    x_tr, m_tr = slices.images[train], slices.masks[train]
    x_te, m_te = slices.images[test], slices.masks[test]
    seed = config.seed * 1000 + 10 * f
    # Method 1: U-Net + constant threshold searched on the training outputs.
    step = f"fold {f}/{config.n_folds}"
    unet, hist_unet = train_unet(
        x_tr, m_tr, config.train_config(config.unet_epochs, seed), desc=f"{step} U-Net (m1, m3)"
    )
    out_tr = predict_unet(unet, x_tr, config.unet_loss, config.precision)
    out_te = predict_unet(unet, x_te, config.unet_loss, config.precision)
    unet_output[test] = out_te
    t_m1, med_m1 = best_constant_threshold(out_tr, m_tr)
    cols["dice_method1"][test] = dice_at_thresholds(out_te, m_te, t_m1)
    cols["constant_threshold_method1"][test] = t_m1
    # Method 2: threshold CNN on PET slices.
    cnn_pet, hist_pet = train_threshold_cnn(
        x_tr,
        cols["optimal_threshold_pet"][train],
        config.train_config(config.cnn_epochs, seed + 1),
        desc=f"{step} threshold CNN on PET (m2)",
    )
    pred2 = predict_thresholds(cnn_pet, x_te, config.precision)
    cols["predicted_threshold_method2"][test] = pred2
    cols["dice_method2"][test] = dice_at_thresholds(x_te, m_te, pred2)
    # Method 3: a fresh threshold CNN on the U-Net's outputs.
    opt_out_tr, _ = optimal_thresholds(out_tr, m_tr)
    opt_out_te, _ = optimal_thresholds(out_te, m_te)
    cnn_unet, hist_unet_cnn = train_threshold_cnn(
        out_tr,
        opt_out_tr,
        config.train_config(config.cnn_epochs, seed + 2),
        desc=f"{step} threshold CNN on U-Net output (m3)",
    )
    pred3 = predict_thresholds(cnn_unet, out_te, config.precision)
    cols["optimal_threshold_unet"][test] = opt_out_te
    cols["predicted_threshold_method3"][test] = pred3
    cols["dice_method3"][test] = dice_at_thresholds(out_te, m_te, pred3)
    # Honest constant baseline: best median-Dice threshold of the training PET slices.
    t_pet_tr, _ = best_constant_threshold(x_tr, m_tr)
    cols["dice_pet_constant_train"][test] = dice_at_thresholds(x_te, m_te, t_pet_tr)
    record = {
        "test_slices": int(test.sum()),
        "train_slices": int(train.sum()),
        "seed": seed,
        "constant_threshold_method1": t_m1,
        "train_median_dice_method1": med_m1,
        "constant_threshold_pet_train": t_pet_tr,
        "history": {"unet": hist_unet, "cnn_pet": hist_pet, "cnn_unet": hist_unet_cnn},
    }
    return record, {"unet": unet, "cnn_pet": cnn_pet, "cnn_unet": cnn_unet}


def run_experiment(
    slices: SliceSet,
    config: ExperimentConfig = ExperimentConfig(),
    progress: Callable[[str], None] | None = None,
) -> ExperimentResult:
    """Run the three methods, the oracle and the constant thresholds on every fold.

    Parameters
    ----------
    slices : SliceSet
        Tumour slices, ``(N, 64, 64)``, ordered by patient.
    config : ExperimentConfig
        The folds, seeds and training settings.
    progress : callable, optional
        Called with one line of text after each step.

    Returns
    -------
    ExperimentResult
    """
    if slices.images.shape[1:] != (64, 64):
        raise ValueError(
            f"the networks of Tables 2 and 3 take 64x64 slices, got {slices.images.shape[1:]}; "
            "rebuild the slices with --size 64"
        )
    say = progress or (lambda _msg: None)
    start = time.perf_counter()
    fold_of = patient_folds(slices.patient_ids, config.n_folds, config.seed)
    fold = np.array([fold_of[p] for p in slices.patient_ids], dtype=np.int64)
    opt_pet, dice_oracle = optimal_thresholds(slices.images, slices.masks)
    t_all, med_all = best_constant_threshold(slices.images, slices.masks)
    cols = _empty_table(slices, fold, opt_pet, dice_oracle, t_all)
    unet_output = np.zeros(slices.images.shape, dtype=np.float32)
    folds: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []
    for f in range(1, config.n_folds + 1):
        t0 = time.perf_counter()
        test = fold == f
        record, networks = _run_fold(slices, config, f, test, cols, unet_output)
        seconds = time.perf_counter() - t0
        patients = sorted(p for p, g in fold_of.items() if g == f)
        folds.append({"fold": f, "patients": patients, **record, "seconds": round(seconds, 2)})
        models.append(networks)
        say(
            f"fold {f}/{config.n_folds}: {int(test.sum())} test slices, median Dice "
            f"m1 {np.median(cols['dice_method1'][test]):.3f} "
            f"m2 {np.median(cols['dice_method2'][test]):.3f} "
            f"m3 {np.median(cols['dice_method3'][test]):.3f} ({seconds:.0f} s)"
        )
    result = ExperimentResult(
        table=cols,
        unet_output=unet_output,
        folds=folds,
        pet_constant={"threshold": t_all, "median_dice": med_all},
        config=config,
        seconds=0.0,
        models=models,
    )
    if config.threshold3d:
        from petseg.slices.threshold3d import run_threshold3d

        result.threshold3d = run_threshold3d(
            slices, result, epochs=config.threshold3d_epochs, seed=config.seed
        )
        say("3D threshold CNN done")
    result.seconds = round(time.perf_counter() - start, 2)
    return result


def _median_iqr(values: NDArray[np.floating]) -> dict[str, float]:
    from petseg.stats import median_iqr

    med, iqr = median_iqr(values)
    return {"median": med, "iqr": iqr, "n": len(values)}


def table4(result: ExperimentResult) -> list[dict[str, Any]]:
    """Median and IQR (:func:`petseg.stats.median_iqr`) of Dice, per fold and pooled.

    Parameters
    ----------
    result : ExperimentResult
        A finished experiment (:func:`run_experiment`).

    Returns
    -------
    list of dict
        One row per fold and a last row ``"all"``; columns: the three methods plus the
        oracle and the two constant-threshold baselines, each ``{median, iqr, n}``.
    """
    t = result.table
    columns = (*METHODS, "oracle", "pet_constant_all", "pet_constant_train")
    rows = []
    for f in [*range(1, result.config.n_folds + 1), "all"]:
        sel = np.ones(len(t["fold"]), bool) if f == "all" else t["fold"] == f
        rows.append({"fold": f, **{c: _median_iqr(t[f"dice_{c}"][sel]) for c in columns}})
    return rows


def _wilcoxon(a: NDArray[np.floating], b: NDArray[np.floating]) -> float | None:
    from petseg.stats import wilcoxon_signed_rank

    p = wilcoxon_signed_rank(a, b)["pvalue"] if len(a) else float("nan")
    return None if np.isnan(p) else p  # NaN: every paired difference is zero


def table5(result: ExperimentResult) -> list[dict[str, Any]]:
    """Two-sided Wilcoxon signed-rank p-values between the methods' Dice
    (:func:`petseg.stats.wilcoxon_signed_rank`: ``scipy.stats.wilcoxon``, zeros discarded).

    Parameters
    ----------
    result : ExperimentResult
        As for :func:`table4`.

    Returns
    -------
    list of dict
        Rows as :func:`table4`'s, with the columns ``method1_vs_method2``,
        ``method1_vs_method3``, ``method2_vs_method3`` p-values, ``None`` where every
        paired difference is zero.
    """
    t = result.table
    pairs = (("method1", "method2"), ("method1", "method3"), ("method2", "method3"))
    rows = []
    for f in [*range(1, result.config.n_folds + 1), "all"]:
        sel = np.ones(len(t["fold"]), bool) if f == "all" else t["fold"] == f
        rows.append(
            {
                "fold": f,
                **{
                    f"{a}_vs_{b}": _wilcoxon(t[f"dice_{a}"][sel], t[f"dice_{b}"][sel])
                    for a, b in pairs
                },
            }
        )
    return rows
