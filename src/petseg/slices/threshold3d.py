"""A 3D threshold CNN: one threshold per tumour region, the paper's stated future work.

Rainio et al. 2023 close by proposing "a CNN that can apply the threshold optimization
method for three-dimensional segmentation". Here the region of one patient is the
stack of its tumour slices inside the 2D crop box (exactly the voxels the 2D methods
see), rebuilt from the :class:`~petseg.slices.build.SliceSet` by undoing each slice's
[0, 1] scaling (``SliceSet.suv_range``) and scaling the whole stack to [0, 1] at once.

* Optimal threshold: the same 0.00-0.99 grid search (``voxel > t``, first maximum), on
  the 3D region at its own resolution.
* Network input: the region resampled (trilinear) to ``32 × 32 × 32`` voxels.
* Network (:class:`Threshold3DCNN`): three pairs of 3×3×3 'same' convolutions with
  ReLU, each pair followed by 2×2×2 max-pooling (8, 16, 32 filters), flatten (2048),
  dense 64 → 32 → 1 with a sigmoid, like Table 3 in 3D.
* Training: MSE against the optimal 3D thresholds, Adam 1e-3, batch 16, no validation
  split (one sample per patient leaves too few); each training region is used in its
  16 orientations (the 8 in-plane flips/quarter turns × a z flip), which leave the
  optimal threshold unchanged.
* Folds: the same patient folds as the 2D experiment (leave-fold-out).

Compared per patient with 3D Dice: the 3D CNN, the 3D oracle, the best constant 3D
threshold of the training patients, and the 2D methods' slice predictions stacked
back into 3D. Both the 2D and 3D methods are told which slices hold tumour (the paper's
slice selection uses the ground truth), so the comparison is fair between them but
optimistic for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from petseg.metrics import pixel_metrics
from petseg.slices.build import SliceSet, scale_unit
from petseg.slices.threshold_search import (
    THRESHOLD_GRID,
    dice_at_thresholds,
    dice_curves,
    optimal_thresholds,
)

if TYPE_CHECKING:
    from petseg.slices.experiment import ExperimentResult

__all__ = [
    "NETWORK_INPUT",
    "build_threshold3d_cnn",
    "patient_regions",
    "run_threshold3d",
]

#: Size ``(Z, Y, X)`` each region is resampled to for the network.
NETWORK_INPUT = (32, 32, 32)


def patient_regions(
    slices: SliceSet,
) -> dict[str, tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.bool_]]]:
    """Each patient's tumour slices stacked into one 3D region scaled to [0, 1] as a whole.

    Parameters
    ----------
    slices : SliceSet
        The 2D experiment's slices (their SUV range restores the raw values).

    Returns
    -------
    dict of str to (ndarray, ndarray, ndarray)
        Patient id → (rows of the SliceSet in slice order, ``(n, S, S)`` float32 region,
        ``(n, S, S)`` bool mask).
    """
    out = {}
    for pid in slices.patients:
        rows = np.flatnonzero(slices.patient_ids == pid)
        rows = rows[np.argsort(slices.slice_index[rows], kind="stable")]
        lo, hi = slices.suv_range[rows, 0], slices.suv_range[rows, 1]
        raw = slices.images[rows] * (hi - lo)[:, None, None] + lo[:, None, None]
        out[pid] = (rows, scale_unit(raw), slices.masks[rows])
    return out


def _network_input(region: NDArray[np.float32]) -> NDArray[np.float32]:
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(region, dtype=np.float32))[None, None]
    return F.interpolate(x, size=NETWORK_INPUT, mode="trilinear", align_corners=False)[0, 0].numpy()


def _orientations(volume: NDArray[np.float32]) -> list[NDArray[np.float32]]:
    views = []
    for flip_z in (False, True):
        v = volume[::-1] if flip_z else volume
        for k in range(4):
            r = np.rot90(v, k, axes=(1, 2))
            views.extend([r, r[:, :, ::-1]])
    return [np.ascontiguousarray(v) for v in views]


def _build_model() -> Any:
    from torch import nn

    class Threshold3DCNN(nn.Module):
        """3D counterpart of Table 3: ``(N, 1, 32, 32, 32)`` → ``(N,)`` thresholds in (0, 1)."""

        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            c_in = 1
            for c in (8, 16, 32):
                layers += [
                    nn.Conv3d(c_in, c, 3, padding=1),
                    nn.ReLU(inplace=True),
                    nn.Conv3d(c, c, 3, padding=1),
                    nn.ReLU(inplace=True),
                    nn.MaxPool3d(2),
                ]
                c_in = c
            self.features = nn.Sequential(*layers, nn.Flatten())
            self.head = nn.Sequential(
                nn.Linear(32 * 4 * 4 * 4, 64),
                nn.ReLU(inplace=True),
                nn.Linear(64, 32),
                nn.ReLU(inplace=True),
                nn.Linear(32, 1),
                nn.Sigmoid(),
            )
            for m in self.modules():
                if isinstance(m, nn.Conv3d | nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

        def forward(self, x: Any) -> Any:
            return self.head(self.features(x)).squeeze(1)

    return Threshold3DCNN()


def build_threshold3d_cnn() -> Any:
    """A fresh 3D threshold CNN, Keras-style initialised.

    Returns
    -------
    torch.nn.Module
        Input ``(B, 1, 32, 32, 32)``, output ``(B,)`` thresholds.
    """
    return _build_model()


def _train(
    inputs: list[NDArray[np.float32]],
    targets: NDArray[np.float64],
    epochs: int,
    seed: int,
    precision: str,
    desc: str,
) -> Any:
    import torch

    from petseg.progress import progress

    torch.manual_seed(seed)
    model = build_threshold3d_cnn()
    x = torch.from_numpy(np.stack(inputs)[:, None])
    y = torch.from_numpy(np.asarray(targets, dtype=np.float32))
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.MSELoss()
    model.train()
    bar = progress(total=epochs * -(-len(x) // 16), desc=desc, unit="batch")
    for epoch in range(epochs):
        bar.set_postfix_str(f"epoch {epoch + 1}/{epochs}", refresh=False)
        order = torch.randperm(len(x), generator=generator)
        for s in range(0, len(x), 16):
            idx = order[s : s + 16]
            optimiser.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = model(x[idx])
            loss = loss_fn(out.float(), y[idx])
            loss.backward()
            optimiser.step()
            bar.update(1)
    bar.close()
    model.eval()
    return model


def _predict(model: Any, inputs: list[NDArray[np.float32]], precision: str) -> NDArray[np.float64]:
    import torch

    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = model(torch.from_numpy(np.stack(inputs)[:, None]))
    return out.float().double().numpy()


def _median_iqr(v: NDArray[np.floating]) -> dict[str, float]:
    from petseg.stats import median_iqr

    med, iqr = median_iqr(v)
    return {"median": med, "iqr": iqr, "n": len(v)}


def run_threshold3d(
    slices: SliceSet, result: ExperimentResult, *, epochs: int = 30, seed: int = 0
) -> dict[str, Any]:
    """Train and test the 3D threshold CNN on the 2D experiment's folds; compare per patient.

    Parameters
    ----------
    slices : SliceSet
        The slices the 2D experiment ran on.
    result : ExperimentResult
        The 2D experiment (its folds and per-slice Dice).
    epochs : int
        Training epochs of each fold's network.
    seed : int
        Seeds weights and batch order.

    Returns
    -------
    dict
        ``patients`` (one row per patient), ``summary`` (median/IQR of each Dice column)
        and ``wilcoxon`` (p-values of the 3D CNN against the stacked 2D methods).
    """
    regions = patient_regions(slices)
    t = result.table
    fold_of = {p: int(t["fold"][rows[0]]) for p, (rows, _, _) in regions.items()}
    optimal = {}
    for pid, (_, region, mask) in regions.items():
        thr, best = optimal_thresholds(region[None], mask[None])
        optimal[pid] = (float(thr[0]), float(best[0]))
    net_in = {pid: _network_input(region) for pid, (_, region, _) in regions.items()}
    rows_out: list[dict[str, Any]] = []
    for f in range(1, result.config.n_folds + 1):
        train = [p for p in regions if fold_of[p] != f]
        test = [p for p in regions if fold_of[p] == f]
        if not test:
            continue
        inputs, targets = [], []
        for p in train:
            views = _orientations(net_in[p])
            inputs += views
            targets += [optimal[p][0]] * len(views)
        precision = result.config.precision
        model = _train(
            inputs,
            np.asarray(targets),
            epochs,
            seed * 1000 + 10 * f + 3,
            precision,
            f"fold {f}/{result.config.n_folds} 3D threshold CNN",
        )
        predicted = _predict(model, [net_in[p] for p in test], precision)
        # Honest constant baseline: best median 3D Dice over the training patients.
        const_t = _best_constant_3d([regions[p] for p in train])
        for p, pred in zip(test, predicted, strict=True):
            rows, region, mask = regions[p]
            row: dict[str, Any] = {
                "patient": p,
                "fold": f,
                "slices": len(rows),
                "optimal_threshold_3d": optimal[p][0],
                "predicted_threshold_3d": float(pred),
                "constant_threshold_3d_train": const_t,
                "dice_3d_cnn": float(dice_at_thresholds(region[None], mask[None], pred)[0]),
                "dice_3d_oracle": optimal[p][1],
                "dice_3d_constant_train": float(
                    dice_at_thresholds(region[None], mask[None], const_t)[0]
                ),
            }
            row |= _stacked_2d_dice(slices, result, rows, mask)
            rows_out.append(row)
    cols = [k for k in rows_out[0] if k.startswith("dice_")]
    return {
        "epochs": epochs,
        "network_input_zyx": list(NETWORK_INPUT),
        "patients": rows_out,
        "summary": {c: _median_iqr(np.array([r[c] for r in rows_out])) for c in cols},
        "wilcoxon": _wilcoxon_against_2d(rows_out),
    }


def _stacked_2d_dice(
    slices: SliceSet, result: ExperimentResult, rows: NDArray[np.int64], mask: NDArray[np.bool_]
) -> dict[str, float]:
    """3D Dice of one patient's 2D predictions (each method, and the 2D oracle) stacked."""
    t = result.table
    stacked = {
        "method1": result.unet_output[rows] > t["constant_threshold_method1"][rows][:, None, None],
        "method2": slices.images[rows] > t["predicted_threshold_method2"][rows][:, None, None],
        "method3": result.unet_output[rows] > t["predicted_threshold_method3"][rows][:, None, None],
        "oracle2d": slices.images[rows] > t["optimal_threshold_pet"][rows][:, None, None],
    }
    return {
        f"dice_2d_{name}_stacked": pixel_metrics(pred_mask, mask).dice
        for name, pred_mask in stacked.items()
    }


def _wilcoxon_against_2d(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """p-values of the 3D CNN's Dice against each stacked 2D method (None: all ties)."""
    from petseg.stats import wilcoxon_signed_rank

    cnn = np.array([r["dice_3d_cnn"] for r in rows])
    tests: dict[str, float | None] = {}
    for other in ("dice_2d_method1_stacked", "dice_2d_method2_stacked", "dice_2d_method3_stacked"):
        b = np.array([r[other] for r in rows])
        pvalue = wilcoxon_signed_rank(cnn, b)["pvalue"]
        tests[f"dice_3d_cnn_vs_{other}"] = None if np.isnan(pvalue) else pvalue
    return tests


def _best_constant_3d(regions: list[tuple[Any, NDArray[np.float32], NDArray[np.bool_]]]) -> float:
    curves = np.concatenate([dice_curves(r[None], m[None]) for _, r, m in regions])
    return float(THRESHOLD_GRID[int(np.argmax(np.median(curves, axis=0)))])
