"""Does the ensemble's uncertainty point at its mistakes? Measured on held-out phantoms.

LONG EXPERIMENT, NOT RUN IN CI (about 1-2 min per case on 2 CPU cores). Resumable: each
case's figures are kept in ``WORK/cases/<case>.json``; run the same command again.

Cohort: ``petseg.phantom.write_dataset(n=20, negatives=10, seed=606)`` at 4 mm, by default
over the trunk (depth 380-700 mm below the vertex, transaxial 300 × 480 mm: chest and
abdomen, a quarter of the whole-body voxels, so that it runs on a shared 2-core machine);
``--whole-body`` uses the generator's default field. Seed 606 is used nowhere else: the shipped model trained on seed 1 and was tested on seed 2,
the tests use seeds 3 and below, the benchmarks 11 and 12345. Model: the shipped
demonstration model (5 folds), or ``--model``; every case is predicted as
``petseg predict`` does (:meth:`petseg.engine.Engine.predict`).

Two questions, each answered by an AUC = U / (n1 n2) of ``scipy.stats.mannwhitneyu`` (the
probability that a random positive scores above a random negative, ties counted half):

1. **False positives.** Every segmented lesion is a true positive when it overlaps a truth
   lesion, else a false positive (every lesion on a negative control is one). Positive
   class = false positive; scores: the lesion's mean and maximum uncertainty, and the
   number of folds that would not segment it on their own. Reference
   score: 1 − the lesion's mean ensemble probability (what a reader has without the folds).
   Also: how many false and true positives carry the ``review_first`` flag.
2. **Missed lesions.** Candidates are the connected components of unsegmented probability
   mass, ``p ≥ CANDIDATE_PROBABILITY`` outside the segmented lesions: places the ensemble
   almost segmented. A candidate is positive when it overlaps a truth lesion that was
   missed; candidates overlapping a detected truth lesion (its unsegmented rim) are left
   out of both classes. Because one region of probability mass often joins a missed lesion
   to a detected one (several liver lesions in one cloud), the missed lesions are also
   scored on their own: for each missed truth lesion with mass, its maximum uncertainty
   (and probability) inside the lesion, against the candidates that touch no truth lesion
   (from each case's saved maps). Scores: the candidate's maximum uncertainty; reference: its
   maximum probability. Also: how many missed truth lesions hold any such mass at all (the
   most the candidates can find).

Run: ``python experiments/nn_uncertainty/run.py --work WORK [--model MODEL] [--threads 2]
[--whole-body]``.
Writes ``WORK/results.json`` and prints the table for docs/network.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

SEED = 606
LESION_CASES = 20
NEGATIVE_CONTROLS = 10
#: The trunk field of view (mm): depth below the vertex, transaxial (y, x).
TRUNK_AXIAL_MM = (380.0, 700.0)
TRUNK_TRANSAXIAL_MM = (300.0, 480.0)
#: Version of the candidate definition (module docstring) a case's rows were made with.
CANDIDATE_RULE = 2
#: Lowest ensemble probability that counts as probability mass of a candidate.
CANDIDATE_PROBABILITY = 0.05


def auc(positive: list[float], negative: list[float]) -> float:
    """P(positive score > negative score) + ½ P(tie), by Mann–Whitney U; NaN if a class is empty."""
    from scipy.stats import mannwhitneyu

    if not positive or not negative:
        return float("nan")
    u = mannwhitneyu(positive, negative, alternative="two-sided").statistic
    return float(u) / (len(positive) * len(negative))


def lesion_rows(prediction: Any, truth: np.ndarray) -> list[dict[str, Any]]:
    """One row per segmented lesion: TP/FP, uncertainty, fold count, flag, probability."""
    labels = prediction.result.labels
    rows = []
    for u in prediction.result.lesion_uncertainty or []:
        inside = labels == u.label
        rows.append(
            u.to_dict()
            | {
                "true_positive": bool(truth[inside].any()),
                "mean_probability": float(prediction.probability[inside].mean()),
            }
        )
    return rows


def candidate_rows(prediction: Any, truth: np.ndarray) -> tuple[list[dict[str, Any]], dict]:
    """Sub-threshold candidates (module docstring) and the missed truth lesions' counts."""
    from petseg.lesions import label_components

    segmented = prediction.result.labels > 0
    truth_labels = label_components(truth)
    n_truth = int(truth_labels.max())
    detected = np.unique(truth_labels[segmented & (truth_labels > 0)])
    missed = np.setdiff1d(np.arange(1, n_truth + 1), detected)
    missed_mask = np.isin(truth_labels, missed)
    mass = (prediction.probability >= CANDIDATE_PROBABILITY) & ~segmented
    regions = label_components(mass)
    detected_mask = np.isin(truth_labels, detected)
    rows = []
    for k in range(1, int(regions.max()) + 1):
        inside = regions == k
        if detected_mask[inside].any():
            continue  # the unsegmented rim of a detected lesion: neither class
        rows.append(
            {
                "missed_lesion": bool(missed_mask[inside].any()),
                "uncertainty_max": float(prediction.uncertainty[inside].max()),
                "probability_max": float(prediction.probability[inside].max()),
                "voxels": int(inside.sum()),
            }
        )
    with_mass = [
        m
        for m in missed
        if (prediction.probability[truth_labels == m] >= CANDIDATE_PROBABILITY).any()
    ]
    counts = {
        "truth_lesions": n_truth,
        "missed": int(missed.size),
        "missed_with_mass": len(with_mass),
    }
    return rows, counts


