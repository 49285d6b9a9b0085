"""Speed of the Rainio 2023 slice methods.

Part ``search``: the optimal-threshold search (0.00-0.99 grid, Dice per slice) on 880
slices of 64×64, vectorised (:func:`petseg.slices.threshold_search.dice_curves`)
against a per-slice, per-threshold Python loop (the straightforward implementation),
measured in the same run; the results must be identical.

Part ``experiment``: the whole 6-fold experiment (three methods, paper epochs, no 3D
network) on 880 slices, against the 5-minute target (the authors' notebook needs about
80 minutes). Uses the real sarcoma slices when a slice set is given (``--slices``, first
880 slices), else synthetic slices.

Part ``precision``: one U-Net epoch (paper settings, batch 32, 30 % validation) on the
first 420 real sarcoma slices (``../shared/data/sts-pet``, or ``--slices``), in float32 and in bf16
autocast, with 1 and 2 torch threads, in one run; printed with the ratio of each to
float32 on 1 thread, and whether the CPU has native bf16 (what ``--precision auto``
picks). These figures set the defaults of ``petseg slices experiment``: ``--precision
auto`` and ``--threads 2``.

    python benchmarks/slices_experiment.py --part search
    python benchmarks/slices_experiment.py --part experiment --threads 1 [--slices S.npz]
    python benchmarks/slices_experiment.py --part precision [--slices S.npz]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from petseg.slices.threshold_search import THRESHOLD_GRID, dice_curves

N_SLICES = 880
#: Slices of the precision part (the issue's measurement: 420 real sarcoma slices).
PRECISION_SLICES = 420


def _synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:64, :64]
    images = rng.gamma(2.0, 0.1, (n, 64, 64))
    masks = np.zeros((n, 64, 64), bool)
    for i in range(n):
        cy, cx, r = rng.uniform(20, 44), rng.uniform(20, 44), rng.uniform(2, 9)
        masks[i] = (y - cy) ** 2 + (x - cx) ** 2 < r**2
        images[i] += masks[i] * rng.uniform(0.5, 3.0)
        images[i] = (images[i] - images[i].min()) / np.ptp(images[i])
    return images.astype(np.float32), masks


def _loop(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    out = np.empty((len(images), len(THRESHOLD_GRID)))
    for i, (img, m) in enumerate(zip(images, masks, strict=True)):
        for k, t in enumerate(THRESHOLD_GRID):
            pred = img > t
            tp = np.count_nonzero(pred & m)  # every synthetic slice holds tumour: den > 0
            out[i, k] = 2 * tp / (np.count_nonzero(pred) + np.count_nonzero(m))
    return out


def bench_search() -> None:
    images, masks = _synthetic(N_SLICES)
    t0 = time.perf_counter()
    slow = _loop(images, masks)
    t_loop = time.perf_counter() - t0
    repeats = 5
    t0 = time.perf_counter()
    for _ in range(repeats):
        fast = dice_curves(images, masks)
    t_fast = (time.perf_counter() - t0) / repeats
    assert np.array_equal(fast, slow), "vectorised search differs from the loop"
    print(f"threshold search, {N_SLICES} slices x 100 thresholds:")
    print(f"  per-slice per-threshold loop: {t_loop:.3f} s")
    print(f"  vectorised dice_curves:      {t_fast:.4f} s")
    print(f"  speed-up: {t_loop / t_fast:.0f}x (target >= 100x)")


def bench_experiment(slices_path: str | None, threads: int) -> None:
    import torch

    from petseg.slices.build import SliceSet
    from petseg.slices.experiment import ExperimentConfig, run_experiment

    torch.set_num_threads(threads)
    if slices_path:
        from petseg.slices.store import load_slice_set

        full = load_slice_set(slices_path)
        ss = full.subset(np.arange(min(N_SLICES, len(full.images))))
    else:
        images, masks = _synthetic(N_SLICES, seed=1)
        pids = np.repeat([f"P{i:02d}" for i in range(78)], 12)[:N_SLICES]
        n = len(images)
        ss = SliceSet(images, masks, pids, np.arange(n), np.zeros((n, 4), np.int64),
                      np.tile([0.0, 1.0], (n, 1)).astype(np.float32))  # fmt: skip
    t0 = time.perf_counter()
    run_experiment(ss, ExperimentConfig(threshold3d=False), progress=print)
    seconds = time.perf_counter() - t0
    print(f"6-fold experiment, {len(ss.images)} slices, {threads} thread(s): {seconds:.0f} s")
    print(f"  ratio to the 5-minute target: {seconds / 300:.2f}; to the authors' ~80 min: "
          f"{seconds / 4800:.3f}")  # fmt: skip


def _sarcoma_slices(slices_path: str | None):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from petseg.slices.build import build_slice_set
    from petseg.slices.dataset import iter_cases
    from petseg.slices.store import load_slice_set

    if slices_path:
        return load_slice_set(slices_path)
    sts = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sts-pet"
    cases = ((cid, pet, mask) for cid, pet, mask, _ in iter_cases(sts))
    return build_slice_set(cases, crop="bbox:64", size=64)


def bench_precision(slices_path: str | None) -> None:
    import torch

    from petseg.slices.precision import cpu_native_bf16
    from petseg.slices.training import TrainConfig, train_unet

    full = _sarcoma_slices(slices_path)
    ss = full.subset(np.arange(min(PRECISION_SLICES, len(full.images))))
    print(f"one U-Net epoch on {len(ss.images)} real sarcoma slices; CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_native_bf16()}")  # fmt: skip
    times = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for precision in ("fp32", "bf16"):
            t0 = time.perf_counter()
            train_unet(ss.images, ss.masks, TrainConfig(epochs=1, precision=precision))
            times[threads, precision] = time.perf_counter() - t0
            ratio = times[threads, precision] / times[1, "fp32"]
            print(f"  {threads} thread(s) {precision}: {times[threads, precision]:6.1f} s "
                  f"({ratio:.2f} x fp32 on 1 thread)", flush=True)  # fmt: skip
    print(f"  bf16 / fp32 on 2 threads: {times[2, 'bf16'] / times[2, 'fp32']:.2f}; "
          f"fp32 1 / 2 threads: {times[1, 'fp32'] / times[2, 'fp32']:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part", choices=("search", "experiment", "precision", "all"), default="search"
    )
    parser.add_argument("--slices", help="slice set (.npz) to take the 880 slices from")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.part in ("search", "all"):
        bench_search()
    if args.part in ("experiment", "all"):
        bench_experiment(args.slices, args.threads)
    if args.part in ("precision", "all"):
        bench_precision(args.slices)


if __name__ == "__main__":
    main()
