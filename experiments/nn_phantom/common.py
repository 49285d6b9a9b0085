"""Per-case evaluation of every fold, the ensemble and the liver threshold
(``experiments/nn_recipe/train_cohort.py`` imports it).

For every case of a labelled test dataset: the built-in engine predicts it once, keeping
each fold's lesion probability (:meth:`petseg.engine.Engine.predict`); the ensemble and
every single fold are decided and post-processed by the engines' own
:func:`petseg.engine.ensemble_prediction`, exactly as ``petseg predict`` does; the liver-threshold method
(1.5 × SUVmean + 2 × SD of the phantom's liver reference sphere, same post-processing)
runs on the same case. Metrics: pixel-wise Dice, precision, sensitivity and lesion-wise
Dice (F1), sensitivity, precision from :mod:`petseg.metrics`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def evaluate(
    dataset: Path,
    model_dir: Path,
    *,
    done: Sequence[dict[str, Any]] = (),
    on_row: Callable[[dict[str, Any]], None] | None = None,
    cases: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Per-case metrics of every fold, the ensemble and the liver threshold; their summary.

    ``done``: rows of an earlier, interrupted call (those cases are not evaluated again);
    ``on_row`` is called with each new case's row (to save progress); ``cases``: only
    these cases of the dataset (default all).
    """
    from petseg.engine import ensemble_prediction, get_engine
    from petseg.io import load_study
    from petseg.io.dataset import list_cases
    from petseg.io.nifti import read_nifti
    from petseg.lesions import label_components
    from petseg.metrics import match_lesions, pixel_metrics
    from petseg.pipeline import SegmentParams, segment_study

    engine = get_engine("builtin")
    model = engine.load(model_dir, "all")
    rows = list(done)
    for case_id in list_cases(dataset, labelled=True):
        if any(r["case"] == case_id for r in rows) or (cases is not None and case_id not in cases):
            continue
        folder = dataset / case_id
        study = load_study(folder)
        geometry = study.geometry
        truth = np.asarray(read_nifti(folder / "lesions.nii.gz")[0]) > 0
        info = json.loads((folder / "truth.json").read_text())
        # the ensemble and each fold, decided and post-processed as petseg predict does
        prediction = engine.predict(study, model, keep_folds=True)
        preds = {
            f"fold_{f}": ensemble_prediction(study, [(f, p)], [f], {}).result.labels > 0
            for f, p in prediction.fold_probabilities.items()
        }
        preds["ensemble"] = prediction.result.labels > 0
        ref = info.get("reference", {}).get("liver")
        if ref is not None:
            params = SegmentParams(method="liver", ref_sphere=(*ref["centre_mm"], ref["radius_mm"]))
            preds["liver_threshold"] = segment_study(study, params).labels > 0
        row: dict[str, Any] = {
            "case": case_id,
            "negative_control": bool(info.get("negative_control")),
        }
        for name, pred in preds.items():
            px = pixel_metrics(pred, truth)
            lm = match_lesions(pred, truth)
            row[name] = {
                "pixel_dice": px.dice,
                "pixel_precision": px.precision,
                "pixel_sensitivity": px.sensitivity,
                "lesion_dice": lm.lesion_dice_f1,
                "lesion_sensitivity": lm.sensitivity,
                "lesion_precision": lm.precision,
                "segmented_ml": float(pred.sum() * geometry.voxel_volume_ml),
                "segmented_components": int(label_components(pred).max()),
            }
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return {"cases": rows, "summary": summarise(rows)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean (SD) over lesion cases per model and metric (:func:`petseg.stats.mean_sd`);
    volumes on negative controls."""
    from petseg.stats import mean_sd

    names = [k for k in rows[0] if k not in ("case", "negative_control")] if rows else []
    out: dict[str, Any] = {}
    for name in names:
        pos = [r[name] for r in rows if not r["negative_control"]]
        neg = [r[name] for r in rows if r["negative_control"]]
        entry: dict[str, Any] = {}
        for metric in (
            "pixel_dice",
            "pixel_precision",
            "pixel_sensitivity",
            "lesion_dice",
            "lesion_sensitivity",
            "lesion_precision",
        ):
            mean, sd = mean_sd(np.array([p[metric] for p in pos], dtype=float))
            entry[metric] = None if np.isnan(mean) else [mean, sd]
        if neg:
            entry["negative_controls"] = {
                "n": len(neg),
                "with_no_segmentation": sum(n["segmented_components"] == 0 for n in neg),
                "median_segmented_ml": float(np.median([n["segmented_ml"] for n in neg])),
            }
        out[name] = entry
    return out


def table(summary: dict[str, Any]) -> str:
    """Markdown table (mean (SD)) in the layout of Carlsen Table 3."""
    names = list(summary)
    lines = ["| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for metric in (
        "pixel_dice",
        "pixel_precision",
        "pixel_sensitivity",
        "lesion_dice",
        "lesion_sensitivity",
        "lesion_precision",
    ):
        cells = []
        for n in names:
            v = summary[n].get(metric)
            cells.append("–" if v is None else f"{v[0]:.3f} ({v[1]:.3f})")
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    for n in names:
        nc = summary[n].get("negative_controls")
        if nc:
            lines.append(
                f"\n{n} on {nc['n']} negative controls: {nc['with_no_segmentation']} without segmentation, "
                f"median segmented volume {nc['median_segmented_ml']:.2f} mL"
            )
    return "\n".join(lines)
