"""Fold training, resume, ensemble and post-processing on a tiny hand-made cohort."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from petseg.cli import main  # noqa: E402
from petseg.nn.engine import BuiltinEngine  # noqa: E402
from petseg.nn.infer import LoadedModel, load_model  # noqa: E402
from petseg.nn.plan import Plan  # noqa: E402
from petseg.nn.train import TrainConfig, load_cases, plan_model_folder, train, train_fold  # noqa: E402
from petseg.study import Geometry, Study  # noqa: E402

TINY = TrainConfig(epochs=4, iterations_per_epoch=1, val_patches=2, device="cpu", threads=1)


@pytest.fixture(scope="module")
def trained(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model"
    config = TrainConfig(epochs=2, iterations_per_epoch=2, val_patches=2, device="cpu", threads=1)
    results = train(tiny_dataset, out, n_folds=2, config=config, progress=False)
    assert [r.fold for r in results] == [0, 1]
    return out


def test_two_fold_training_writes_models_log_curve(trained: Path):
    plan = json.loads((trained / "plan.json").read_text())
    assert plan["patch_size"] == [24, 32, 32]  # the whole 24x32x32 case, divisible by (4, 8, 8)
    split = json.loads((trained / "folds.json").read_text())
    assert sorted(split["folds"][0]["val"] + split["folds"][1]["val"]) == [
        f"case_{i:03d}" for i in range(6)
    ]
    for fold in (0, 1):
        folder = trained / f"fold_{fold}"
        assert (folder / "model.pt").is_file() and (folder / "curve.png").is_file()
        log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
        assert [row["epoch"] for row in log] == [1, 2]
        assert all(np.isfinite(row["train_loss"]) and 0 <= row["val_dice"] <= 1 for row in log)
        # optimizer auto: AdamW (1e-3) for the cpu-small budget; poly decay per iteration,
        # logged at each epoch's last iteration (0-based 1 and 3 of 4):
        assert log[0]["lr"] == pytest.approx(1e-3 * (1 - 1 / 4) ** 0.9)
        assert log[1]["lr"] == pytest.approx(1e-3 * (1 - 3 / 4) ** 0.9)
    training = json.loads((trained / "training.json").read_text())
    assert training["synthetic"] is True


def test_finished_fold_is_not_overwritten_without_force(tiny_dataset: Path, trained: Path):
    config = TrainConfig(epochs=2, iterations_per_epoch=2, val_patches=2, device="cpu", threads=1)
    with pytest.raises(FileExistsError, match="--force"):
        train(tiny_dataset, trained, n_folds=2, folds=[0], config=config, progress=False)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_resume_gives_same_weights_as_uninterrupted_run(
    tiny_dataset: Path, tmp_path: Path, optimizer: str
):
    config = dataclasses.replace(TINY, optimizer=optimizer)
    cases = load_cases(tiny_dataset)
    plan, split = plan_model_folder(tiny_dataset, tmp_path / "a", cases, n_folds=2)
    plan_model_folder(tiny_dataset, tmp_path / "b", cases, n_folds=2)
    train_fold(cases, plan, split, 0, tmp_path / "a", config, progress=False)
    first = train_fold(
        cases, plan, split, 0, tmp_path / "b", config, stop_after_epochs=2, progress=False
    )
    assert first.epochs_done == 2 and not (tmp_path / "b" / "fold_0" / "model.pt").exists()
    second = train_fold(cases, plan, split, 0, tmp_path / "b", config, progress=False)
    assert second.resumed_from_epoch == 2 and second.epochs_done == 4
    a = torch.load(tmp_path / "a" / "fold_0" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "fold_0" / "checkpoint.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 4
    for key, value in a["model"].items():
        torch.testing.assert_close(value, b["model"][key], rtol=0, atol=0, msg=key)
    assert json.loads(a["log"])[-1]["train_loss"] == json.loads(b["log"])[-1]["train_loss"]


def test_optimizer_auto_follows_the_budget():
    auto = TrainConfig()
    assert (auto.optimizer, auto.learning_rate) == ("auto", None)
    assert auto.for_budget("nnunet").optimizer == "sgd"
    assert auto.for_budget("nnunet").learning_rate == 0.01
    assert auto.for_budget("cpu-small").optimizer == "adamw"
    assert auto.for_budget("cpu-small").learning_rate == 1e-3
    chosen = TrainConfig(optimizer="sgd", learning_rate=0.02).for_budget("cpu-small")
    assert (chosen.optimizer, chosen.learning_rate) == ("sgd", 0.02)


def test_optimizer_needs_a_resolved_configuration():
    from petseg.nn.train import make_optimizer

    params = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="for_budget"):
        make_optimizer(params, TrainConfig())
    sgd = make_optimizer(params, TrainConfig().for_budget("nnunet"))
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] is True
    assert sgd.defaults["momentum"] == 0.99 and sgd.defaults["lr"] == 0.01
    adamw = make_optimizer(params, TrainConfig().for_budget("cpu-small"))
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["lr"] == 1e-3


def test_train_config_rejects_unknown_optimizer_and_bad_learning_rate():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig(learning_rate=0.0)


def test_resume_refuses_other_settings(tiny_dataset: Path, tmp_path: Path):
    cases = load_cases(tiny_dataset)
    plan, split = plan_model_folder(tiny_dataset, tmp_path, cases, n_folds=2)
    train_fold(cases, plan, split, 1, tmp_path, TINY, stop_after_epochs=1, progress=False)
    other = TrainConfig(epochs=5, iterations_per_epoch=1, val_patches=2, device="cpu", threads=1)
    with pytest.raises(ValueError, match="other settings"):
        train_fold(cases, plan, split, 1, tmp_path, other, progress=False)


def test_ensemble_is_mean_of_fold_probabilities(tiny_dataset: Path, trained: Path):
    from petseg.nn.data import read_case
    from petseg.nn.infer import fold_probabilities

    engine = BuiltinEngine()
    model = engine.load(trained, "all")
    case = read_case(tiny_dataset, "case_000", model.plan.channels)
    study = Study(case.image[0], case.geometry, ct=case.image[1], patient_id="case_000")
    per_fold = dict(fold_probabilities(study, model))
    assert sorted(per_fold) == [0, 1] and not np.allclose(per_fold[0], per_fold[1])
    prediction = engine.predict(study, model)
    mean = (per_fold[0] + per_fold[1]) / 2
    np.testing.assert_allclose(prediction.probability, mean, rtol=0, atol=1e-6)
    single = dict(fold_probabilities(study, load_model(trained, "1")))
    np.testing.assert_allclose(single[1], per_fold[1], atol=1e-6)


class SuvThresholdNet(torch.nn.Module):
    """A fixed (untrained) network: lesion logit = 50 × (normalised PET − 0.5), i.e.
    lesion where SUV > 0.5 × the plan's lesion-mean SUV (here 8 g/mL → SUV > 4)."""

    def forward(self, x):  # type: ignore[no-untyped-def]
        fg = 50.0 * (x[:, :1] - 0.5)
        return torch.cat([torch.zeros_like(fg), fg], dim=1)