def missed_lesion_scores(maps: Path) -> list[dict[str, float]]:
    """Max uncertainty and probability inside each missed truth lesion that holds mass."""
    from petseg.lesions import label_components

    with np.load(maps) as data:
        probability = data["probability"].astype(np.float32)
        uncertainty = data["uncertainty"].astype(np.float32)
        segmented = data["labels"] > 0
        truth_labels = label_components(data["truth"])
    rows = []
    for k in range(1, int(truth_labels.max()) + 1):
        inside = truth_labels == k
        if segmented[inside].any() or probability[inside].max() < CANDIDATE_PROBABILITY:
            continue
        rows.append(
            {
                "uncertainty_max": float(uncertainty[inside].max()),
                "probability_max": float(probability[inside].max()),
            }
        )
    return rows


def run_case(folder: Path, engine: Any, model: Any, maps: Path) -> dict[str, Any]:
    """Predict one case, keep its maps (float16 probability and uncertainty, labels, truth)
    in ``maps`` and return its lesion and candidate rows."""
    from petseg.io import load_study
    from petseg.io.nifti import read_nifti

    study = load_study(folder)
    truth = np.asarray(read_nifti(folder / "lesions.nii.gz")[0]) > 0
    prediction = engine.predict(study, model)
    candidates, counts = candidate_rows(prediction, truth)
    np.savez_compressed(
        maps,
        probability=prediction.probability.astype(np.float16),
        uncertainty=prediction.uncertainty.astype(np.float16),
        labels=prediction.result.labels.astype(np.int16),
        truth=truth,
    )
    return {
        "case": folder.name,
        "candidate_rule": CANDIDATE_RULE,
        "negative_control": not truth.any(),
        "lesions": lesion_rows(prediction, truth),
        "candidates": candidates,
        **counts,
    }


