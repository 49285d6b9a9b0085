"""nnU-Net v2 inference time per whole-body study on CPU, with and without test-time
mirroring, beside petseg's built-in 3D network, in the same run.

The study is a petseg phantom at the default 4 mm grid (whole body, PET + CT). nnU-Net
plans its ``3d_fullres`` configuration on two such phantoms (its default planner, as in
Carlsen et al.); its network gets nnU-Net's random initialisation, because inference time
does not depend on the weight values (no training needed to time it). The built-in engine
uses the shipped demonstration model. All timings are one fold (one network), and the
whole call: preprocessing, sliding window, resampling back, petseg post-processing.

Run (nnU-Net installed): ``python benchmarks/nnunet_inference.py [--threads 2]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprint_dataset,
        plan_experiment_dataset,
    )

    from petseg.engine import get_engine
    from petseg.nnunet.environment import nnunet_environment, quiet_nnunet_warnings
    from petseg.nnunet.export import export_dataset
    from petseg.nnunet.loading import NnunetModel
    from petseg.phantom import generate_study, write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        dataset = write_dataset(Path(tmp) / "ds", n=2, seed=11, progress=False)
        raw = export_dataset(dataset, work / "nnUNet_raw", dataset_id=990, name="Bench")
        with nnunet_environment(work, data_workers=1), quiet_nnunet_warnings():
            extract_fingerprint_dataset(
                990, num_processes=1, verbose=False, show_progress_bar=False
            )
            plan_experiment_dataset(990)
        pre = work / "nnUNet_preprocessed" / raw.name
        plans = json.loads((pre / "nnUNetPlans.json").read_text())
        dataset_json = json.loads((pre / "dataset.json").read_text())
        config = plans["configurations"]["3d_fullres"]
        model = NnunetModel(
            path=pre,
            plans=plans,
            dataset_json=dataset_json,
            configuration="3d_fullres",
            trainer="nnUNetTrainer",
            parameters={},
            mirror_axes=(0, 1, 2),  # nnU-Net's default for 3D (all three axes)
            info={},
        )
        from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        manager = PlansManager(plans)
        net = nnUNetTrainer.build_network_architecture(
            manager, manager.get_configuration("3d_fullres"), 2, 2, enable_deep_supervision=False
        )
        model.parameters[0] = net.state_dict()

        study = generate_study(12345).study
        print(
            f"study: {study.geometry.shape} voxels (Z, Y, X) at {study.geometry.spacing} mm; "
            f"nnU-Net 3d_fullres patch {config['patch_size']}, spacing {config['spacing']}, "
            f"{len(config['architecture']['arch_kwargs']['features_per_stage'])} stages; "
            f"torch threads {args.threads}"
        )
        engine = get_engine("builtin")
        builtin = engine.load(None, folds=[0])
        engine.predict(study, builtin)  # warm-up
        t0 = time.perf_counter()
        engine.predict(study, builtin)
        t_builtin = time.perf_counter() - t0
        timings = {}
        for mirroring in (False, True):
            t0 = time.perf_counter()
            get_engine("nnunet", use_mirroring=mirroring).predict(study, model)
            timings[mirroring] = time.perf_counter() - t0
    print(f"built-in engine (demo model, 1 fold):        {t_builtin:8.1f} s  (baseline)")
    print(
        f"nnU-Net 3d_fullres, no mirroring (1 fold):   {timings[False]:8.1f} s  "
        f"ratio {timings[False] / t_builtin:6.1f}x"
    )
    print(
        f"nnU-Net 3d_fullres, 8-fold mirroring TTA:    {timings[True]:8.1f} s  "
        f"ratio {timings[True] / t_builtin:6.1f}x (TTA/no TTA {timings[True] / timings[False]:.1f}x)"
    )
    print("a 5-fold ensemble costs 5x these per-fold figures")


if __name__ == "__main__":
    main()
