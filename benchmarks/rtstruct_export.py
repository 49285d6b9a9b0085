"""Benchmark: RT Structure Set and SEG export of a whole-body DICOM study.

Input: a whole body made by ``petseg phantom --dicom`` at 1.9 x 2.1 x 2.1 mm (505 PET
slices of 171 x 267, vertex to thighs; seed 8: 32 lesions), the truth lesion
map as the map to export, and the PET series headers as ``load_study`` keeps them
(``Study.dicom``), so no time goes to reading files. Times, best of 3, in one run:

* the floor: contour extraction alone (``petseg.contours.label_contours``);
* ``build_rtstruct`` (contours + the DICOM dataset), and saving it;
* ``build_seg`` (highdicom), and saving it;
* with ``--baseline-src DIR``: the same builds by the petseg source tree ``DIR`` (e.g.
  a checkout of an older commit), interleaved with this tree's in subprocesses on the
  same files, and the ratio old / new;
* with ``--rt-utils``: rt-utils (``RTStructBuilder.create_new`` + ``add_roi`` per
  lesion + ``save``), an independent OpenCV-based writer.

The RTSTRUCT is read back with ``read_rtstruct`` and must give every lesion exactly.

Run: ``python benchmarks/rtstruct_export.py [--case DIR] [--baseline-src DIR] [--rt-utils]``
(``--case``: an existing phantom case folder with ``lesions.nii.gz`` and ``dicom/pet``;
without it one is generated into a temporary folder, about a minute).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from petseg.cli import main as petseg_main
from petseg.contours import label_contours
from petseg.io.export import build_rtstruct, build_seg, read_reference_series
from petseg.io.nifti import read_nifti
from petseg.io.rtstruct import read_rtstruct

SPACING = "1.9,2.1,2.1"
SEED = 8  # 32 lesions (a median patient of Carlsen et al. 2022 has 25)
REPEATS = 3
SRC = Path(__file__).resolve().parents[1] / "src"

#: Run in a subprocess with PYTHONPATH set to a petseg source tree: best-of-N build times.
BUILD_TIMES = """
import io, json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from petseg.io.nifti import read_nifti
try:
    from petseg.io.export import build_rtstruct, build_seg, read_reference_series
except ImportError:  # petseg before the petseg.io.export package
    from petseg.io.rtstruct_export import build_rtstruct, read_reference_series
    from petseg.io.seg import build_seg
case, repeats = sys.argv[1], int(sys.argv[2])
labels, geometry = read_nifti(case + "/lesions.nii.gz")
reference = read_reference_series(case + "/dicom/pet")
times = {}
for build in (build_rtstruct, build_seg):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        build(labels.astype(np.int32), geometry, reference)
        best = min(best, time.perf_counter() - start)
    times[build.__name__] = best
print(json.dumps(times))
"""


def best_of(function: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, Any]:
    """Shortest wall time of ``repeats`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def make_case(folder: Path) -> Path:
    """Write the phantom whole body with ``petseg phantom --dicom``; return its case folder."""
    argv = ["phantom", "--out", str(folder / "wb"), "--n", "1", "--seed", str(SEED)]
    petseg_main([*argv, "--spacing", SPACING, "--dicom"])
    return folder / "wb" / "phantom_0000"


def subprocess_times(case: Path, src: Path) -> dict[str, float]:
    """Best-of build times by the petseg source tree ``src`` (one torch-free process)."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-c", BUILD_TIMES, str(case), str(REPEATS)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def save_time(ds: Any) -> float:
    """Best-of time to encode ``ds`` as a DICOM file in memory."""
    return best_of(lambda: ds.save_as(io.BytesIO(), enforce_file_format=True))[0]


def rt_utils_time(case: Path, labels: np.ndarray, out: Path) -> float | None:
    """rt-utils writing the same lesions, or None when it is not installed."""
    try:
        from rt_utils import RTStructBuilder
    except ImportError:
        return None
    start = time.perf_counter()
    rtstruct = RTStructBuilder.create_new(dicom_series_path=str(case / "dicom" / "pet"))
    stack = np.transpose(labels, (1, 2, 0))  # rt-utils masks are (rows, cols, slices)
    for n in np.unique(labels[labels > 0]):
        rtstruct.add_roi(mask=stack == n, name=f"lesion_{n:03d}")
    rtstruct.save(str(out))
    return time.perf_counter() - start


def report(case: Path, baseline_src: Path | None, rt_utils: bool, scratch: Path) -> None:
    labels, geometry = read_nifti(case / "lesions.nii.gz")
    labels = labels.astype(np.int32)
    t_read, reference = best_of(lambda: read_reference_series(case / "dicom" / "pet"), 1)
    n = len(np.unique(labels[labels > 0]))
    print(f"case {case.name}: {labels.shape} grid, {n} lesions; reading the headers {t_read:.2f} s")
    t_floor, contours = best_of(lambda: label_contours(labels, reference.geometry))
    n_contours = sum(len(c) for c in contours.values())
    t_rt, ds = best_of(lambda: build_rtstruct(labels, geometry, reference))
    t_seg, seg = best_of(lambda: build_seg(labels, geometry, reference))
    print(f"floor: contour extraction alone   {t_floor:6.2f} s ({n_contours} contours)")
    print(
        f"build_rtstruct                    {t_rt:6.2f} s  ratio to the floor {t_rt / t_floor:.2f}"
    )
    print(f"  save (pydicom encode)           {save_time(ds):6.2f} s")
    print(f"build_seg (highdicom)             {t_seg:6.2f} s")
    print(f"  save (pydicom encode)           {save_time(seg):6.2f} s")
    ds.save_as(scratch / "rs.dcm", enforce_file_format=True)
    back = read_rtstruct(scratch / "rs.dcm", reference.geometry)
    exact = all(np.array_equal(back[f"lesion_{v:03d}"], labels == v) for v in contours)
    print(f"re-import with read_rtstruct exact: {exact}")
    if baseline_src is not None:
        old, new = {}, {}
        for _ in range(2):  # interleaved, so a change in machine load hits both
            for times, src in ((old, baseline_src), (new, SRC)):
                for key, value in subprocess_times(case, src).items():
                    times[key] = min(times.get(key, float("inf")), value)
        for key in old:
            print(
                f"{key}: baseline {baseline_src} {old[key]:.2f} s, this tree {new[key]:.2f} s, "
                f"ratio {old[key] / new[key]:.1f}x"
            )
    if rt_utils:
        t_rtu = rt_utils_time(case, labels, scratch / "rs_rtutils.dcm")
        if t_rtu is None:
            print("rt-utils not installed: no rt-utils ratio")
        else:
            write = t_rt + save_time(ds)
            print(f"rt-utils create_new + add_roi + save {t_rtu:.2f} s; ratio {t_rtu / write:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=Path, help="phantom case folder (default: generate)")
    parser.add_argument("--baseline-src", type=Path, help="another petseg src/ to compare")
    parser.add_argument("--rt-utils", action="store_true", help="also time rt-utils")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        case = args.case or make_case(Path(tmp))
        report(case, args.baseline_src, args.rt_utils, Path(tmp))


if __name__ == "__main__":
    main()
