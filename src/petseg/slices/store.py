"""Files of the slice methods: slice sets (.npz), trained models, experiment outputs.

Everything is written atomically through :mod:`petseg.io.atomic` and never replaces
an existing output unless ``force`` is true. Every output records the petseg version,
the parameters and the inputs that produced it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from petseg.io.atomic import atomic_dir, atomic_file, write_json_atomic
from petseg.jsonable import to_jsonable
from petseg.slices.build import SliceSet

__all__ = [
    "MODEL_FILES",
    "load_models",
    "load_slice_set",
    "save_slice_set",
    "write_experiment_outputs",
]

#: Per-fold model files in ``OUT/models/fold_<k>/``.
MODEL_FILES = {"unet": "unet.pt", "cnn_pet": "cnn_pet.pt", "cnn_unet": "cnn_unet.pt"}


def save_slice_set(path: str | os.PathLike[str], slices: SliceSet, force: bool = False) -> None:
    """Write a SliceSet as one compressed ``.npz`` (arrays + ``meta`` as JSON text)."""
    with atomic_file(path, force=force) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                images=slices.images,
                masks=slices.masks,
                patient_ids=slices.patient_ids.astype(str),
                slice_index=slices.slice_index,
                windows=slices.windows,
                suv_range=slices.suv_range,
                meta=np.array(json.dumps(slices.meta)),
            )


def load_slice_set(path: str | os.PathLike[str]) -> SliceSet:
    """Read a ``.npz`` written by :func:`save_slice_set`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; make it with `petseg slices build`")
    with np.load(path, allow_pickle=False) as data:
        missing = {"images", "masks", "patient_ids", "slice_index", "windows", "suv_range"} - set(
            data.files
        )
        if missing:
            raise ValueError(f"{path} is not a petseg slice set (missing {sorted(missing)})")
        return SliceSet(
            images=data["images"].astype(np.float32),
            masks=data["masks"].astype(bool),
            patient_ids=data["patient_ids"].astype(str),
            slice_index=data["slice_index"].astype(np.int64),
            windows=data["windows"].astype(np.int64),
            suv_range=data["suv_range"].astype(np.float32),
            meta=json.loads(str(data["meta"])) if "meta" in data.files else {},
        )


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: (f"{v:.6g}" if isinstance(v, float) else ("" if v is None else v))
                for k, v in row.items()
            }
        )
    return buf.getvalue()


