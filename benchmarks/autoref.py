"""Benchmark: automatic reference VOI placement beside the threshold pipeline, one run.

Study: a synthetic whole-body PET/CT phantom on Carlsen et al.'s matrix, 336 x 336 x 300
voxels of 2 x 2 x 3 mm (``petseg.phantom.generate_study`` with a 672 mm transaxial field;
about 40 s to generate, not timed). Timed, each the median of ``--repeats`` runs:

* placement with an organ map (the phantom's liver and spleen masks given);
* placement from the CT (liver found on the CT, checked with the PET);
* placement from the PET alone (no CT);
* the threshold pipeline with the VOI given (``segment_study``: body contour, threshold,
  components, < 0.1 mL, lesion table) — the baseline.

Target: placement <= 1 s and <= 2x the pipeline, with an organ map and from
the CT. Prints wall-clock and CPU time of each and the ratio to the pipeline (all steps
run on one thread: on a shared, loaded machine the CPU time is the fairer figure).

Run:  python benchmarks/autoref.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from petseg.autoref import place_reference
from petseg.phantom import PhantomConfig, generate_study
from petseg.pipeline import SegmentParams, segment_study

CARLSEN_GRID = PhantomConfig(transaxial_fov_mm=(672.0, 672.0), axial_range_mm=(-20.0, 880.0))
SPACING = (3.0, 2.0, 2.0)


def median_seconds(run: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median wall-clock and CPU seconds of ``repeats`` runs, and the last result."""
    wall, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    case = generate_study(args.seed, spacing=SPACING, config=CARLSEN_GRID)
    study = case.study
    legend = {name: int(code) for code, name in case.truth["organ_legend"].items()}
    organs = {name: case.organs == legend[name] for name in ("liver", "spleen")}
    print(f"study: {study.pet.shape} voxels of {SPACING} mm, {case.truth['lesion_count']} lesions")

    pet, geometry = study.pet, study.geometry
    runs: dict[str, Callable[[], Any]] = {
        "placement, organ map": lambda: place_reference(pet, geometry, organ_masks=organs),
        "placement, CT": lambda: place_reference(pet, geometry, ct=study.ct),
        "placement, PET only": lambda: place_reference(pet, geometry),
    }
    timed = {name: median_seconds(run, args.repeats) for name, run in runs.items()}
    voi = timed["placement, organ map"][2].placement
    given = SegmentParams(method="liver", ref_sphere=(*voi.centre_mm, voi.radius_mm))
    wall0, cpu0, _ = median_seconds(lambda: segment_study(study, given), args.repeats)

    print(f"{'':34} {'wall s':>7} {'CPU s':>7}  CPU ratio to the pipeline")
    print(f"{'threshold pipeline (VOI given)':34} {wall0:7.2f} {cpu0:7.2f}  1.00 (baseline)")
    for name, (wall, cpu, auto) in timed.items():
        print(
            f"{name:34} {wall:7.2f} {cpu:7.2f}  {cpu / cpu0:4.2f}   "
            f"({auto.source}, {auto.organ}, confidence {auto.placement.confidence:.2f})"
        )
    for name in ("placement, organ map", "placement, CT"):
        wall, cpu, _ = timed[name]
        verdict = "meets" if cpu <= 1.0 and cpu <= 2 * cpu0 else "misses"
        print(f"{name}: {verdict} the target in CPU time (<= 1 s and <= 2x the pipeline)")


if __name__ == "__main__":
    main()
