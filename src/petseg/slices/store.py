"""Files of the slice methods: slice sets (.npz), trained models, experiment outputs.

Everything is written atomically through :mod:`petseg.io.atomic` and never replaces
an existing output unless ``force`` is true. Every output records the petseg version,
the parameters and the inputs that produced it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from petseg.io.atomic import atomic_dir, atomic_file, write_json_atomic
from petseg.jsonable import to_jsonable
from petseg.reporting import csv_text, experiment_markdown
from petseg.slices.build import SliceSet
from petseg.slices.experiment import METHODS, ExperimentResult, table4, table5
from petseg.stats import linear_fit

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
    """Write a SliceSet as one compressed ``.npz`` (arrays + ``meta`` as JSON text).

    Parameters
    ----------
    path : path
        The ``.npz`` file, written atomically.
    slices : SliceSet
        The slices to store.
    force : bool
        Replace an existing file.
    """
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
    """Read a ``.npz`` written by :func:`save_slice_set`.

    Parameters
    ----------
    path : path
        The ``.npz`` file.

    Returns
    -------
    SliceSet
    """
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


def _example_rows(table: dict[str, np.ndarray]) -> list[int]:
    """Fig. 4's slices: fold 1 at the 10th, 50th and 90th percentile of method 2's Dice."""
    first = np.flatnonzero(table["fold"] == 1)
    order = first[np.argsort(table["dice_method2"][first], kind="stable")]
    return sorted({int(order[int(q * (len(order) - 1))]) for q in (0.1, 0.5, 0.9)})


def _save_figures(
    folder: Path, slices: SliceSet, result: ExperimentResult, fit: dict[str, Any]
) -> None:
    """``fig3.png`` (fold 1's predicted vs optimal thresholds) and ``fig4.png``."""
    from petseg.reporting import slice_examples_figure, threshold_fit_figure

    t = result.table
    fold1 = t["fold"] == 1
    fig = threshold_fit_figure(
        t["optimal_threshold_pet"][fold1],
        t["predicted_threshold_method2"][fold1],
        fit,
        title="fold 1",
        ylabel="predicted threshold (method 2)",
    )
    fig.savefig(folder / "fig3.png")
    rows = _example_rows(t)
    fig = slice_examples_figure(
        slices.images[rows],
        slices.masks[rows],
        result.unet_output[rows],
        [
            t[f"{c}_threshold_method{k}"][rows]
            for c, k in (("constant", 1), ("predicted", 2), ("predicted", 3))
        ],
        [t[f"dice_method{k}"][rows] for k in (1, 2, 3)],
        [f"{t['patient'][i]} k={t['slice'][i]}" for i in rows],
    )
    fig.savefig(folder / "fig4.png")


def _fig3_fits(t: dict[str, np.ndarray], n_folds: int) -> dict[str, dict[str, float]]:
    """Least-squares line of method 2's predicted on the optimal thresholds, per fold and all."""
    opt, pred = t["optimal_threshold_pet"], t["predicted_threshold_method2"]
    fits = {
        f"fold_{f}": linear_fit(opt[t["fold"] == f], pred[t["fold"] == f])
        for f in range(1, n_folds + 1)
    }
    fits["all"] = linear_fit(opt, pred)
    return fits


def _write_tables(
    folder: Path, result: ExperimentResult
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``slices.csv``, ``table4.csv``, ``table5.csv``, ``tables.md``, ``threshold3d.csv``."""
    t = result.table
    t4, t5 = table4(result), table5(result)
    rows = [
        {k: (v[i].item() if isinstance(v[i], np.generic) else v[i]) for k, v in t.items()}
        for i in range(len(t["fold"]))
    ]
    flat4 = [
        {
            "fold": r["fold"],
            **{f"{c}_{s}": r[c][s] for c in r if c != "fold" for s in ("median", "iqr", "n")},
        }
        for r in t4
    ]
    tables = {"slices.csv": rows, "table4.csv": flat4, "table5.csv": t5}
    if result.threshold3d is not None:
        tables["threshold3d.csv"] = result.threshold3d["patients"]
    for name, table in tables.items():
        (folder / name).write_text(csv_text(table, digits=6), encoding="utf-8", newline="")
    markdown = experiment_markdown(t4, t5, result.pet_constant)
    (folder / "tables.md").write_text(markdown, encoding="utf-8")
    return t4, t5


def _save_models(folder: Path, result: ExperimentResult, info: dict[str, Any]) -> None:
    """``models/fold_<k>/*.pt`` (state dicts) and ``models/models.json``."""
    import torch

    for f, models in enumerate(result.models, start=1):
        sub = folder / f"fold_{f}"
        sub.mkdir(parents=True)
        for key, name in MODEL_FILES.items():
            torch.save(models[key].state_dict(), sub / name)
    write_json_atomic(folder / "models.json", to_jsonable(info))


def write_experiment_outputs(
    out_dir: str | os.PathLike[str],
    slices: SliceSet,
    result: ExperimentResult,
    *,
    inputs: dict[str, Any],
    force: bool = False,
) -> Path:
    """Write everything an :class:`~petseg.slices.experiment.ExperimentResult` holds.

    Parameters
    ----------
    out_dir : path
        The output folder; must not exist unless ``force``.
    slices : SliceSet
        The slices the experiment ran on.
    result : ExperimentResult
        What :func:`~petseg.slices.experiment.run_experiment` returned.
    inputs : dict
        JSON-ready description of the inputs (recorded in ``summary.json``).
    force : bool
        Replace an existing output folder.

    Returns
    -------
    Path
        ``out_dir``, holding ``slices.csv`` (per slice), ``table4.csv``, ``table5.csv``,
        ``tables.md``, ``threshold3d.csv`` (per patient, when run), ``summary.json``
        (version, time, inputs, parameters, tables, Fig. 3 statistics, per-fold
        details), ``fig3.png``, ``fig4.png`` and ``models/fold_<k>/*.pt`` with
        ``models/models.json``.
    """
    from petseg import __version__

    t = result.table
    fig3 = _fig3_fits(t, result.config.n_folds)
    provenance = {
        "petseg_version": __version__,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "inputs": inputs,
        "parameters": result.config.to_dict(),
    }
    with atomic_dir(out_dir, force=force) as tmp:
        t4, t5 = _write_tables(tmp, result)
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
        write_json_atomic(tmp / "summary.json", to_jsonable(summary))
        _save_figures(tmp, slices, result, fig3["fold_1"])
        if result.models:
            info = {
                **provenance,
                "folds": len(result.models),
                "constant_thresholds_method1": [
                    fd["constant_threshold_method1"] for fd in result.folds
                ],
                "slice_meta": slices.meta,
                "methods": list(METHODS),
            }
            _save_models(tmp / "models", result, info)
    return Path(out_dir)


def load_models(folder: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read the per-fold networks written by :func:`write_experiment_outputs`.

    Parameters
    ----------
    folder : path
        ``OUT/models`` of an experiment (or ``OUT`` itself).

    Returns
    -------
    models : list of dict
        One per fold: the ``unet``, ``cnn_pet`` and ``cnn_unet`` modules and the
        ``constant_threshold``.
    info : dict
        The contents of ``models.json``.
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
