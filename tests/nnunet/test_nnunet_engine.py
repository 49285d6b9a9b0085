"""petseg driving the real nnU-Net v2 on a tiny phantom cohort (runs where nnunetv2 is
installed: ``pip install -e '.[test,nnunet]'``; skipped otherwise).

One module fixture exports, plans, preprocesses and trains two folds with
``nnUNetTrainer_petsegTiny`` (1 epoch × 2 iterations) on four 32×30×48 phantom cases, then
every test checks one part of the chain against nnU-Net itself or petseg's own functions.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip(
    "nnunetv2", reason="nnU-Net is an optional extra (pip install 'petseg[nnunet]')"
)

from petseg.cli import main
from petseg.engine import get_engine, predict_dataset, predict_to_folder
from petseg.io import load_study
from petseg.io.nifti import read_nifti
from petseg.nnunet.environment import nnunet_version
from petseg.nnunet.importer import import_nnunet_predictions
from petseg.nnunet.loading import load_nnunet_model
from petseg.nnunet.prediction import nnunet_predictor
from petseg.nnunet.training import NnunetTraining, train_nnunet
from petseg.phantom import PhantomConfig, write_dataset
from petseg.study import Study

#: Chest/abdomen only, 10 mm voxels: 32×30×48 per case, so CI trains in about a minute.
TINY = PhantomConfig(axial_range_mm=(380.0, 700.0), transaxial_fov_mm=(300.0, 480.0))
CASES = ["control_0000", "phantom_0000", "phantom_0001", "phantom_0002"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import torch

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("nnunet")
    dataset = write_dataset(
        root / "ds",
        n=3,
        seed=3,
        negatives=1,
        spacing=(10.0, 10.0, 10.0),
        config=TINY,
        progress=False,
    )
    config = NnunetTraining(trainer="nnUNetTrainer_petsegTiny", dataset_id=777, name="Tiny")
    record = train_nnunet(dataset, root / "work", config, n_folds=2)
    return dataset, root / "work", record


@pytest.fixture(scope="module")
def predicted(trained, tmp_path_factory):
    dataset, work, _ = trained
    out = tmp_path_factory.mktemp("pred") / "out"
    # without test-time mirroring (8× faster on CPU); the mirroring test covers it
    engine = get_engine("nnunet", use_mirroring=False)
    results = predict_dataset(engine, dataset, work, out, folds="all", save_probabilities=True)
    return out, results


def test_export_passes_nnunets_integrity_check_and_reads_as_petseg(trained):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    dataset, work, _ = trained
    raw = work / "nnUNet_raw" / "Dataset777_Tiny"
    verify_dataset_integrity(str(raw), num_processes=1)  # nnU-Net's own check (asserts)
    # nnU-Net's reader sees petseg's (Z, Y, X) arrays and (dz, dy, dx) spacing unchanged
    images, properties = SimpleITKIO().read_images(
        [
            str(raw / "imagesTr" / "phantom_0000_0000.nii.gz"),
            str(raw / "imagesTr" / "phantom_0000_0001.nii.gz"),
        ]
    )
    pet, geometry = read_nifti(dataset / "phantom_0000" / "pet.nii.gz")
    ct, _ = read_nifti(dataset / "phantom_0000" / "ct.nii.gz")
    np.testing.assert_array_equal(images[0], pet)
    np.testing.assert_array_equal(images[1], ct)
    assert tuple(properties["spacing"]) == geometry.spacing


def test_split_is_the_builtin_engines_and_nnunet_uses_it(trained, tmp_path):
    from petseg.nn.train import load_cases, plan_model_folder

    dataset, work, record = trained
    _, builtin = plan_model_folder(dataset, tmp_path / "builtin", load_cases(dataset), n_folds=2)
    ours = json.loads((work / "folds.json").read_text())
    assert ours["folds"] == builtin["folds"]
    splits = json.loads(
        (work / "nnUNet_preprocessed" / "Dataset777_Tiny" / "splits_final.json").read_text()
    )
    assert splits == [{"train": f["train"], "val": f["val"]} for f in builtin["folds"]]
    assert sorted(c for f in splits for c in f["val"]) == CASES
    model = work / record["model"]
    for fold in (0, 1):
        assert (model / f"fold_{fold}" / "checkpoint_final.pth").is_file()
        log = next((model / f"fold_{fold}").glob("training_log_*.txt")).read_text()
        # nnU-Net logs which split it trained on: our fold's 2 training, 2 validation cases
        assert "This split has 2 training and 2 validation cases." in log
    assert record["budget_used"]["epochs"] == 1
    assert record["budget_used"]["iterations_per_epoch"] == 2
    assert (
        record["pet_normalisation"] == "zscore" and record["trainer"] == "nnUNetTrainer_petsegTiny"
    )


def test_prediction_outputs_and_provenance(trained, predicted):
    dataset, _, _ = trained
    out, results = predicted
    assert sorted(results) == CASES
    for case in CASES:
        folder = out / case
        for name in (
            "lesions.nii.gz",
            "lesions.csv",
            "report.json",
            "mip.png",
            "nnunet_fold_0.npz",
            "nnunet_fold_1.npz",
            "probabilities.nii.gz",
            "uncertainty.nii.gz",
        ):
            assert (folder / name).is_file(), name
        _, grid = read_nifti(folder / "lesions.nii.gz")
        assert grid.same_grid(read_nifti(dataset / case / "pet.nii.gz")[1])
    report = json.loads((out / "phantom_0000" / "report.json").read_text())
    model = report["model"]
    assert model["engine"] == "nnunet" and model["folds"] == [0, 1]
    assert model["configuration"] == "3d_fullres" and model["pet_normalisation"] == "zscore"
    assert model["nnunetv2_version"] == nnunet_version()
    assert report["synthetic"] is True and report["parameters"]["members"] == 2


def test_imported_fold_probabilities_average_to_the_ensemble(trained, predicted, tmp_path):
    dataset, _, _ = trained
    out, results = predicted
    case = "phantom_0002"
    folds = [np.load(out / case / f"nnunet_fold_{k}.npz")["probabilities"] for k in (0, 1)]
    # each fold's softmax sums to 1 over the two classes
    for p in folds:
        np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-5)
    pet, geometry = read_nifti(dataset / case / "pet.nii.gz")
    study = Study(pet, geometry, ct=read_nifti(dataset / case / "ct.nii.gz")[0], patient_id=case)
    status = main(
        [
            "nnunet", "import",
            "--pred", str(out / case / "nnunet_fold_0.npz"),
            "--pred", str(out / case / "nnunet_fold_1.npz"),
            "--pet", str(dataset / case / "pet.nii.gz"),
            "--ct", str(dataset / case / "ct.nii.gz"),
            "--out", str(tmp_path / "imported"),
        ]
    )  # fmt: skip
    assert status == 0
    imported, _ = read_nifti(tmp_path / "imported" / "lesions.nii.gz")
    np.testing.assert_array_equal(imported, results[case].labels)
    # the ensemble is the mean of the two folds' lesion probabilities, computed by hand
    mean = (folds[0][1].astype(np.float64) + folds[1][1]) / 2
    written, _ = read_nifti(out / case / "probabilities.nii.gz")
    np.testing.assert_allclose(written, mean, atol=1e-6)
    assert (tmp_path / "imported" / "uncertainty.nii.gz").is_file()  # two folds imported
    # a single fold's import differs from the ensemble's only through that fold
    single = import_nnunet_predictions(study, [out / case / "nnunet_fold_0.npz"], tmp_path / "one")
    assert single.extra["model"]["files"] == [str((out / case / "nnunet_fold_0.npz").resolve())]


def test_nnunets_own_file_prediction_imports_to_the_same_map(trained, predicted, tmp_path):
    """nnU-Net's file-based predictor (SimpleITKIO, real .npz + .pkl) agrees with petseg's
    in-memory path, and its .pkl passes the importer's grid check."""
    dataset, work, _ = trained
    out, _ = predicted
    case = "phantom_0000"
    model = load_nnunet_model(work, folds="0")
    predictor = nnunet_predictor(model, 0, use_mirroring=False)
    raw = work / "nnUNet_raw" / "Dataset777_Tiny" / "imagesTr"
    predictor.predict_from_files_sequential(
        [[str(raw / f"{case}_0000.nii.gz"), str(raw / f"{case}_0001.nii.gz")]],
        [str(tmp_path / case)],
        save_probabilities=True,
    )
    theirs = np.load(tmp_path / f"{case}.npz")["probabilities"]
    ours = np.load(out / case / "nnunet_fold_0.npz")["probabilities"]
    np.testing.assert_allclose(theirs, ours, atol=1e-4)
    pet, geometry = read_nifti(dataset / case / "pet.nii.gz")
    study = Study(pet, geometry, patient_id=case)
    from_npz = import_nnunet_predictions(study, [tmp_path / f"{case}.npz"], tmp_path / "a")
    from_labels = import_nnunet_predictions(study, [tmp_path / f"{case}.nii.gz"], tmp_path / "b")
    np.testing.assert_array_equal(from_npz.labels, from_labels.labels)


