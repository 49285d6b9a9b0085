"""Cohort throughput of ``petseg run`` on Dask, and its scheduling overhead per study.

1. A phantom cohort (default 20 NIfTI studies, 64×128×128 voxels of 4 mm, 1–3 hot spheres
   each on a noisy SUV 1 background) goes through the fixed-threshold pipeline (SUV 4)
   in this process (baseline, no Dask), then on a LocalCluster with 1 and 2 worker
   processes. Printed: studies per minute and the ratios 2 workers / 1 worker and
   N workers / in-process. The time a local cluster needs to start (and import petseg
   in each worker) is printed separately: it is part of every run's wall time.
2. Overhead: a trivial pipeline (writes one small file) over 20 and 200 studies with
   1 worker; the per-study overhead is (T200 − T20) / 180, which cancels the cluster's
   start-up; the same difference in-process is the baseline.

3. Real data (``--part sarcoma``): ``petseg run`` over the 34 real sarcoma DICOM studies
   of ``../shared/data/sts-pet`` in this process (fixed threshold SUV 2.5, RTSTRUCT and
   MIP included): studies per minute of wall time and of CPU time (steadier where other
   jobs share the machine). Run it with two checkouts' ``src`` on
   ``PYTHONPATH`` (before and after a change) and compare the two rates.

Run: ``python benchmarks/cohort_throughput.py [--part phantom|sarcoma|all]
[--studies 20] [--overhead-studies 200]``.
Wall-clock figures depend on the machine and its load: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from petseg.cohort import SegmentPipeline, run_cohort
from petseg.io.nifti import write_nifti
from petseg.lesions import PatientStats
from petseg.pipeline import SegmentParams
from petseg.study import Geometry


def write_phantom_cohort(root: Path, n: int, shape: tuple[int, int, int]) -> Path:
    geometry = Geometry.from_spacing(shape, (4.0, 4.0, 4.0))
    k, j, i = np.indices(shape)
    for case in range(n):
        rng = np.random.default_rng(case)
        pet = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        for s in range(case % 3 + 1):
            centre = rng.integers(6, np.array(shape) - 6)
            ball = (k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= 9
            pet[ball] = 5.0 + 2.0 * s
        folder = root / f"case_{case:03d}"
        folder.mkdir(parents=True)
        write_nifti(folder / "pet.nii.gz", pet, geometry)
    return root


@dataclass(frozen=True)
class TrivialPipeline:
    """Writes one small file per study: what remains is petseg run's own cost (hashing the
    inputs, the atomic folder and record, the log, Dask's scheduling)."""

    def parameters(self) -> dict[str, Any]:
        return {"pipeline": "trivial"}

    def run(self, study: Any, out_dir: Path) -> PatientStats:
        (out_dir / "ok.txt").write_text(study.id, encoding="utf-8")
        return PatientStats(0, 0.0, float("nan"), float("nan"), 0.0)


def timed_run(cohort: Path, out: Path, pipeline: Any, workers: int) -> float:
    start = time.perf_counter()
    result = run_cohort(cohort, out, pipeline, workers=workers, progress=False)
    seconds = time.perf_counter() - start
    if result.counts["done"] != len(result.rows):
        raise RuntimeError(f"not every study finished: {result.counts}")
    return seconds


def cluster_startup(workers: int) -> float:
    """Seconds to start a local cluster like run_cohort's and import the pipeline in it."""
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: __import__("petseg.workflows") and __import__("petseg.mip"))
        return time.perf_counter() - start


STS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sts-pet"


def bench_sarcoma() -> None:
    studies = sorted(p for p in STS.glob("STS_*") if p.is_dir())
    if not studies:
        raise SystemExit(f"no sarcoma studies at {STS}")
    pipeline = SegmentPipeline(SegmentParams(method="fixed", threshold=2.5))
    with tempfile.TemporaryDirectory(prefix="petseg-bench-") as tmp_name:
        cohort = Path(tmp_name) / "cohort"
        cohort.mkdir()
        for study in studies:
            (cohort / study.name).symlink_to(study.resolve())
        cpu = time.process_time()
        seconds = timed_run(cohort, Path(tmp_name) / "out", pipeline, 0)
        cpu = time.process_time() - cpu
    print(
        f"petseg run, {len(studies)} real sarcoma DICOM studies in-process, fixed SUV 2.5, "
        f"RTSTRUCT + MIP: {seconds:.1f} s, {len(studies) / seconds * 60:.1f} studies/min; "
        f"CPU time {cpu:.1f} s ({len(studies) / cpu * 60:.1f} studies per CPU-minute, the "
        "figure to compare on a loaded machine)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("phantom", "sarcoma", "all"), default="phantom")
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--overhead-studies", type=int, default=200)
    parser.add_argument("--shape", default="64,128,128", help="Z,Y,X voxels of each study")
    args = parser.parse_args()
    if args.part in ("sarcoma", "all"):
        bench_sarcoma()
    if args.part in ("phantom", "all"):
        bench_phantom(args)


def bench_phantom(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="petseg-bench-") as tmp_name:
        tmp = Path(tmp_name)
        n = args.studies
        shape = tuple(int(v) for v in args.shape.split(","))
        cohort = write_phantom_cohort(tmp / "cohort", n, shape)  # type: ignore[arg-type]
        pipeline = SegmentPipeline(SegmentParams(method="fixed", threshold=4.0))
        print("Cluster start-up (LocalCluster + importing the pipeline in each worker):")
        for workers in (1, 2):
            print(f"  {workers} worker(s): {cluster_startup(workers):5.2f} s")
        print(f"Throughput: {n} phantom studies {args.shape} voxels of 4 mm, fixed threshold SUV 4")
        per_min = {}
        for label, workers in (("in-process", 0), ("1 worker", 1), ("2 workers", 2)):
            seconds = timed_run(cohort, tmp / f"out-{workers}", pipeline, workers)
            per_min[workers] = n / seconds * 60
            print(f"  {label:10s}: {seconds:6.2f} s  {per_min[workers]:6.1f} studies/min")
        print(f"  scaling 2 workers / 1 worker: {per_min[2] / per_min[1]:.2f}x")
        print(f"  2 workers / in-process baseline: {per_min[2] / per_min[0]:.2f}x")

        small, large = 20, args.overhead_studies
        trivial = TrivialPipeline()
        print(f"Scheduling overhead: trivial pipeline, (T{large} - T{small}) / {large - small}")
        cohorts = {
            m: write_phantom_cohort(tmp / f"trivial-{m}", m, (16, 16, 16)) for m in (small, large)
        }
        per_study = {}
        for label, workers in (("in-process", 0), ("1 worker", 1)):
            t = {
                m: timed_run(cohorts[m], tmp / f"t-{m}-{workers}", trivial, workers)
                for m in cohorts
            }
            per_study[workers] = (t[large] - t[small]) / (large - small)
            print(
                f"  {label:10s}: T{small} {t[small]:5.2f} s, T{large} {t[large]:5.2f} s -> "
                f"{1000 * per_study[workers]:5.1f} ms per study"
            )
        print(
            f"  Dask scheduling overhead: {1000 * (per_study[1] - per_study[0]):.1f} ms per study "
            f"(Dask / in-process: {per_study[1] / per_study[0]:.2f}x); target < 50 ms"
        )


if __name__ == "__main__":
    main()