def summarise(cases: list[dict[str, Any]], work: Path) -> dict[str, Any]:
    """The AUCs and flag counts of the module docstring over all cases."""
    lesions = [r for c in cases for r in c["lesions"]]
    fp = [r for r in lesions if not r["true_positive"]]
    tp = [r for r in lesions if r["true_positive"]]
    current = [c for c in cases if c.get("candidate_rule") == CANDIDATE_RULE]
    candidates = [r for c in current for r in c["candidates"]]
    missed = [r for c in current for r in missed_lesion_scores(work / "cases" / f"{c['case']}.npz")]
    hit = [r for r in candidates if r["missed_lesion"]]
    other = [r for r in candidates if not r["missed_lesion"]]

    def col(rows: list[dict[str, Any]], key: str, sign: float = 1.0, shift: float = 0.0) -> list:
        return [shift + sign * r[key] for r in rows]

    return {
        "cases": len(cases),
        "negative_controls": sum(c["negative_control"] for c in cases),
        "segmented_lesions": {"true_positive": len(tp), "false_positive": len(fp)},
        "auc_false_positive": {
            "uncertainty_mean": auc(col(fp, "uncertainty_mean"), col(tp, "uncertainty_mean")),
            "uncertainty_max": auc(col(fp, "uncertainty_max"), col(tp, "uncertainty_max")),
            "folds_not_segmenting": auc(
                [r["folds"] - r["folds_segmenting"] for r in fp],
                [r["folds"] - r["folds_segmenting"] for r in tp],
            ),
            "reference_1_minus_mean_probability": auc(
                col(fp, "mean_probability", -1, 1), col(tp, "mean_probability", -1, 1)
            ),
        },
        "review_first": {
            "false_positives_flagged": sum(r["review_first"] for r in fp),
            "true_positives_flagged": sum(r["review_first"] for r in tp),
        },
        "missed": {
            "cases": len(current),
            "truth_lesions": sum(c["truth_lesions"] for c in current),
            "missed": sum(c["missed"] for c in current),
            "missed_with_probability_mass": sum(c["missed_with_mass"] for c in current),
            "candidates": {"on_missed_lesion": len(hit), "elsewhere": len(other)},
            "auc_uncertainty_max": auc(col(hit, "uncertainty_max"), col(other, "uncertainty_max")),
            "auc_reference_probability_max": auc(
                col(hit, "probability_max"), col(other, "probability_max")
            ),
            "missed_lesions_scored": len(missed),
            "auc_missed_lesion_vs_candidates_uncertainty_max": auc(
                col(missed, "uncertainty_max"), col(other, "uncertainty_max")
            ),
            "auc_missed_lesion_vs_candidates_reference_probability_max": auc(
                col(missed, "probability_max"), col(other, "probability_max")
            ),
        },
    }


def interleaved(cases: list[str]) -> list[str]:
    """Lesion cases and negative controls alternating (2:1), so that a partial run holds both."""
    controls = [c for c in cases if c.startswith("control")]
    lesions = [c for c in cases if not c.startswith("control")]
    order = []
    for k, case in enumerate(lesions):
        order.append(case)
        if k % 2 == 1 and controls:
            order.append(controls.pop(0))
    return order + controls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--whole-body", action="store_true", help="the generator's full field")
    parser.add_argument(
        "--summarise-only",
        action="store_true",
        help="summarise the cases predicted so far (WORK/cases) without predicting more",
    )
    args = parser.parse_args()
    import torch

    from petseg.engine import get_engine
    from petseg.nn.data import list_cases
    from petseg.phantom import PhantomConfig, write_dataset
    from petseg.progress import progress

    torch.set_num_threads(args.threads)
    dataset = args.work / "cohort"
    field = (
        None
        if args.whole_body
        else PhantomConfig(axial_range_mm=TRUNK_AXIAL_MM, transaxial_fov_mm=TRUNK_TRANSAXIAL_MM)
    )
    if not dataset.exists():
        write_dataset(dataset, n=LESION_CASES, seed=SEED, negatives=NEGATIVE_CONTROLS, config=field)
    engine = get_engine("builtin")
    model = engine.load(args.model)
    (args.work / "cases").mkdir(exist_ok=True)
    cases = []
    for case in progress(interleaved(list_cases(dataset)), desc="uncertainty", unit="case"):
        path = args.work / "cases" / f"{case}.json"
        if not path.exists() and not args.summarise_only:
            maps = args.work / "cases" / f"{case}.npz"
            path.write_text(json.dumps(run_case(dataset / case, engine, model, maps), indent=1))
        if path.exists():
            cases.append(json.loads(path.read_text()))
    summary = summarise(cases, args.work) | {
        "model": str(model.path),
        "folds": model.folds,
        "seed": SEED,
        "candidate_probability": CANDIDATE_PROBABILITY,
        "field": "whole body" if args.whole_body else "trunk",
    }
    (args.work / "results.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
