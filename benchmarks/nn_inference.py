"""Speed and memory of the 3D network on CPU.

Measures, for a whole-body study at 4 mm (100 × 100 × 180 voxels, PET + CT):

* 5-fold ensemble inference as ``petseg predict`` runs it (sliding window, Gaussian, 50 %
  overlap, fold by fold, post-processing, voxel and per-lesion uncertainty), wall time and
  peak resident memory of the process — targets ≤ 60 s and ≤ 4 GB on 2 cores;
* the baselines in the same run: the same 5 folds averaged without uncertainty (running
  mean, decision, post-processing: the cost of the uncertainty), and one fold (the cost
  of the ensemble);
* training iterations per second for the planned patch (batch 2, with the loss,
  optimiser step and augmentation of ``petseg train`` for the plan's budget);
* the cost of the uncertainty alone, without the network: five smooth fold maps on the
  same grid, made one at a time, through the engines' ensemble
  (:func:`petseg.engine.ensemble_prediction`: mean, decision, post-processing, mutual
  information, lesion table) against the baseline of their running mean, decision and
  post-processing; time and peak RSS of each in its own process. ``--overhead-only`` runs
  just this part (seconds; meaningful on a loaded machine where the network parts are not).

Uses the shipped demonstration model when it exists, else randomly initialised weights
of the same ``cpu-small`` plan (speed does not depend on the weights).

Run: ``python benchmarks/nn_inference.py [--threads 2] [--model MODEL]``
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def whole_body_study(shape=(180, 100, 100), spacing=(4.0, 4.0, 4.0)):
    """A 4 mm whole-body-sized PET/CT (body ellipse, liver, three hot lesions)."""
    from petseg.study import Geometry, Study

    rng = np.random.default_rng(0)
    geometry = Geometry.from_spacing(shape, spacing, origin=(-198.0, -198.0, -700.0))
    k, j, i = np.indices(shape, dtype=np.float32)
    body = ((j - 50) / 30) ** 2 + ((i - 50) / 45) ** 2 <= 1
    pet = np.where(body, 1.0, 0.0).astype(np.float32)
    liver = ((k - 110) / 15) ** 2 + ((j - 50) / 15) ** 2 + ((i - 35) / 15) ** 2 <= 1
    pet[liver] = 2.5
    for c in ((60, 50, 60), (120, 45, 65), (140, 55, 40)):
        pet[((k - c[0]) ** 2 + (j - c[1]) ** 2 + (i - c[2]) ** 2) <= 9] = 9.0
    pet += rng.normal(0, 0.1, shape).astype(np.float32) * body
    ct = np.where(body, 20.0, -1000.0).astype(np.float32)
    return Study(np.clip(pet, 0, None), geometry, ct=ct, patient_id="bench")


def random_model(folder: Path, n_folds: int = 5) -> Path:
    """A model folder with the cpu-small plan of a 4 mm whole-body cohort, random weights."""
    import torch

    from petseg.io.atomic import write_json_atomic
    from petseg.nn.model import build_model
    from petseg.nn.plan import Fingerprint, make_plan

    fp = Fingerprint(
        case_ids=("a", "b"),
        spacings=((4.0, 4.0, 4.0),) * 2,
        shapes=((180, 100, 100),) * 2,
        channels=("pet", "ct"),
        intensity={
            "pet": {"mean": 6.0, "std": 3.0, "percentile_00_5": 2.0, "percentile_99_5": 20.0},
            "ct": {"mean": 30.0, "std": 40.0, "percentile_00_5": -100.0, "percentile_99_5": 200.0},
        },
        foreground_voxels=1000,
        negative_cases=0,
    )
    plan = make_plan(fp, "cpu-small")
    write_json_atomic(folder / "plan.json", plan.to_dict())
    for f in range(n_folds):
        torch.manual_seed(f)
        state = {k: v.half() for k, v in build_model(plan).state_dict().items()}
        (folder / f"fold_{f}").mkdir(parents=True)
        torch.save({"state_dict": state, "fold": f}, folder / f"fold_{f}" / "model.pt")
    return folder


def mean_without_uncertainty(study, model):
    """Baseline: the folds' running mean, decision and post-processing, nothing else."""
    from petseg.engine.protocol import PROBABILITY_THRESHOLD
    from petseg.nn.infer import fold_probabilities
    from petseg.result import segmentation_from_mask

    total = np.zeros(study.geometry.shape, np.float32)
    for _, probability in fold_probabilities(study, model):
        total += probability
    mask = total / len(model.folds) > PROBABILITY_THRESHOLD
    return segmentation_from_mask(study, mask, model.provenance())