def test_postprocessing_removes_out_of_body_and_sub_0_1_ml_blobs(trained: Path):
    plan = Plan.from_dict(json.loads((trained / "plan.json").read_text()))
    plan = Plan.from_dict(
        {
            **plan.to_dict(),
            "normalisation": [
                {
                    "channel": "pet",
                    "scheme": "suv_over_dataset_lesion_mean",
                    "clip_low": 0.0,
                    "clip_high": 20.0,
                    "mean": 0.0,
                    "std": 8.0,
                },
                {
                    "channel": "ct",
                    "scheme": "ct_zscore_clipped",
                    "clip_low": -1000.0,
                    "clip_high": 1000.0,
                    "mean": 0.0,
                    "std": 100.0,
                },
            ],
        }
    )
    model = LoadedModel(trained, plan, {0: SuvThresholdNet().eval()}, {})
    shape = (24, 32, 32)
    geometry = Geometry.from_spacing(shape, (4.0, 4.0, 4.0))  # 0.064 mL voxels
    pet = np.zeros(shape, np.float32)
    pet[4:20, 8:24, 8:24] = 1.0  # body
    pet[10:13, 14:17, 14:17] = 10.0  # lesion: 27 voxels = 1.728 mL, kept
    pet[16, 10, 10] = 10.0  # 1 voxel = 0.064 mL < 0.1 mL: removed
    pet[2:4, 1:3, 1:3] = 10.0  # 8 voxels in the air, separated from the body: removed
    study = Study(pet, geometry, ct=np.zeros(shape, np.float32), patient_id="planted")
    prediction = BuiltinEngine().predict(study, model)
    result, probability = prediction.result, prediction.probability
    assert probability.shape == shape
    assert prediction.uncertainty is None and result.lesion_uncertainty is None  # one fold
    assert (probability > 0.5).sum() == 27 + 1 + 8  # the network sees all three blobs
    assert result.patient.lesion_count == 1
    assert result.lesions[0].voxels == 27
    assert result.patient.total_tumour_volume_ml == pytest.approx(27 * 0.064)
    assert result.extra["model"]["folds"] == [0]