def _markdown(t4: list[dict[str, Any]], t5: list[dict[str, Any]], pet_constant: dict) -> str:
    cols = ("method1", "method2", "method3", "oracle", "pet_constant_all", "pet_constant_train")
    lines = [
        "Table 4 - Dice median (IQR) per test fold and pooled",
        "",
        "| fold | n | " + " | ".join(cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    for r in t4:
        cells = [f"{r[c]['median']:.3f} ({r[c]['iqr']:.3f})" for c in cols]
        lines.append(f"| {r['fold']} | {r['method1']['n']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Best constant threshold over all PET slices: {pet_constant['threshold']:.2f} "
        f"(median Dice {pet_constant['median_dice']:.3f}).",
        "",
        "Table 5 - Wilcoxon signed-rank p-values",
        "",
        "| fold | 1st vs 2nd | 1st vs 3rd | 2nd vs 3rd |",
        "|---|---|---|---|",
    ]
    for r in t5:
        cells = [
            "n/a" if r[k] is None else f"{r[k]:.3g}"
            for k in ("method1_vs_method2", "method1_vs_method3", "method2_vs_method3")
        ]
        lines.append(f"| {r['fold']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fig3(path: Path, table: dict[str, np.ndarray], fit: dict[str, float], fold: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = table["fold"] == fold
    x, y = table["optimal_threshold_pet"][sel], table["predicted_threshold_method2"][sel]
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(x, y, s=10, alpha=0.6)
    line = np.array([0.0, 1.0])
    ax.plot(line, fit["slope"] * line + fit["intercept"], "r-", label="least squares")
    ax.plot(line, line, "k:", lw=0.8, label="identity")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="optimal threshold",
        ylabel="predicted threshold (method 2)",
        title=(
            f"fold {fold}: slope {fit['slope']:.3f}, intercept {fit['intercept']:.3f}\n"
            f"Pearson r {fit['pearson_r']:.3f}, R² {fit['r_squared']:.3f}"
        ),
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fig4(path: Path, slices: SliceSet, result: Any, rows: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = result.table
    titles = ("PET", "truth", "U-Net output", "method 1", "method 2", "method 3")
    fig, axes = plt.subplots(len(rows), 6, figsize=(12, 2.1 * len(rows)), dpi=90, squeeze=False)
    for r, i in enumerate(rows):
        out = result.unet_output[i]
        panels = (
            (slices.images[i], ""),
            (slices.masks[i], ""),
            (out, ""),
            (
                out > t["constant_threshold_method1"][i],
                f"t={t['constant_threshold_method1'][i]:.2f}",
            ),
            (
                slices.images[i] > t["predicted_threshold_method2"][i],
                f"t={t['predicted_threshold_method2'][i]:.3f}",
            ),
            (
                out > t["predicted_threshold_method3"][i],
                f"t={t['predicted_threshold_method3'][i]:.3f}",
            ),
        )
        dices = ("", "", "", t["dice_method1"][i], t["dice_method2"][i], t["dice_method3"][i])
        for c, ((img, note), d) in enumerate(zip(panels, dices, strict=True)):
            ax = axes[r, c]
            ax.imshow(img, cmap="gray_r" if c == 0 else "gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            label = titles[c] if r == 0 else ""
            if d != "":
                label = f"{label}\n{note} Dice {d:.3f}".strip()
            if c == 0:
                label = f"{label}\n{t['patient'][i]} k={t['slice'][i]}".strip()
            ax.set_title(label, fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_experiment_outputs(
    out_dir: str | os.PathLike[str],
    slices: SliceSet,
    result: Any,
    *,
    inputs: dict[str, Any],
    force: bool = False,
) -> Path:
    """Write everything an :class:`~petseg.slices.experiment.ExperimentResult` holds.

    Files: ``slices.csv`` (per slice), ``table4.csv``, ``table5.csv``, ``tables.md``,
    ``threshold3d.csv`` (per patient, when run), ``summary.json`` (version, time,
    inputs, parameters, tables, Fig. 3 statistics, per-fold details), ``fig3.png``,
    ``fig4.png`` and ``models/fold_<k>/*.pt`` with ``models/models.json``.
    """
    import torch

    from petseg import __version__
    from petseg.slices.experiment import METHODS, fig3_statistics, table4, table5

    t = result.table
    t4, t5 = table4(result), table5(result)
    fig3 = {
        f"fold_{f}": fig3_statistics(
            t["optimal_threshold_pet"][t["fold"] == f],
            t["predicted_threshold_method2"][t["fold"] == f],
        )
        for f in range(1, result.config.n_folds + 1)
    }
    fig3["all"] = fig3_statistics(t["optimal_threshold_pet"], t["predicted_threshold_method2"])
    provenance = {
        "petseg_version": __version__,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "inputs": inputs,
        "parameters": result.config.to_dict(),
    }
    summary = {
        **provenance,
        "n_slices": len(t["fold"]),
        "n_patients": len(set(t["patient"].tolist())),
        "seconds": result.seconds,
        "pet_constant_all_slices": result.pet_constant,
        "table4": t4,
        "table5": t5,
        "fig3": fig3,
        "folds": result.folds,
        "threshold3d": None
        if result.threshold3d is None
        else {k: v for k, v in result.threshold3d.items() if k != "patients"},
    }
    first = np.flatnonzero(t["fold"] == 1)
    # Fig. 4: the fold-1 slices at the 10th, 50th and 90th percentile of method 2's Dice.
    order = first[np.argsort(t["dice_method2"][first], kind="stable")]
    picks = sorted({int(order[int(q * (len(order) - 1))]) for q in (0.1, 0.5, 0.9)})
    with atomic_dir(out_dir, force=force) as tmp:
        rows = [
            {k: (v[i].item() if isinstance(v[i], np.generic) else v[i]) for k, v in t.items()}
            for i in range(len(t["fold"]))
        ]
        (tmp / "slices.csv").write_text(_csv_text(rows), encoding="utf-8")
        flat4 = [
            {
                "fold": r["fold"],
                **{f"{c}_{s}": r[c][s] for c in r if c != "fold" for s in ("median", "iqr", "n")},
            }
            for r in t4
        ]
        (tmp / "table4.csv").write_text(_csv_text(flat4), encoding="utf-8")
        (tmp / "table5.csv").write_text(_csv_text(t5), encoding="utf-8")
        (tmp / "tables.md").write_text(_markdown(t4, t5, result.pet_constant), encoding="utf-8")
        if result.threshold3d is not None:
            (tmp / "threshold3d.csv").write_text(
                _csv_text(result.threshold3d["patients"]), encoding="utf-8"
            )
        write_json_atomic(tmp / "summary.json", to_jsonable(summary))
        _fig3(tmp / "fig3.png", t, fig3["fold_1"], 1)
        _fig4(tmp / "fig4.png", slices, result, picks)
        for f, models in enumerate(result.models, start=1):
            folder = tmp / "models" / f"fold_{f}"
            folder.mkdir(parents=True)
            for key, name in MODEL_FILES.items():
                torch.save(models[key].state_dict(), folder / name)
        if result.models:
            write_json_atomic(
                tmp / "models" / "models.json",
                to_jsonable(
                    {
                        **provenance,
                        "folds": len(result.models),
                        "constant_thresholds_method1": [
                            fd["constant_threshold_method1"] for fd in result.folds
                        ],
                        "slice_meta": slices.meta,
                        "methods": list(METHODS),
                    }
                ),
            )
    return Path(out_dir)


def load_models(folder: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read the per-fold networks written by :func:`write_experiment_outputs`.

    Parameters
    ----------
    folder : path
        ``OUT/models`` of an experiment (or ``OUT`` itself).

    Returns
    -------
    models : list of dict (``unet``, ``cnn_pet``, ``cnn_unet`` modules, ``constant_threshold``)
    info : dict, the contents of ``models.json``
    """
    import torch

    from petseg.slices.models import ThresholdCNN, UNet2D

    folder = Path(folder)
    if (folder / "models" / "models.json").exists():
        folder = folder / "models"
    info_path = folder / "models.json"
    if not info_path.exists():
        raise FileNotFoundError(
            f"{info_path} not found; pass the models folder written by `petseg slices experiment`"
        )
    info = json.loads(info_path.read_text(encoding="utf-8"))
    params = info["parameters"]
    models = []
    for f in range(1, int(info["folds"]) + 1):
        sub = folder / f"fold_{f}"
        entry: dict[str, Any] = {
            "unet": UNet2D(tuple(params["dropout"])),
            "cnn_pet": ThresholdCNN(),
            "cnn_unet": ThresholdCNN(),
            "constant_threshold": float(info["constant_thresholds_method1"][f - 1]),
        }
        for key, name in MODEL_FILES.items():
            entry[key].load_state_dict(torch.load(sub / name, weights_only=True))
            entry[key].eval()
        models.append(entry)
    return models, info
