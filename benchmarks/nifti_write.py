"""NIfTI output: gzip library and level, and writing a case folder's volumes in turn or at once.

Input: a whole-body phantom at 1.9 x 2 x 3 mm (505 slices of 180 x 187 voxels): its PET
(SUV, float32), CT (HU, float32) and lesion labels (int32), the three volumes
``petseg segment`` writes. Printed:

1. each volume's write time and size with nibabel's own writer (zlib level 1, the
   baseline), then with ``write_nifti`` at ISA-L levels 0-3, and the time ratio of the
   baseline to each level (petseg writes ISA-L level ``NIFTI_COMPRESSLEVEL``);
2. the three volumes written one after another and by two threads at once (zlib works
   without the GIL), and the ratio.

Run: ``python benchmarks/nifti_write.py [--repeats 3]``. Wall-clock figures depend on the
machine and its load: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np

from petseg.io.nifti import NIFTI_COMPRESSLEVEL, write_nifti
from petseg.phantom import generate_study
from petseg.study import Geometry

LEVELS = (0, 1, 2, 3)


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of N (default 3)")
    args = parser.parse_args(argv)
    case = generate_study(3, spacing=(1.9, 2.0, 3.0))
    geometry: Geometry = case.study.geometry
    assert case.study.ct is not None
    volumes = {
        "pet_suv": case.study.pet,
        "ct": case.study.ct,
        "lesions": case.lesions.astype(np.int32),
    }
    print(f"volumes of {geometry.shape} voxels, best of {args.repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        totals = {}

        images = {}  # the same images, in memory, for nibabel's own writer (untimed)
        for name, array in volumes.items():
            plain = folder / f"{name}.nii"
            write_nifti(plain, array, geometry, force=True)
            loaded = nib.load(plain)
            images[name] = nib.Nifti1Image(np.asanyarray(loaded.dataobj), None, loaded.header)

        for level in ("zlib", *LEVELS):
            total = 0.0
            for name, array in volumes.items():
                path = folder / f"{name}-{level}.nii.gz"

                def write(path=path, array=array, level=level, name=name) -> None:
                    if level == "zlib":
                        nib.save(images[name], path)
                    else:
                        write_nifti(path, array, geometry, force=True, compresslevel=level)

                seconds = best_of(args.repeats, write)
                total += seconds
                size = path.stat().st_size / 1e6
                print(f"{level!s:>5}  {name:8s} {seconds:6.2f} s  {size:7.1f} MB")
            totals[level] = total
        print(f"nibabel's writer, zlib level 1: {totals['zlib']:.2f} s")
        for level in LEVELS:
            mark = "  <- petseg" if level == NIFTI_COMPRESSLEVEL else ""
            print(
                f"ISA-L level {level}: {totals[level]:.2f} s, "
                f"zlib baseline / this {totals['zlib'] / totals[level]:.2f}{mark}"
            )

        def serial() -> None:
            for name, array in volumes.items():
                write_nifti(folder / f"{name}.nii.gz", array, geometry, force=True)

        def threads() -> None:
            with ThreadPoolExecutor(max_workers=2) as pool:
                futures = [
                    pool.submit(write_nifti, folder / f"{n}.nii.gz", a, geometry, True)
                    for n, a in volumes.items()
                ]
                for future in futures:
                    future.result()

        one = best_of(args.repeats, serial)
        two = best_of(args.repeats, threads)
        print(
            f"three volumes one after another {one:.2f} s, two threads {two:.2f} s, "
            f"ratio {one / two:.2f}"
        )


if __name__ == "__main__":
    main()
