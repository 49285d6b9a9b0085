"""DICOM read time: ``load_study`` against bare pydicom decoding of the same files.

Measures, in one run:

* ``load_study`` (one pass over the files: reading, sorting, decoding, SUV, CT
  resampling) on the 34 real sarcoma studies and on a whole-body phantom study written
  by ``petseg phantom --dicom`` (1.8 x 2 x 2 mm, 533 slices of 280 x 180, PET and CT),
  against a baseline that only decodes the same files with pydicom (``dcmread`` +
  ``pixel_array``): the ratio is petseg's overhead over bare decoding;
* ``read_series`` of the whole-body PET with 1, 2 and 4 decoding threads;
* ``read_rtstruct`` with contour data parsed from raw bytes, against pydicom's per-value
  ``ContourData`` conversion followed by the same rasterisation.

Each timing is the best of ``--repeats`` runs, baseline and petseg alternating, so both
see the same machine load.

Run: ``python benchmarks/io_read.py [--wholebody CASE_DIR] [--repeats 3]`` (needs
``../shared/data`` beside the repo; without ``--wholebody`` the phantom is generated
in a temporary folder first, which takes a few minutes).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom

from petseg.io import load_study, read_rtstruct
from petseg.io.dicom import read_series, scan_folder
from petseg.io.rtstruct import rasterise_contours

STS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sts-pet"
WHOLE_BODY_SPACING = (1.8, 2.0, 2.0)


def _best(repeats: int, function: Callable[..., object], *args: object, **kwargs: object) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times)


def _baseline_decode(files: list[Path]) -> int:
    return sum(int(pydicom.dcmread(path).pixel_array.size) for path in files)


def _dicom_files(folder: Path) -> list[Path]:
    """The PET and CT files load_study reads from ``folder``."""
    return sorted(
        path
        for series in scan_folder(folder, pixels=False).series
        if series.modality in {"PT", "CT"}
        for path in series.files
    )


def _baseline_rtstruct(path: Path, geometry) -> int:  # type: ignore[no-untyped-def]
    ds = pydicom.dcmread(path)
    contours = [
        np.asarray([float(v) for v in c.ContourData]).reshape(-1, 3)
        for item in ds.ROIContourSequence
        for c in item.ContourSequence
    ]
    return int(rasterise_contours(contours, geometry).sum())


def _sarcoma(repeats: int) -> None:
    patients = sorted(p for p in STS.glob("STS_*") if p.is_dir())
    if not patients:
        raise SystemExit(f"no data at {STS}")
    t_load = t_base = t_rt = t_rt_base = 0.0
    slices = 0
    for folder in patients:
        files = _dicom_files(folder)
        slices += len(files)
        t_base += _best(repeats, _baseline_decode, files)
        t_load += _best(repeats, load_study, folder)
        geometry = load_study(folder).geometry
        rtstruct = folder / "pet-rtstruct.dcm"
        t_rt += _best(repeats, read_rtstruct, rtstruct, geometry)
        t_rt_base += _best(repeats, _baseline_rtstruct, rtstruct, geometry)
        fast = int(read_rtstruct(rtstruct, geometry)["GTV_Mass_PET"].sum())
        assert fast == _baseline_rtstruct(rtstruct, geometry)
    print(f"sarcoma: {len(patients)} studies, {slices} PET+CT files (STS_001/002 have CT)")
    print(f"  load_study              {t_load:7.2f} s  ({1000 * t_load / slices:.2f} ms/file)")
    print(
        f"  bare pydicom decode     {t_base:7.2f} s  ratio load_study/bare = {t_load / t_base:.2f}"
    )
    print(f"  read_rtstruct           {t_rt:7.2f} s")
    print(f"  pydicom ContourData     {t_rt_base:7.2f} s  ratio = {t_rt_base / t_rt:.2f}")


def _scan_and_read_pet(folder: Path, workers: int) -> None:
    (pet,) = [s for s in scan_folder(folder).series if s.modality == "PT"]
    read_series(pet, workers=workers)


def _whole_body(case: Path, repeats: int) -> None:
    folder = case / "dicom"
    files = _dicom_files(folder)
    t_base = _best(repeats, _baseline_decode, files)
    t_load = _best(repeats, load_study, folder)
    shape = load_study(folder).geometry.shape
    print(f"whole-body phantom {case}: PET {shape}, {len(files)} PET+CT files")
    print(f"  load_study              {t_load:7.2f} s")
    print(
        f"  bare pydicom decode     {t_base:7.2f} s  ratio load_study/bare = {t_load / t_base:.2f}"
    )
    for workers in (1, 2, 4):
        seconds = _best(repeats, _scan_and_read_pet, folder, workers)
        print(f"  scan + read_series PET, {workers} decoding thread(s): {seconds:6.2f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wholebody", type=Path, help="a `petseg phantom --dicom` case folder")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    _sarcoma(args.repeats)
    if args.wholebody is not None:
        _whole_body(args.wholebody, args.repeats)
        return
    from petseg.phantom import write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        out = write_dataset(
            Path(tmp) / "wb", n=1, seed=3, spacing=WHOLE_BODY_SPACING, dicom=True, progress=False
        )
        _whole_body(out / "phantom_0000", args.repeats)


if __name__ == "__main__":
    main()
