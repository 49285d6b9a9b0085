"""Benchmark: export a whole-body lesion map with 50 lesions to an RT Structure Set.

Target: at most 5 s on 2 cores. Writes a synthetic whole-body PET series
(326 slices of 200 x 200 voxels, 4 x 4 x 3.27 mm, 106 cm axial field) with
petseg.io.dicom_write, places 50 spherical lesions of radius 4-25 mm, and times

* petseg: ``write_rtstruct`` (read the 326 headers, contours, build, save);
* baseline, in the same run: rt-utils (``RTStructBuilder.create_new`` + ``add_roi`` per
  lesion + ``save``), an independent OpenCV-based RTSTRUCT writer, when installed.

Run: ``python benchmarks/rtstruct_export.py`` (prints the figures and the ratio).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np

from petseg.io.dicom_write import PetAcquisition, write_pet_series
from petseg.io.export import read_reference_series, write_rtstruct
from petseg.io.rtstruct import read_rtstruct
from petseg.study import Geometry

SHAPE = (326, 200, 200)
SPACING = (3.27, 4.0, 4.0)
N_LESIONS = 50
REPEATS = 3


def whole_body_lesions(seed: int = 0) -> tuple[np.ndarray, Geometry]:
    """50 non-overlapping spheres (radius 4-25 mm) inside a 36 x 24 cm elliptic body."""
    geometry = Geometry.from_spacing(SHAPE, SPACING, origin=(-398.0, -398.0, -1060.0))
    rng = np.random.default_rng(seed)
    labels = np.zeros(SHAPE, np.int32)
    dz, dy, dx = SPACING
    z, y, x = np.indices(SHAPE, dtype=np.float32)
    z *= dz
    y *= dy
    x *= dx
    placed = 0
    while placed < N_LESIONS:
        radius = float(rng.uniform(4.0, 25.0))
        centre = (
            rng.uniform(40, SHAPE[0] * dz - 40),
            400.0 + rng.uniform(-90, 90),
            400.0 + rng.uniform(-150, 150),
        )
        ball = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2
        grown = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= (
            radius + 8
        ) ** 2
        if ball.any() and not labels[grown].any():
            placed += 1
            labels[ball] = placed
    return labels, geometry


def main() -> None:
    labels, geometry = whole_body_lesions()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        suv = np.where(labels > 0, 8.0, 1.0).astype(np.float32)
        acquisition = PetAcquisition(
            weight_kg=70.0,
            dose_bq=200e6,
            injection_time=dt.datetime(2024, 1, 1, 9, 0),
            series_time=dt.datetime(2024, 1, 1, 10, 0),
        )
        write_pet_series(folder / "pet", suv, geometry, acquisition, patient_id="BENCH")
        times = []
        for repeat in range(REPEATS):
            start = time.perf_counter()
            result = write_rtstruct(folder / f"rs{repeat}.dcm", labels, geometry, folder / "pet")
            times.append(time.perf_counter() - start)
        ours = min(times)
        reference = read_reference_series(folder / "pet")
        back = read_rtstruct(result.path, reference.geometry)
        exact = all(np.array_equal(back[f"lesion_{n:03d}"], labels == n) for n in range(1, 51))
        print(
            f"petseg write_rtstruct: {N_LESIONS} lesions, {result.n_contours} contours, "
            f"{labels.shape} grid: best of {REPEATS} {ours:.2f} s "
            f"(all: {', '.join(f'{t:.2f}' for t in times)}); target <= 5 s; "
            f"re-import exact: {exact}; file {result.path.stat().st_size / 1e6:.1f} MB"
        )
        try:
            from rt_utils import RTStructBuilder
        except ImportError:
            print("baseline rt-utils not installed: no ratio")
            return
        start = time.perf_counter()
        rtstruct = RTStructBuilder.create_new(dicom_series_path=str(folder / "pet"))
        stack = np.transpose(labels, (1, 2, 0))  # rt-utils masks are (rows, cols, slices)
        for n in range(1, N_LESIONS + 1):
            rtstruct.add_roi(mask=stack == n, name=f"lesion_{n:03d}")
        rtstruct.save(str(folder / "rs_rtutils.dcm"))
        baseline = time.perf_counter() - start
        print(f"baseline rt-utils create_new + 50 add_roi + save: {baseline:.2f} s")
        print(f"ratio rt-utils / petseg: {baseline / ours:.2f}x")


if __name__ == "__main__":
    main()
