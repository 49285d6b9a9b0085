"""A small real-data experiment (2 folds, 1 epoch) through the CLI, its outputs and predict.

Data: the three real sarcoma FDG-PET studies with physician GTVs of tests/data/real.
"""

import csv
import json
import shutil

import numpy as np
import pytest

from petseg.cli import main
from petseg.slices.experiment import patient_folds

PATIENTS = ("STS_002", "STS_004", "STS_019")


def _csv(path):
    return list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))


def test_patient_folds_balance_slice_counts():
    # Six patients with 10, 9, 5, 4, 1, 1 slices into 2 folds of 3 patients: greedy by size
    # gives {10, 4, 1} = 15 and {9, 5, 1} = 15 slices.
    ids = np.repeat(list("ABCDEF"), [10, 9, 5, 4, 1, 1])
    folds = patient_folds(ids, 2, seed=0)
    sizes = {f: sum(int((ids == p).sum()) for p, g in folds.items() if g == f) for f in (1, 2)}
    assert sorted(sizes.values()) == [15, 15]
    assert sorted(list(folds.values()).count(f) for f in (1, 2)) == [3, 3]
    assert folds == patient_folds(ids, 2, seed=0)  # deterministic
    with pytest.raises(ValueError, match="cannot fill"):
        patient_folds(ids, 7)


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory, sts_study):
    root = tmp_path_factory.mktemp("sts")
    for p in PATIENTS:
        (root / p).symlink_to(sts_study(p).resolve())
    return root


def test_build_experiment_predict(small_dataset, tmp_path):
    slices = tmp_path / "slices.npz"
    assert (
        main(["slices", "build", str(small_dataset), "--out", str(slices), "--crop", "bbox:64"])
        == 0
    )
    assert (
        main(["slices", "build", str(small_dataset), "--out", str(slices), "--crop", "bbox:64"])
        == 2
    )

    from petseg.slices.store import load_slice_set

    ss = load_slice_set(slices)
    assert ss.patients == list(PATIENTS) and ss.images.shape[1:] == (64, 64)
    # STS_019's GTV: 239 voxels (data README); at factor 1 the slices hold all of them.
    assert int(ss.masks[ss.patient_ids == "STS_019"].sum()) == 239
    assert ss.images.min() == 0.0 and ss.images.max() == 1.0

    out = tmp_path / "exp"
    args = ["slices", "experiment", str(slices), "--out", str(out), "--folds", "2"]
    args += ["--unet-epochs", "1", "--cnn-epochs", "1", "--threshold3d-epochs", "1"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_patients"] == 3 and summary["n_slices"] == len(ss.images)
    assert summary["parameters"]["n_folds"] == 2 and summary["petseg_version"]
    # --precision auto (the default): bf16 only on a CPU with native bf16, recorded
    from petseg.slices.precision import cpu_native_bf16

    assert summary["parameters"]["precision"] == ("bf16" if cpu_native_bf16() else "fp32")
    assert summary["parameters"]["precision_reason"].startswith("auto: ")
    rows = _csv(out / "slices.csv")
    assert len(rows) == len(ss.images)
    oracle = np.array([float(r["dice_oracle"]) for r in rows])
    for key in ("dice_method1", "dice_method2", "dice_method3"):
        assert np.all(np.array([float(r[key]) for r in rows]) <= oracle[:, None].max())
    # the oracle bounds method 2, which thresholds the same PET slices
    m2 = np.array([float(r["dice_method2"]) for r in rows])
    assert np.all(m2 <= oracle + 1e-12)
    assert [r["fold"] for r in summary["table4"]] == [1, 2, "all"]
    assert len(_csv(out / "threshold3d.csv")) == 3
    for name in ("fig3.png", "fig4.png", "tables.md", "models/fold_2/cnn_pet.pt"):
        assert (out / name).is_file()
    assert main(args) == 2  # refuses to overwrite without --force

    masks = tmp_path / "pred.npz"
    assert (
        main(
            [
                "slices",
                "predict",
                "--models",
                str(out),
                "--slices",
                str(slices),
                "--out",
                str(masks),
            ]
        )
        == 0
    )
    with np.load(masks) as data:
        assert data["masks"].shape == ss.images.shape

    mask_nii = tmp_path / "pred.nii.gz"
    study = small_dataset / "STS_019" / "pet"
    cmd = ["slices", "predict", "--models", str(out), "--study", str(study), "--out", str(mask_nii)]
    assert main([*cmd, "--crop", "centre:14:14:64", "--method", "method1"]) == 0
    from petseg.io import load_study, read_nifti

    mask, geometry = read_nifti(mask_nii)
    assert mask.shape == geometry.shape and set(np.unique(mask)) <= {0, 1}
    assert geometry.same_grid(load_study(study).geometry)
    shutil.rmtree(out)
