"""Speed of petseg's per-case evaluation against a per-component loop (autoPET style).

    python benchmarks/evaluate_speed.py [--cases 41] [--baseline-cases 5]

Generates cases of 336×336×300 voxels (2×2×3 mm, the Carlsen grid) with ~25 spherical
lesions, a prediction that shifts/rescales them, misses some and adds false positives.
petseg (:func:`petseg.evaluate.evaluate_case`, every metric) runs on every case; the
baseline, written the way the autoPET evaluation script is (one ``np.isin`` mask per
connected component over the whole volume), computes pixel Dice, FP/FN volumes
(18-connectivity) and lesion detection counts and per-lesion Dice (26-connectivity) on the
first ``--baseline-cases`` cases, and the numbers are compared. panoptica is timed when it
is importable (it is not in petseg's environment).
"""

from __future__ import annotations

import argparse
import time

import cc3d
import numpy as np

from petseg.evaluate import evaluate_case
from petseg.study import Geometry

SHAPE = (300, 336, 336)
SPACING = (3.0, 2.0, 2.0)


def _stamp(mask: np.ndarray, centre: np.ndarray, radius_mm: float) -> None:
    r = [int(np.ceil(radius_mm / s)) + 1 for s in SPACING]
    lo = [max(int(c) - ri, 0) for c, ri in zip(centre, r, strict=True)]
    hi = [min(int(c) + ri + 1, n) for c, ri, n in zip(centre, r, SHAPE, strict=True)]
    zz, yy, xx = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    d2 = (
        ((zz - centre[0]) * SPACING[0]) ** 2
        + ((yy - centre[1]) * SPACING[1]) ** 2
        + ((xx - centre[2]) * SPACING[2]) ** 2
    )
    mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] |= d2 <= radius_mm**2


def make_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.zeros(SHAPE, bool)
    pred = np.zeros(SHAPE, bool)
    for _ in range(25):
        c = rng.uniform([20, 60, 60], [280, 276, 276])
        r = rng.uniform(4.0, 15.0)
        _stamp(truth, c, r)
        if rng.uniform() < 0.9:
            _stamp(pred, c + rng.normal(0, 0.7, 3), r * rng.uniform(0.8, 1.2))
    for _ in range(rng.integers(0, 6)):
        _stamp(pred, rng.uniform([20, 60, 60], [280, 276, 276]), rng.uniform(3.0, 8.0))
    return pred, truth


def loop_baseline(pred: np.ndarray, truth: np.ndarray, voxel_ml: float) -> dict[str, float]:
    """Per-component loops over the whole volume, as the autoPET script does."""
    out: dict[str, float] = {}
    out["pixel_dice"] = 2 * float((pred & truth).sum()) / float(pred.sum() + truth.sum())
    p18 = cc3d.connected_components(pred, connectivity=18)
    t18 = cc3d.connected_components(truth, connectivity=18)
    fp = 0
    for idx in range(1, p18.max() + 1):
        comp = np.isin(p18, idx)
        if (comp * truth).sum() == 0:
            fp += comp.sum()
    fn = 0
    for idx in range(1, t18.max() + 1):
        comp = np.isin(t18, idx)
        if (comp * pred).sum() == 0:
            fn += comp.sum()
    out["fp_volume_ml"] = float(fp * voxel_ml)
    out["fn_volume_ml"] = float(fn * voxel_ml)
    p26 = cc3d.connected_components(pred, connectivity=26)
    t26 = cc3d.connected_components(truth, connectivity=26)
    detected, dices = 0, []
    for idx in range(1, t26.max() + 1):
        comp = np.isin(t26, idx)
        touching = np.unique(p26[comp])
        touching = touching[touching > 0]
        if touching.size:
            detected += 1
            union = np.isin(p26, touching)
            dices.append(2 * float((comp & union).sum()) / float(comp.sum() + union.sum()))
    matched = 0
    for idx in range(1, p26.max() + 1):
        if (np.isin(p26, idx) & truth).any():
            matched += 1
    out["lesion_tp"] = detected
    out["lesion_fp"] = int(p26.max()) - matched
    out["lesion_fn"] = int(t26.max()) - detected
    out["mean_matched_lesion_dice"] = float(np.mean(dices)) if dices else float("nan")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=41)
    parser.add_argument("--baseline-cases", type=int, default=5)
    args = parser.parse_args()
    geometry = Geometry.from_spacing(SHAPE, SPACING)
    voxel_ml = geometry.voxel_volume_ml
    t_petseg, t_loop, t_pan, lesions = [], [], [], []
    try:
        import panoptica  # noqa: F401

        have_panoptica = True
    except ImportError:
        have_panoptica = False
    for k in range(args.cases):
        pred, truth = make_case(k)
        start = time.perf_counter()
        row = evaluate_case(pred, truth, geometry)
        t_petseg.append(time.perf_counter() - start)
        lesions.append(row["n_true_lesions"])
        if k < args.baseline_cases:
            start = time.perf_counter()
            ref = loop_baseline(pred, truth, voxel_ml)
            t_loop.append(time.perf_counter() - start)
            for key, value in ref.items():
                if not np.isclose(row[key], value, rtol=1e-12, atol=1e-12, equal_nan=True):
                    raise SystemExit(f"case {k}: {key} differs: petseg {row[key]} vs loop {value}")
        if have_panoptica and k < args.baseline_cases:
            from panoptica import InputType, NaiveThresholdMatching, Panoptica_Evaluator

            ev = Panoptica_Evaluator(
                expected_input=InputType.UNMATCHED_INSTANCE,
                instance_matcher=NaiveThresholdMatching(matching_threshold=0.5),
            )
            lp = cc3d.connected_components(pred, connectivity=26)
            lt = cc3d.connected_components(truth, connectivity=26)
            start = time.perf_counter()
            ev.evaluate(lp, lt, verbose=False)
            t_pan.append(time.perf_counter() - start)
        print(
            f"case {k:2d}: {row['n_true_lesions']} lesions, petseg {t_petseg[-1]:.3f} s", flush=True
        )
    mean_p = float(np.mean(t_petseg))
    print(f"\n{args.cases} cases of {SHAPE} voxels, {np.mean(lesions):.1f} true lesions on average")
    print(f"petseg evaluate_case (all metrics): {mean_p:.3f} s per case (mean)")
    if t_loop:
        mean_p_sub = float(np.mean(t_petseg[: len(t_loop)]))
        mean_l = float(np.mean(t_loop))
        print(
            f"per-component loop baseline, first {len(t_loop)} cases: {mean_l:.3f} s per case "
            f"vs petseg {mean_p_sub:.3f} s on the same cases: {mean_l / mean_p_sub:.1f}x faster, "
            "identical numbers"
        )
    if t_pan:
        print(f"panoptica (matching only, labels given): {np.mean(t_pan):.3f} s per case")
    else:
        print("panoptica not importable here: not timed")


if __name__ == "__main__":
    main()