def synthetic_fold_maps(study, n_folds: int = 5):
    """Fold lesion probabilities on the study's grid, one at a time: the study's hot spots
    blurred, each fold with its own noise (the network is not run)."""
    from scipy.ndimage import gaussian_filter

    base = gaussian_filter((study.pet > 5).astype(np.float32), 1.5) * 2
    for fold in range(n_folds):
        noise = np.random.default_rng(fold).normal(0, 0.15, study.geometry.shape)
        yield fold, np.clip(base + gaussian_filter(noise, 2).astype(np.float32), 0, 1)


def time_overhead(uncertainty: bool) -> dict[str, float]:
    from petseg.engine import ensemble_prediction
    from petseg.engine.protocol import PROBABILITY_THRESHOLD
    from petseg.result import segmentation_from_mask

    study = whole_body_study()
    t0 = time.perf_counter()
    if uncertainty:
        result = ensemble_prediction(study, synthetic_fold_maps(study), range(5), {}).result
    else:
        total = np.zeros(study.geometry.shape, np.float32)
        for _, probability in synthetic_fold_maps(study):
            total += probability
        result = segmentation_from_mask(study, total / 5 > PROBABILITY_THRESHOLD, {})
    seconds = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {"seconds": seconds, "peak_rss_gb": peak_gb, "lesions": result.patient.lesion_count}


def time_inference(model_dir: Path, folds: str, uncertainty: bool) -> dict[str, float]:
    from petseg.nn.engine import BuiltinEngine

    study = whole_body_study()
    engine = BuiltinEngine()
    model = engine.load(model_dir, folds)
    t0 = time.perf_counter()
    if uncertainty:
        result = engine.predict(study, model).result
    else:
        result = mean_without_uncertainty(study, model)
    seconds = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {"seconds": seconds, "peak_rss_gb": peak_gb, "lesions": result.patient.lesion_count}


def time_training(model_dir: Path, iterations: int) -> dict[str, float]:
    import torch

    from petseg.nn.data import augmentation, preprocess, sample_batch
    from petseg.nn.infer import load_model, study_image
    from petseg.nn.train import TrainConfig, make_loss, make_optimizer

    model = load_model(model_dir, "0")
    plan = model.plan
    net = model.networks[0].train()
    study = whole_body_study()
    image, _ = preprocess(study_image(study, plan), study.geometry.spacing, plan)
    label = (study.pet > 5).astype(np.uint8)
    opt = make_optimizer(net.parameters(), TrainConfig().for_budget(plan.budget))
    loss_fn = make_loss()  # optimiser and loss as petseg train uses them for this plan
    augment = augmentation()
    times = []
    for it in range(iterations + 1):
        t0 = time.perf_counter()
        x, y = sample_batch([(image, label)], plan, (0, it), augment=augment)
        opt.zero_grad()
        loss = loss_fn(net(torch.from_numpy(x)), torch.from_numpy(y.astype(np.int64)))
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    per_it = float(np.mean(times[1:]))  # first iteration excluded (warm-up)
    return {
        "seconds_per_iteration": per_it,
        "iterations_per_second": 1 / per_it,
        "patch_size": list(plan.patch_size),
        "batch_size": plan.batch_size,
    }


