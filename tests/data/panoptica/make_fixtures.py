"""Expected outputs of panoptica and of the autoPET III formulas on generated cases.

Run in an isolated environment that has panoptica (it pins numpy<2.3, pandas<3, cc3d<4,
so it must not go into petseg's environment):

    python3 -m venv /tmp/panoptica-venv && /tmp/panoptica-venv/bin/pip install panoptica
    /tmp/panoptica-venv/bin/python tests/data/panoptica/make_fixtures.py

It writes ``fixtures.json`` beside this file. ``make_cases()`` (numpy only) is imported by
``tests/test_metrics.py`` so both sides see the same arrays.

panoptica side (per case and connectivity 6/18/26): components are labelled here with
``scipy.ndimage.label`` and the face/edge/corner structuring element (panoptica 2.1.7's
own connected-components step has no connectivity argument), then
``Panoptica_Evaluator(expected_input=InputType.UNMATCHED_INSTANCE,
instance_matcher=NaiveThresholdMatching(matching_metric=Metric.IOU,
matching_threshold=0.5, allow_many_to_one=False), instance_metrics=[Metric.DSC, Metric.IOU],
global_metrics=[Metric.DSC])`` gives tp, fp, fn, the instance counts, the per-pair Dice
of matched instances (``get_list_metric(Metric.DSC, MetricMode.ALL)``) and the global
binary Dice.

autoPET side: the formulas of the autoPET III evaluation script (lab-midas/autoPET,
``compute_metrics``), re-implemented below as the script does them, one connected
component at a time, with 18-connectivity (scipy labelling, not cc3d): Dice NaN for an
empty truth; FP volume = voxels of predicted components with no true voxel × voxel
volume (0 for an empty prediction); FN volume = voxels of true components with no
predicted voxel × voxel volume (NaN for an empty truth).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

SPACINGS = {"carlsen": (3.0, 2.0, 2.0), "iso1": (1.0, 1.0, 1.0), "aniso": (2.79, 0.977, 0.977)}
RANK = {6: 1, 18: 2, 26: 3}


def make_cases() -> dict[str, dict]:
    """Named cases: ``pred`` and ``truth`` bool (Z, Y, X) arrays and a ``spacing`` key."""
    cases: dict[str, dict] = {}
    shape = (8, 12, 12)

    # Truth: two cubes touching only at a corner (one lesion at 26, two at 18 and 6).
    t = np.zeros(shape, bool)
    t[1:3, 1:3, 1:3] = True
    t[3:5, 3:5, 3:5] = True
    p = t.copy()
    p[1, 1, 1] = False  # first cube slightly under-segmented
    p[6, 9:11, 9:11] = True  # a false positive
    cases["corner_touching"] = {"pred": p, "truth": t, "spacing": "carlsen"}

    # Truth: two bars sharing an edge (one lesion at 26 and 18, two at 6); prediction
    # covers only one bar and part of the other.
    t = np.zeros(shape, bool)
    t[2:4, 2:4, 2:6] = True
    t[4:6, 4:6, 2:6] = True
    p = np.zeros(shape, bool)
    p[2:4, 2:4, 2:6] = True
    p[4:6, 4:5, 2:4] = True
    cases["edge_touching"] = {"pred": p, "truth": t, "spacing": "aniso"}

    t = np.zeros(shape, bool)
    p = np.zeros(shape, bool)
    p[2:4, 2:5, 2:5] = True
    p[6, 8, 8] = True
    cases["empty_truth"] = {"pred": p, "truth": t, "spacing": "carlsen"}

    t = np.zeros(shape, bool)
    t[3:6, 3:6, 3:6] = True
    cases["empty_prediction"] = {"pred": np.zeros(shape, bool), "truth": t, "spacing": "iso1"}

    # A busier case: a split lesion, a merge of two lesions, a weak overlap (IoU < 0.5),
    # a missed lesion and false positives.
    shape = (10, 24, 24)
    t = np.zeros(shape, bool)
    p = np.zeros(shape, bool)
    t[1:5, 1:7, 1:7] = True  # split into two predictions
    p[1:5, 1:7, 1:3] = True
    p[1:5, 1:7, 5:7] = True
    t[1:4, 10:13, 10:12] = True  # two true lesions merged by one prediction
    t[1:4, 10:13, 14:16] = True
    p[1:4, 10:13, 10:16] = True
    t[6:9, 2:8, 14:20] = True  # weakly overlapped
    p[6:9, 6:10, 18:22] = True
    t[7:9, 18:22, 2:6] = True  # missed
    p[5, 20:23, 20:23] = True  # false positives
    p[0, 22, 0:3] = True
    t[6:9, 14:18, 10:13] = True  # well segmented
    p[6:9, 14:18, 10:12] = True
    cases["mixed"] = {"pred": p, "truth": t, "spacing": "carlsen"}

    # Random blobs (seeded) on an anisotropic grid.
    rng = np.random.default_rng(20240501)
    shape = (14, 26, 26)
    zz, yy, xx = np.indices(shape)
    t = np.zeros(shape, bool)
    p = np.zeros(shape, bool)
    for _ in range(6):
        c = rng.uniform([3, 4, 4], [11, 22, 22])
        r = rng.uniform(1.8, 3.5)
        t |= (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r * r
        shift = rng.normal(0, 0.5, 3)
        r2 = r * rng.uniform(0.85, 1.15)
        if rng.uniform() < 0.85:
            p |= (zz - c[0] - shift[0]) ** 2 + (yy - c[1] - shift[1]) ** 2 + (
                xx - c[2] - shift[2]
            ) ** 2 <= r2 * r2
    p |= rng.uniform(size=shape) > 0.998  # scattered single-voxel false positives
    cases["random_blobs"] = {"pred": p, "truth": t, "spacing": "aniso"}
    return cases


def _label(mask: np.ndarray, connectivity: int) -> np.ndarray:
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(3, RANK[connectivity])
    labels, _ = ndimage.label(mask, structure=structure)
    return labels


def _autopet(pred: np.ndarray, truth: np.ndarray, voxel_ml: float) -> dict[str, float | None]:
    def untouched(mask: np.ndarray, other: np.ndarray) -> int:
        labels = _label(mask, 18)
        total = 0
        for idx in range(1, labels.max() + 1):
            comp = labels == idx
            if (comp & other).sum() == 0:
                total += int(comp.sum())
        return total

    if truth.sum() == 0:
        dice = None  # NaN
        fnv = None
    else:
        dice = 2 * float((pred & truth).sum()) / float(pred.sum() + truth.sum())
        fnv = untouched(truth, pred) * voxel_ml
    fpv = 0.0 if pred.sum() == 0 else untouched(pred, truth) * voxel_ml
    return {"dice": dice, "fp_volume_ml": fpv, "fn_volume_ml": fnv}


def _panoptica(pred: np.ndarray, truth: np.ndarray, connectivity: int) -> dict:
    from panoptica import InputType, Metric, NaiveThresholdMatching, Panoptica_Evaluator
    from panoptica.metrics import MetricMode

    evaluator = Panoptica_Evaluator(
        expected_input=InputType.UNMATCHED_INSTANCE,
        instance_matcher=NaiveThresholdMatching(
            matching_metric=Metric.IOU, matching_threshold=0.5, allow_many_to_one=False
        ),
        instance_metrics=[Metric.DSC, Metric.IOU],
        global_metrics=[Metric.DSC],
    )
    lp = _label(pred, connectivity).astype(np.uint16)
    lt = _label(truth, connectivity).astype(np.uint16)
    result = evaluator.evaluate(lp, lt, verbose=False)["ungrouped"]
    try:
        pair_dice = [float(v) for v in result.get_list_metric(Metric.DSC, MetricMode.ALL)]
    except Exception:  # no matched instance: panoptica has no list
        pair_dice = []
    gd = float(result.global_bin_dsc)
    return {
        "n_ref": int(result.n_ref_instances),
        "n_pred": int(result.n_pred_instances),
        "tp": int(result.tp),
        "fp": int(result.fp),
        "fn": int(result.fn),
        "pair_dice": sorted(pair_dice),
        "global_dice": None if math.isnan(gd) else gd,
    }


def main() -> None:
    import importlib.metadata

    from panoptica.utils.citation_reminder import disable_citation_reminder

    disable_citation_reminder()
    out = {
        "generator": "tests/data/panoptica/make_fixtures.py",
        "panoptica_version": importlib.metadata.version("panoptica"),
        "scipy_version": importlib.metadata.version("scipy"),
        "numpy_version": importlib.metadata.version("numpy"),
        "spacings_mm_zyx": SPACINGS,
        "cases": {},
    }
    for name, case in make_cases().items():
        spacing = SPACINGS[case["spacing"]]
        voxel_ml = float(np.prod(spacing)) / 1000.0
        out["cases"][name] = {
            "spacing": case["spacing"],
            "panoptica": {str(c): _panoptica(case["pred"], case["truth"], c) for c in (6, 18, 26)},
            "autopet": _autopet(case["pred"], case["truth"], voxel_ml),
        }
    path = Path(__file__).with_name("fixtures.json")
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