def test_cli_train_resume_and_predict(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    model = tmp_path / "model"
    args = [
        "train",
        str(tiny_dataset),
        "--out",
        str(model),
        "--folds",
        "2",
        "--epochs",
        "1",
        "--iterations",
        "1",
        "--threads",
        "1",
        "--device",
        "cpu",
    ]
    assert main([*args, "--fold", "0"]) == 0
    assert main([*args, "--fold", "1"]) == 0
    assert (model / "fold_1" / "model.pt").is_file()
    out = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                "--pet",
                str(tiny_dataset / "case_001" / "pet.nii.gz"),
                "--ct",
                str(tiny_dataset / "case_001" / "ct.nii.gz"),
                "--model",
                str(model),
                "--out",
                str(out),
                "--folds",
                "0,1",
                "--save-probabilities",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "network" and report["model"]["folds"] == [0, 1]
    assert report["model"]["plan"]["budget"] == "cpu-small"
    assert report["model"]["engine"] == "builtin"
    for name in (
        "lesions.nii.gz",
        "lesions.csv",
        "mip.png",
        "probabilities.nii.gz",
        "uncertainty.nii.gz",
        "nnunet_fold_0.npz",
        "nnunet_fold_1.npz",
    ):
        assert (out / name).is_file()
    header = (out / "lesions.csv").read_text().splitlines()[0].split(",")
    assert header[-5:] == [
        "uncertainty_mean",
        "uncertainty_max",
        "folds_segmenting",
        "folds",
        "review_first",
    ]
    # Refuses to overwrite; cross-validation predictions of the dataset.
    capsys.readouterr()
    pet = str(tiny_dataset / "case_001" / "pet.nii.gz")
    ct = str(tiny_dataset / "case_001" / "ct.nii.gz")
    assert (
        main(["predict", "--pet", pet, "--ct", ct, "--model", str(model), "--out", str(out)]) == 2
    )
    assert "already exists" in capsys.readouterr().err
    cv = tmp_path / "cv"
    assert (
        main(
            [
                "predict",
                str(tiny_dataset),
                "--model",
                str(model),
                "--out",
                str(cv),
                "--folds",
                "crossval",
            ]
        )
        == 0
    )
    split = json.loads((model / "folds.json").read_text())
    for fold in split["folds"]:
        for case_id in fold["val"]:
            assert json.loads((cv / case_id / "report.json").read_text())["model"]["folds"] == [
                fold["fold"]
            ]


def test_learning_rate_factor_warmup_then_poly_or_cosine():
    from petseg.nn.train import learning_rate_factor

    poly = TrainConfig(epochs=2, iterations_per_epoch=5, warmup_iterations=2)
    # warm-up 1/2, 2/2; then t = (i - 2) / 8: i = 6 -> (1 - 0.5) ** 0.9
    assert [learning_rate_factor(i, poly) for i in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert learning_rate_factor(6, poly) == pytest.approx(0.5**0.9)
    cosine = dataclasses.replace(poly, schedule="cosine")
    assert learning_rate_factor(6, cosine) == pytest.approx(0.5)  # (1 + cos(pi / 2)) / 2
    assert learning_rate_factor(10, cosine) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="step")


def test_torch_threads_restores_the_previous_setting():
    from petseg.nn.train import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("fails inside")
    assert torch.get_num_threads() == before


def test_deep_supervision_loss_weights_heads_one_half_quarter():
    from petseg.nn.train import make_loss

    loss = make_loss(TrainConfig(deep_supervision=True))
    target = torch.zeros(1, 1, 4, 4, 4, dtype=torch.long)
    target[..., :2, :, :] = 1
    heads = [
        torch.randn(1, 2, 4, 4, 4, generator=torch.Generator().manual_seed(h)) for h in range(3)
    ]
    stacked = loss(torch.stack(heads, 1), target)
    single = [float(loss(h, target)) for h in heads]
    expected = (single[0] + single[1] / 2 + single[2] / 4) / 1.75
    assert float(stacked) == pytest.approx(expected, rel=1e-6)


def test_best_weights_become_model_and_early_stop(tiny_dataset: Path, tmp_path: Path):
    config = TrainConfig(
        epochs=6,
        iterations_per_epoch=1,
        val_patches=2,
        device="cpu",
        threads=1,
        patience=1,
        deep_supervision=True,
        foreground_sampling="lesion",
    )
    cases = load_cases(tiny_dataset)
    plan, split = plan_model_folder(tiny_dataset, tmp_path, cases, n_folds=2)
    result = train_fold(cases, plan, split, 0, tmp_path, config, progress=False)
    log = [
        json.loads(line) for line in (tmp_path / "fold_0" / "log.jsonl").read_text().splitlines()
    ]
    ema = [row["val_dice_ema"] for row in log]
    assert ema[0] == log[0]["val_dice"]
    assert ema[1] == pytest.approx(0.7 * ema[0] + 0.3 * log[1]["val_dice"])
    best_epoch = int(np.argmax(ema)) + 1  # the first epoch with the highest smoothed Dice
    assert result.best_epoch == best_epoch
    assert result.stopped_early == (result.epochs_done < 6)
    if result.stopped_early:
        assert result.epochs_done - best_epoch == 1
    saved = torch.load(tmp_path / "fold_0" / "model.pt", weights_only=True)
    best = torch.load(tmp_path / "fold_0" / "best.pt", weights_only=True)
    assert saved["best_epoch"] == best_epoch
    assert not any("deep_supervision" in k or "super_head" in k for k in saved["state_dict"])
    for key, value in best["state_dict"].items():
        torch.testing.assert_close(saved["state_dict"][key], value, rtol=0, atol=0)
    assert 0 in load_model(tmp_path, "0").networks  # loads into the network without heads


def test_finish_fold_keeps_the_best_weights_of_an_unfinished_fold(
    tiny_dataset: Path, tmp_path: Path
):
    from petseg.nn.train import finish_fold

    cases = load_cases(tiny_dataset)
    plan, split = plan_model_folder(tiny_dataset, tmp_path, cases, n_folds=2)
    with pytest.raises(FileNotFoundError, match="train at least one epoch"):
        finish_fold(tmp_path, 1)
    train_fold(cases, plan, split, 1, tmp_path, TINY, stop_after_epochs=2, progress=False)
    assert not (tmp_path / "fold_1" / "model.pt").exists()
    path = finish_fold(tmp_path, 1)
    saved = torch.load(path, weights_only=True)
    best = torch.load(tmp_path / "fold_1" / "best.pt", weights_only=True)
    assert saved["epochs"] == 2 and saved["best_epoch"] in (1, 2)
    for key, value in best["state_dict"].items():
        torch.testing.assert_close(saved["state_dict"][key], value, rtol=0, atol=0)


def test_deadline_in_the_past_trains_nothing(tiny_dataset: Path, tmp_path: Path):
    import datetime as dt

    past = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    assert (
        train(tiny_dataset, tmp_path / "m", n_folds=2, config=TINY, progress=False, deadline=past)
        == []
    )
    assert not (tmp_path / "m" / "fold_0").exists()


def test_init_from_starts_each_fold_from_that_models_fold(
    tiny_dataset: Path, trained: Path, tmp_path: Path
):
    cases = load_cases(tiny_dataset)
    plan = Plan.from_dict(json.loads((trained / "plan.json").read_text()))
    split = json.loads((trained / "folds.json").read_text())
    # a learning rate of 1e-12 leaves the initial weights as they are after one epoch
    config = dataclasses.replace(
        TINY, epochs=1, learning_rate=1e-12, init_from=str(trained), deep_supervision=True
    )
    train_fold(cases, plan, split, 1, tmp_path, config, progress=False)
    start = torch.load(trained / "fold_1" / "model.pt", weights_only=True)["state_dict"]
    tuned = torch.load(tmp_path / "fold_1" / "checkpoint.pt", weights_only=True)["model"]
    for key, value in start.items():
        torch.testing.assert_close(tuned[key], value.float(), rtol=0, atol=1e-6, msg=key)
    with pytest.raises(FileNotFoundError, match="fold 2"):
        train_fold(
            cases,
            plan,
            {**split, "folds": [{**split["folds"][0], "fold": 2}]},
            2,
            tmp_path,
            config,
            progress=False,
        )