def test_lesion_maps_go_through_petseg_evaluate(trained, predicted, tmp_path):
    dataset, _, _ = trained
    out, _ = predicted
    status = main(
        [
            "evaluate",
            "--pred",
            f"nnunet={out}",
            "--truth",
            str(dataset),
            "--out",
            str(tmp_path / "eval"),
        ]
    )
    assert status == 0
    rows = (tmp_path / "eval" / "per_case.csv").read_text().splitlines()
    assert len(rows) == 1 + len(CASES)  # header + one row per case


def test_single_study_folder_and_mirroring_switch(trained, tmp_path):
    dataset, work, _ = trained
    case = "phantom_0001"
    pet, geometry = read_nifti(dataset / case / "pet.nii.gz")
    study = Study(pet, geometry, ct=read_nifti(dataset / case / "ct.nii.gz")[0], patient_id=case)
    model = load_nnunet_model(work, folds="1")
    mirrored = get_engine("nnunet").predict(study, model, keep_folds=True)
    with_tta = mirrored.result
    plain_engine = get_engine("nnunet", use_mirroring=False)
    without = predict_to_folder(
        plain_engine, study, model, tmp_path / "one", save_probabilities=True
    ).result
    assert with_tta.extra["model"]["test_time_mirroring"] is True
    assert without.extra["model"]["test_time_mirroring"] is False
    assert without.extra["model"]["folds"] == [1]
    plain = np.load(tmp_path / "one" / "nnunet_fold_1.npz")["probabilities"]
    assert plain.shape == (2, *geometry.shape)
    assert (tmp_path / "one" / "lesions.nii.gz").is_file()
    # mirroring averages the predictions of the flipped images: a different map
    assert not np.allclose(mirrored.fold_probabilities[1], plain[1], atol=1e-4)


def test_predict_cli_with_the_nnunet_engine(trained, tmp_path):
    """`petseg predict --engine nnunet` on one case folder gives the library's lesion map."""

    dataset, work, _ = trained
    case = dataset / "phantom_0001"
    out = tmp_path / "cli"
    args = ["predict", str(case), "--engine", "nnunet", "--model", str(work), "--folds", "1"]
    assert main([*args, "--no-mirroring", "--out", str(out)]) == 0
    engine = get_engine("nnunet", use_mirroring=False)
    direct = predict_to_folder(
        engine, load_study(case), engine.load(work, "1"), tmp_path / "lib"
    ).result
    assert np.array_equal(read_nifti(out / "lesions.nii.gz")[0], direct.labels)
    assert main([*args, "--no-mirroring", "--out", str(out)]) == 2  # exists, no --force
