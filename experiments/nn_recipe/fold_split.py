"""Lesion sizes and counts per fold of a model folder's split (why one fold learns less).

For each fold: its validation cases, their lesion count and lesion volumes (mL), and how
lesion-centred sampling sees its training cases — the share of lesion voxels in lesions
under 1 mL (what ``foreground_sampling="voxel"`` centres on) against the share of lesions
under 1 mL (what ``"lesion"`` centres on).

Run: ``python experiments/nn_recipe/fold_split.py DATASET MODEL [--json OUT]``
(e.g. the seed-1 phantom cohort and ``src/petseg/data/demo_model``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def lesion_volumes(dataset: Path, case_id: str) -> list[float]:
    """Volumes (mL) of the connected lesions of one case."""
    from petseg.io.nifti import read_nifti
    from petseg.lesions import label_components

    label, geometry = read_nifti(dataset / case_id / "lesions.nii.gz")
    components = label_components(np.asarray(label) > 0)
    counts = np.bincount(components.ravel())[1:]
    return [float(c * geometry.voxel_volume_ml) for c in counts]


def summarise(volumes: dict[str, list[float]], ids: list[str]) -> dict[str, Any]:
    """Lesion count and sizes over a set of cases."""
    all_v = np.array([v for c in ids for v in volumes[c]], dtype=float)
    if all_v.size == 0:
        return {"cases": len(ids), "lesions": 0}
    small = all_v < 1.0
    return {
        "cases": len(ids),
        "lesions": int(all_v.size),
        "median_ml": float(np.median(all_v)),
        "total_ml": float(all_v.sum()),
        "largest_ml": float(all_v.max()),
        "lesions_under_1ml": float(small.mean()),
        "voxels_in_lesions_under_1ml": float(all_v[small].sum() / all_v.sum()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    split = json.loads((args.model / "folds.json").read_text())
    ids = sorted({c for f in split["folds"] for c in f["train"] + f["val"]})
    volumes = {c: lesion_volumes(args.dataset, c) for c in ids}
    rows = []
    for f in split["folds"]:
        rows.append(
            {
                "fold": f["fold"],
                "val": summarise(volumes, f["val"]),
                "train": summarise(volumes, f["train"]),
            }
        )
    keys = [
        "cases",
        "lesions",
        "median_ml",
        "total_ml",
        "largest_ml",
        "lesions_under_1ml",
        "voxels_in_lesions_under_1ml",
    ]
    print("| fold | part | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 2) + "|")
    for r in rows:
        for part in ("val", "train"):
            cells = [r[part].get(k, "–") for k in keys]
            text = [f"{c:.2f}" if isinstance(c, float) else str(c) for c in cells]
            print(f"| {r['fold']} | {part} | " + " | ".join(text) + " |")
    if args.json:
        args.json.write_text(json.dumps({"folds": rows, "volumes_ml": volumes}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
