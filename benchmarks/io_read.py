"""DICOM read time for the 34 real sarcoma PET studies (and their RTSTRUCT GTVs).

Measures, in one run:

* ``load_study`` (discovery + reading + SUV) for every study, against a baseline that
  only decodes the same files with pydicom (``dcmread`` + ``pixel_array``), so the ratio
  is petseg's overhead over bare decoding;
* ``read_rtstruct`` with contour data parsed from raw bytes, against pydicom's per-value
  ``ContourData`` conversion followed by the same rasterisation.

Run: ``python benchmarks/io_read.py`` (needs ``../shared/data`` beside the repo).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pydicom

from petseg.io import load_study, read_rtstruct
from petseg.io.rtstruct import rasterise_contours

STS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sts-pet"


def _baseline_decode(folder: Path) -> int:
    total = 0
    for path in sorted((folder / "pet").iterdir()):
        total += int(pydicom.dcmread(path).pixel_array.size)
    return total


def _baseline_rtstruct(path: Path, geometry) -> int:  # type: ignore[no-untyped-def]
    ds = pydicom.dcmread(path)
    contours = [
        np.asarray([float(v) for v in c.ContourData]).reshape(-1, 3)
        for item in ds.ROIContourSequence
        for c in item.ContourSequence
    ]
    return int(rasterise_contours(contours, geometry).sum())


def main() -> None:
    patients = sorted(p for p in STS.glob("STS_*") if p.is_dir())
    if not patients:
        raise SystemExit(f"no data at {STS}")
    t_load = t_base = t_rt = t_rt_base = 0.0
    slices = 0
    for folder in patients:
        start = time.perf_counter()
        study = load_study(folder)
        t_load += time.perf_counter() - start
        slices += study.geometry.shape[0]
        start = time.perf_counter()
        _baseline_decode(folder)
        t_base += time.perf_counter() - start
        start = time.perf_counter()
        fast = int(read_rtstruct(folder / "pet-rtstruct.dcm", study.geometry)["GTV_Mass_PET"].sum())
        t_rt += time.perf_counter() - start
        start = time.perf_counter()
        slow = _baseline_rtstruct(folder / "pet-rtstruct.dcm", study.geometry)
        t_rt_base += time.perf_counter() - start
        assert fast == slow
    print(f"{len(patients)} studies, {slices} PET slices (STS_001/002 include CT resampling)")
    print(f"load_study total        {t_load:7.2f} s  ({1000 * t_load / slices:.2f} ms/slice)")
    print(
        f"baseline pydicom decode {t_base:7.2f} s  ratio load_study/baseline = {t_load / t_base:.2f}"
    )
    print(f"read_rtstruct total     {t_rt:7.2f} s")
    print(
        f"baseline DS parsing     {t_rt_base:7.2f} s  ratio baseline/read_rtstruct = {t_rt_base / t_rt:.2f}"
    )


if __name__ == "__main__":
    main()