def print_network_table(single: dict, plain: dict, ensemble: dict, train: dict) -> None:
    """The network parts: 1 fold, 5-fold mean, 5-fold with uncertainty, training."""
    print("study: 180 x 100 x 100 voxels at 4 mm (PET + CT)")
    print(
        f"1-fold inference (baseline):          {single['seconds']:.1f} s, "
        f"peak RSS {single['peak_rss_gb']:.2f} GB"
    )
    print(
        f"5-fold mean, no uncertainty (baseline): {plain['seconds']:.1f} s, "
        f"peak RSS {plain['peak_rss_gb']:.2f} GB"
    )
    print(
        f"5-fold ensemble with uncertainty:     {ensemble['seconds']:.1f} s, "
        f"peak RSS {ensemble['peak_rss_gb']:.2f} GB (target <= 60 s, <= 4 GB)"
    )
    print(
        f"ratio with / without uncertainty: time {ensemble['seconds'] / plain['seconds']:.2f}, "
        f"peak RSS {ensemble['peak_rss_gb'] / plain['peak_rss_gb']:.2f}; "
        f"ratio ensemble / 1 fold: {ensemble['seconds'] / single['seconds']:.2f}"
    )
    print(
        f"training: {train['iterations_per_second']:.2f} it/s ({train['seconds_per_iteration']:.2f} s per "
        f"iteration, batch {train['batch_size']} of {train['patch_size']}, augmentation on)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", type=Path, help="model folder (default: shipped demo model)")
    parser.add_argument("--train-iterations", type=int, default=5)
    parser.add_argument(
        "--part",
        choices=("all", "ensemble", "plain", "single", "train", "overhead", "overhead-plain"),
        default="all",
    )
    parser.add_argument(
        "--overhead-only", action="store_true", help="only the uncertainty's own cost"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from petseg.nn.infer import DEMO_MODEL

    model_dir = args.model
    tmp = None
    if model_dir is None:
        if (DEMO_MODEL / "plan.json").exists():
            model_dir = DEMO_MODEL
        else:
            tmp = tempfile.TemporaryDirectory()
            model_dir = random_model(Path(tmp.name) / "model")
    if args.part != "all":
        if args.part == "train":
            out = time_training(model_dir, args.train_iterations)
        elif args.part.startswith("overhead"):
            out = time_overhead(uncertainty=args.part == "overhead")
        else:
            folds = "0" if args.part == "single" else "all"
            out = time_inference(model_dir, folds, uncertainty=args.part != "plain")
        print(json.dumps(out))
        return 0
    # Each measurement in its own process, so peak memory is that of one prediction.
    import subprocess

    def run(part: str) -> dict:
        cmd = [
            sys.executable,
            __file__,
            "--part",
            part,
            "--threads",
            str(args.threads),
            "--model",
            str(model_dir),
            "--train-iterations",
            str(args.train_iterations),
        ]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    plan = json.loads((Path(model_dir) / "plan.json").read_text())
    print(
        f"model: {model_dir}  plan: budget {plan['budget']}, patch {plan['patch_size']}, "
        f"filters {plan['filters']}, spacing {plan['target_spacing']} mm; threads {args.threads}"
    )
    mean_only, with_mi = run("overhead-plain"), run("overhead")
    print(
        f"uncertainty alone (5 synthetic fold maps, no network): running mean "
        f"{mean_only['seconds']:.2f} s, peak RSS {mean_only['peak_rss_gb']:.2f} GB; "
        f"with uncertainty {with_mi['seconds']:.2f} s, peak RSS {with_mi['peak_rss_gb']:.2f} GB; "
        f"ratio time {with_mi['seconds'] / mean_only['seconds']:.2f}, "
        f"peak RSS {with_mi['peak_rss_gb'] / mean_only['peak_rss_gb']:.2f}"
    )
    if args.overhead_only:
        return 0
    print_network_table(run("single"), run("plain"), run("ensemble"), run("train"))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
