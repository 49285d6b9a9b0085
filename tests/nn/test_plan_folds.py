"""Plan (fingerprint, topology, normalisation) and patient-level folds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from petseg.nn.folds import fold_of_case, make_folds, validate_folds
from petseg.nn.plan import (
    IMAGE_ZSCORE,
    PET_NORMALISATION,
    Fingerprint,
    fingerprint_cases,
    make_plan,
    normalise,
)


def test_fingerprint_statistics_by_hand():
    # Foreground voxels of channel 0: 2, 4 (case a) and 6 (case b): mean 4, SD sqrt(8/3).
    image_a = np.zeros((1, 1, 2, 2), np.float32)
    image_a[0, 0, 0] = (2, 4)
    label_a = np.zeros((1, 2, 2), np.uint8)
    label_a[0, 0] = 1
    image_b = np.full((1, 1, 2, 2), 6, np.float32)
    label_b = np.zeros((1, 2, 2), np.uint8)
    label_b[0, 1, 1] = 1
    label_c = np.zeros((1, 2, 2), np.uint8)  # a negative control
    fp = fingerprint_cases(
        ["a", "b", "c"],
        [image_a, image_b, image_b],
        [label_a, label_b, label_c],
        [(3, 2, 2)] * 3,
        ["pet"],
    )
    assert fp.intensity["pet"]["mean"] == pytest.approx(4.0)
    assert fp.intensity["pet"]["std"] == pytest.approx(math.sqrt(8 / 3))
    # numpy's linear percentile of [2, 4, 6] at 99.5 %: 4 + 0.99 * 2 = 5.98
    assert fp.intensity["pet"]["percentile_99_5"] == pytest.approx(5.98)
    assert fp.foreground_voxels == 3
    assert fp.negative_cases == 1


def test_fingerprint_refuses_dataset_without_lesions():
    with pytest.raises(ValueError, match="no lesion voxel"):
        fingerprint_cases(
            ["a"], [np.ones((1, 2, 2, 2))], [np.zeros((2, 2, 2))], [(1, 1, 1)], ["pet"]
        )


def _fingerprint(shape, spacing, n=3):
    return Fingerprint(
        case_ids=tuple(f"c{i}" for i in range(n)),
        spacings=(tuple(spacing),) * n,
        shapes=(tuple(shape),) * n,
        channels=("pet", "ct"),
        intensity={
            "pet": {"mean": 8.0, "std": 2.0, "percentile_00_5": 3.0, "percentile_99_5": 20.0},
            "ct": {"mean": 40.0, "std": 20.0, "percentile_00_5": -50.0, "percentile_99_5": 150.0},
        },
        foreground_voxels=100,
        negative_cases=0,
    )


def test_plan_whole_body_4mm_cpu_small_is_sensible_and_deterministic():
    fp = _fingerprint((180, 100, 100), (4.0, 4.0, 4.0))
    plan = make_plan(fp, "cpu-small")
    assert plan == make_plan(fp, "cpu-small")
    assert plan.target_spacing == (4.0, 4.0, 4.0)
    assert math.prod(plan.patch_size) <= 64**3
    total = np.prod(np.asarray(plan.strides), axis=0)
    assert all(p % t == 0 for p, t in zip(plan.patch_size, total, strict=True))
    assert all(p % t == 0 for p, t in zip(plan.inference_patch_size, total, strict=True))
    # Bottom feature map at least 4 voxels per axis (nnU-Net's rule).
    assert min(np.asarray(plan.patch_size) // total) >= 4
    assert plan.filters == (8, 16, 32, 64)
    assert len(plan.kernel_sizes) == len(plan.strides) == 4
    # The inference window covers the whole 100 x 100 plane (multiple of 8 above 100: 104).
    assert plan.inference_patch_size[1:] == (104, 104)


def test_plan_uses_median_spacing_and_anisotropy_rule_for_nnunet_budget():
    # Carlsen's grid: 3 mm slices, 2 mm pixels: the first pooling must skip nothing
    # (3 <= 2 * 2) so all axes pool; a 6 mm slice would not pool z first and gets kernel 1.
    plan = make_plan(_fingerprint((300, 336, 336), (3.0, 2.0, 2.0)), "nnunet")
    assert plan.target_spacing == (3.0, 2.0, 2.0)
    assert plan.strides[1] == (2, 2, 2)
    thick = make_plan(_fingerprint((100, 336, 336), (6.0, 2.0, 2.0)), "nnunet")
    assert thick.kernel_sizes[0] == (1, 3, 3)
    assert thick.strides[1] == (1, 2, 2)
    assert thick.filters[:2] == (32, 64)


def test_normalisation_numbers():
    plan = make_plan(_fingerprint((40, 40, 40), (4.0, 4.0, 4.0)), "cpu-small")
    image = np.array([30.0, 8.0, -5.0])[None, :, None, None] * np.ones((2, 1, 1, 1))
    image[1] = np.array([-1000.0, 40.0, 200.0])[:, None, None]
    out = normalise(image, plan)
    # PET: clip to [0, 20] then / 8 (dataset lesion mean): 20/8, 8/8, 0/8.
    assert plan.normalisation[0].scheme == PET_NORMALISATION
    np.testing.assert_allclose(out[0].ravel(), [2.5, 1.0, 0.0])
    # CT: clip to [-50, 150], z-score with mean 40, SD 20: -4.5, 0, 5.5.
    np.testing.assert_allclose(out[1].ravel(), [-4.5, 0.0, 5.5])


def test_image_zscore_pet_normalisation_uses_the_image_itself():
    plan = make_plan(
        _fingerprint((40, 40, 40), (4.0, 4.0, 4.0)), "cpu-small", pet_normalisation=IMAGE_ZSCORE
    )
    image = np.zeros((2, 1, 1, 4))
    image[0, 0, 0] = [2.0, 4.0, 6.0, 30.0]  # clipped to [0, 20]: 2, 4, 6, 20
    out = normalise(image, plan)
    # mean 8, SD sqrt((36 + 16 + 4 + 144) / 4) = sqrt(50)
    np.testing.assert_allclose(
        out[0].ravel(), (np.array([2, 4, 6, 20]) - 8) / np.sqrt(50), rtol=1e-6
    )
    with pytest.raises(ValueError, match="pet_normalisation"):
        make_plan(_fingerprint((40, 40, 40), (4.0, 4.0, 4.0)), pet_normalisation="zscore")


def test_budget_name_checked_with_suggestion():
    with pytest.raises(ValueError, match="did you mean 'cpu-small'"):
        make_plan(_fingerprint((40, 40, 40), (4.0, 4.0, 4.0)), "cpu-smal")


def test_folds_by_patient_deterministic_with_negatives_spread():
    cases = [f"p{i:02d}_{s}" for i in range(8) for s in ("a", "b")] + [f"neg{i}" for i in range(4)]
    patient_of = {c: c.split("_")[0] for c in cases if not c.startswith("neg")}
    split = make_folds(
        cases, 4, seed=1, patient_of=patient_of, negatives=[c for c in cases if c.startswith("neg")]
    )
    assert split == make_folds(
        cases, 4, seed=1, patient_of=patient_of, negatives=[c for c in cases if c.startswith("neg")]
    )
    validate_folds(split, cases)
    for fold in split["folds"]:
        val_patients = {patient_of.get(c, c) for c in fold["val"]}
        train_patients = {patient_of.get(c, c) for c in fold["train"]}
        assert not val_patients & train_patients
        # 8 lesion patients and 4 negatives over 4 folds: 2 + 1 each.
        assert sum(c.startswith("neg") for c in fold["val"]) == 1
        assert len(fold["val"]) == 2 * 2 + 1
    assert fold_of_case(split, "p03_b") == fold_of_case(split, "p03_a")
    assert make_folds(cases, 4, seed=2)["folds"] != make_folds(cases, 4, seed=1)["folds"]


def test_folds_need_enough_patients():
    with pytest.raises(ValueError, match="cannot be split into 5 folds"):
        make_folds(["a", "b", "c"], 5)
