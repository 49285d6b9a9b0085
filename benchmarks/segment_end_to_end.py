"""``petseg segment`` end to end against its floor, on a whole-body DICOM study and a real one.

Inputs:

* a whole-body phantom written by ``petseg phantom --dicom`` at 1.9 x 2 x 3 mm
  (505 PET slices of 180 x 187 voxels, and its CT), made in a temporary folder unless
  ``--phantom DICOM_FOLDER`` gives one already written;
* the real sarcoma study ``../shared/data/sts-pet/STS_013`` (114 PET slices).

For each, in one run:

* **end to end**: the ``petseg segment`` command in a fresh process (imports included),
  with a fixed threshold (SUV 3) and with the liver formula on a sphere (the phantom's
  liver reference; the centre of the sarcoma crop), RTSTRUCT and MIP included;
* **floor**: bare pydicom decode of the same files (``dcmread`` + ``pixel_array``), plus
  the threshold pipeline alone (``segment_study``, fixed threshold) on the loaded study;
* **stages** in this process: ``load_study``, ``segment_study`` (and its body contour),
  the NIfTI volumes, the MIP, the RTSTRUCT, the whole case folder.

Printed: each stage's wall time and CPU time (this process and its children; steadier
than wall time where other jobs share the machine), each as a ratio to the floor's. Run:
``python benchmarks/segment_end_to_end.py [--phantom FOLDER]``. Wall-clock figures depend on
the machine and its load: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom

from petseg.body import body_mask
from petseg.io import load_study
from petseg.io.export import export_lesions_for_study
from petseg.io.nifti import write_nifti
from petseg.mip import render_mip
from petseg.pipeline import SegmentParams, segment_study
from petseg.report import write_segmentation_outputs

ROOT = Path(__file__).resolve().parents[1]
PETSEG = (sys.executable, "-m", "petseg")
PHANTOM_OPTIONS = ("--n", "1", "--seed", "3", "--spacing", "1.9,2,3", "--dicom", "--no-progress")
STS = ROOT.parent / "shared" / "data" / "sts-pet" / "STS_013"


def timed(run: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    """``((wall s, CPU s), value)``; CPU time of this process and of finished children."""
    start, cpu = time.perf_counter(), _cpu()
    value = run()
    return (time.perf_counter() - start, _cpu() - cpu), value


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def bare_decode(folder: Path) -> int:
    """Decode every DICOM file under ``folder`` with pydicom; return the voxel count."""
    return sum(
        int(pydicom.dcmread(path).pixel_array.size)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.suffix in ("", ".dcm") and path.name != "pet-rtstruct.dcm"
    )


def petseg_segment(study: Path, out: Path, *method: str) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PYTHONWARNINGS="ignore")
    command = [*PETSEG, "segment", str(study), "--out", str(out)]
    seconds, _ = timed(
        lambda: subprocess.run([*command, *method], check=True, env=env, capture_output=True)
    )
    return seconds


def make_phantom(root: Path) -> Path:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    subprocess.run(
        [*PETSEG, "phantom", "--out", str(root / "ds"), *PHANTOM_OPTIONS],
        check=True,
        env=env,
        capture_output=True,
    )
    return root / "ds" / "phantom_0000" / "dicom"


def liver_sphere(study_dir: Path, study: Any) -> list[str]:
    truth = study_dir.parent / "truth.json"
    if truth.is_file():
        x, y, z = json.loads(truth.read_text())["reference"]["liver"]["centre_mm"]
        return ["--method", "liver", "--ref-sphere", f"{x},{y},{z},15"]
    k, j, i = (n // 2 for n in study.geometry.shape)
    return ["--method", "liver", "--ref-sphere", f"{k},{j},{i},10", "--ref-units", "voxel"]


def stages(study_dir: Path, tmp: Path) -> list[tuple[str, tuple[float, float]]]:
    """Each stage's time in this process, the floor first."""
    decode, _ = timed(lambda: bare_decode(study_dir))
    load, study = timed(lambda: load_study(study_dir))
    params = SegmentParams(method="fixed", threshold=3.0)
    pipeline, result = timed(lambda: segment_study(study, params))
    body, _ = timed(lambda: body_mask(study.pet, study.geometry))
    volumes = [("pet", study.pet), ("labels", result.labels)]
    volumes += [("ct", study.ct)] if study.ct is not None else []
    nifti, _ = timed(
        lambda: [write_nifti(tmp / f"{n}.nii.gz", a, study.geometry) for n, a in volumes]
    )
    mip, _ = timed(lambda: render_mip(tmp / "mip.png", study.pet, result.labels, study.geometry))
    rtstruct, _ = timed(lambda: export_lesions_for_study(tmp / "rt", result.labels, study))
    folder, _ = timed(lambda: write_segmentation_outputs(tmp / "case", study, result))
    fixed = petseg_segment(study_dir, tmp / "fixed", "--threshold", "3")
    liver = petseg_segment(study_dir, tmp / "liver", *liver_sphere(study_dir, study))
    floor = (decode[0] + pipeline[0], decode[1] + pipeline[1])
    return [
        ("floor: bare pydicom decode + segment_study", floor),
        ("  bare pydicom decode (PET and CT files)", decode),
        ("  segment_study (fixed threshold)", pipeline),
        ("load_study", load),
        ("  body_mask (inside segment_study)", body),
        (f"NIfTI volumes ({len(volumes)}, one after another)", nifti),
        ("MIP", mip),
        ("RTSTRUCT", rtstruct),
        ("case folder (write_segmentation_outputs)", folder),
        ("petseg segment, fixed threshold (end to end)", fixed),
        ("petseg segment, liver sphere (end to end)", liver),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phantom", type=Path, help="DICOM folder of a whole-body phantom")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        phantom = args.phantom or make_phantom(root)
        for name, study_dir in (("whole-body phantom", phantom), ("sarcoma STS_013", STS)):
            work = root / name.split()[-1]
            work.mkdir()
            rows = stages(study_dir, work)
            (floor, floor_cpu) = rows[0][1]
            print(f"\n{name}: {study_dir}")
            print(f"  {'':48s} {'wall':>8s}  {'x floor':>7s}  {'CPU':>8s}  {'x floor':>7s}")
            for label, (wall, cpu) in rows:
                print(
                    f"  {label:48s} {wall:7.2f}s  {wall / floor:7.2f}  {cpu:7.2f}s  "
                    f"{cpu / floor_cpu:7.2f}"
                )


if __name__ == "__main__":
    main()
