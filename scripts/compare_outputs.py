"""Run the main job on fixed inputs and compare every number it writes with a saved folder.

Cases: ``petseg demo`` (phantom seed 7) and ``petseg segment`` on three real sarcoma
studies of ``../shared/data/sts-pet`` (STS_001: HFS with CT; STS_004: FFS; STS_007: HFS,
explicit VR), each with a fixed threshold (SUV 2.5) and with a liver-formula sphere
(``--method liver --ref-sphere K,J,I,10 --ref-units voxel`` at the centre of the crop).

Compared, for every case folder: every number and string of each ``report.json`` and
``summary.json`` (run-specific keys such as ``created_utc``, ``result_id`` and
``elapsed_s`` left out; output paths made relative), every cell of each ``*.csv``, every
voxel and the affine of each ``*.nii.gz``, and the ROI names and contour points of
``rtstruct.dcm``. Numbers must be identical (floats compared exactly); a key the
baseline lacks is new information, listed as "(added)" without failing. ``mip.png`` is
a picture, listed only when it differs.

Run:
    python scripts/compare_outputs.py OUT                       # write outputs to OUT
    python scripts/compare_outputs.py OUT --baseline BASELINE   # ... and compare

The commands run with this checkout's ``src`` first on ``PYTHONPATH``; the exit status is 1
when any number differs.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sts-pet"
STUDIES = ("STS_001", "STS_004", "STS_007")
RUN_SPECIFIC_KEYS = {"created_utc", "result_id", "elapsed_s", "seconds", "petseg_version"}


def petseg(*args: str) -> None:
    env = dict(
        os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore"
    )
    subprocess.run([sys.executable, "-m", "petseg", *args], check=True, env=env)


def centre_voxel(pet_dir: Path) -> tuple[int, int, int]:
    files = sorted(pet_dir.glob("*.dcm"))
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    return len(files) // 2, int(header.Rows) // 2, int(header.Columns) // 2


def produce(out: Path) -> None:
    """Write every case folder under ``out``."""
    out.mkdir(parents=True, exist_ok=False)
    petseg("demo", "--out", str(out / "demo"))
    for name in STUDIES:
        study = DATA / name
        k, j, i = centre_voxel(study / "pet")
        petseg("segment", str(study), "--threshold", "2.5", "--out", str(out / f"{name}-fixed"))
        petseg(
            "segment",
            str(study),
            "--method",
            "liver",
            "--ref-sphere",
            f"{k},{j},{i},10",
            "--ref-units",
            "voxel",
            "--out",
            str(out / f"{name}-liver"),
        )


def json_leaves(value: Any, path: str, root: str) -> dict[str, Any]:
    """Flatten a JSON value into ``{path: leaf}``; strings holding ``root`` made relative."""
    if isinstance(value, dict):
        leaves: dict[str, Any] = {}
        for key, item in value.items():
            if key not in RUN_SPECIFIC_KEYS:
                leaves.update(json_leaves(item, f"{path}.{key}", root))
        return leaves
    if isinstance(value, list):
        leaves = {}
        for index, item in enumerate(value):
            leaves.update(json_leaves(item, f"{path}[{index}]", root))
        return leaves
    if isinstance(value, str):
        return {path: value.replace(root, "<out>")}
    return {path: value}


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def compare_json(new: Path, old: Path, new_root: Path, old_root: Path) -> list[str]:
    a = json_leaves(json.loads(new.read_text()), "", str(new_root))
    b = json_leaves(json.loads(old.read_text()), "", str(old_root))
    for key in sorted(a.keys() - b.keys()):
        print(f"  (added)  {new.relative_to(new_root)} {key} = {a[key]!r}")
    diffs = [f"{key}: missing in new" for key in sorted(b.keys() - a.keys())]
    diffs += [
        f"{key}: {a[key]!r} != {b[key]!r}"
        for key in sorted(a.keys() & b.keys())
        if not same(a[key], b[key])
    ]
    return diffs


def compare_csv(new: Path, old: Path) -> list[str]:
    with new.open(newline="") as f:
        a = list(csv.reader(f))
    with old.open(newline="") as f:
        b = list(csv.reader(f))
    if len(a) != len(b):
        return [f"{len(a)} rows != {len(b)} rows"]
    return [f"row {r}: {x} != {y}" for r, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]


def compare_nifti(new: Path, old: Path) -> list[str]:
    a, b = nib.load(new), nib.load(old)
    diffs = []
    if not np.array_equal(a.affine, b.affine):
        diffs.append(f"affine {a.affine.tolist()} != {b.affine.tolist()}")
    x, y = np.asanyarray(a.dataobj), np.asanyarray(b.dataobj)
    if x.shape != y.shape or x.dtype != y.dtype:
        diffs.append(f"array {x.shape} {x.dtype} != {y.shape} {y.dtype}")
    elif not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
        diffs.append(f"{int(np.count_nonzero(x != y))} voxels differ")
    return diffs


def rtstruct_numbers(path: Path) -> dict[str, list[np.ndarray]]:
    ds = pydicom.dcmread(path)
    names = {roi.ROINumber: roi.ROIName for roi in ds.StructureSetROISequence}
    contours: dict[str, list[np.ndarray]] = {}
    for roi in ds.ROIContourSequence:
        points = [
            np.asarray(c.ContourData, dtype=float) for c in getattr(roi, "ContourSequence", [])
        ]
        contours[names[roi.ReferencedROINumber]] = sorted(points, key=lambda p: p.tolist())
    return contours


def compare_rtstruct(new: Path, old: Path) -> list[str]:
    a, b = rtstruct_numbers(new), rtstruct_numbers(old)
    if a.keys() != b.keys():
        return [f"ROIs {sorted(a)} != {sorted(b)}"]
    diffs = []
    for name in sorted(a):
        if len(a[name]) != len(b[name]):
            diffs.append(f"{name}: {len(a[name])} contours != {len(b[name])}")
        elif any(
            p.shape != q.shape or not np.array_equal(p, q)
            for p, q in zip(a[name], b[name], strict=True)
        ):
            diffs.append(f"{name}: contour points differ")
    return diffs


def compare(new_root: Path, old_root: Path) -> int:
    """Print every difference between two output trees; return how many files differ."""
    differing = 0
    for old in sorted(p for p in old_root.rglob("*") if p.is_file()):
        rel = old.relative_to(old_root)
        new = new_root / rel
        if rel.name.startswith(".") or rel == Path("README.txt"):
            continue
        if not new.exists():
            diffs = ["missing in new"]
        elif rel.suffix == ".json":
            diffs = compare_json(new, old, new_root, old_root)
        elif rel.suffix == ".csv":
            diffs = compare_csv(new, old)
        elif rel.name.endswith(".nii.gz"):
            diffs = compare_nifti(new, old)
        elif rel.suffix == ".dcm":
            diffs = compare_rtstruct(new, old)
        else:
            if new.read_bytes() != old.read_bytes():
                print(f"  (picture) {rel}: bytes differ")
            continue
        status = "DIFFERS" if diffs else "same"
        print(f"{status:8s}{rel}")
        for line in diffs[:20]:
            print(f"          {line}")
        differing += bool(diffs)
    return differing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output folder (must not exist)")
    parser.add_argument("--baseline", type=Path, help="saved output folder to compare with")
    args = parser.parse_args(argv)
    produce(args.out)
    if args.baseline is None:
        return 0
    differing = compare(args.out, args.baseline)
    print(f"{differing} file(s) differ from {args.baseline}")
    return int(differing > 0)


if __name__ == "__main__":
    sys.exit(main())
