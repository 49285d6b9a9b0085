"""generate_study: reproducibility, anatomy and uptake, lesion truth, partial volume,
noise, the liver threshold's realistic misses.

Most tests use an abdominal crop (depth 400–720 mm below the vertex, 4 mm voxels) so they
stay fast; one full default whole body is generated once for the organ checks.
"""

from __future__ import annotations

import hashlib
import json
import math

import cc3d
import numpy as np
import pytest
from scipy import ndimage, special, stats

from petseg.phantom import (
    DEFAULT_UPTAKE,
    ORGANS,
    PhantomConfig,
    generate_study,
)

ABDOMEN = PhantomConfig(axial_range_mm=(400.0, 720.0))
NOISE_FREE = PhantomConfig(axial_range_mm=(400.0, 720.0), liver_cov=(0.0, 0.0), texture_cov=0.0)


def sphere_voxels(geometry, centre_mm, radius_mm):
    """Voxels whose centres lie within ``radius_mm`` of ``centre_mm`` (plain numpy)."""
    k, j, i = np.indices(geometry.shape)
    xyz = geometry.index_to_patient(np.stack([k, j, i], axis=-1))
    return np.linalg.norm(xyz - np.asarray(centre_mm), axis=-1) <= radius_mm


@pytest.fixture(scope="module")
def whole_body():
    return generate_study(11)


@pytest.fixture(scope="module")
def abdomens():
    return [generate_study(seed, n_lesions=20, config=ABDOMEN) for seed in (1, 2, 3, 4)]


def _digest(case) -> str:
    """SHA-256 of every array (dtype, shape, bytes), the affine and the truth table."""
    h = hashlib.sha256()
    for a in (case.study.pet, case.study.ct, case.lesions, case.organs):
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(case.study.geometry.affine.tobytes())
    truth = {k: v for k, v in case.truth.items() if k != "petseg_version"}
    h.update(json.dumps(truth, sort_keys=True).encode())
    return h.hexdigest()


def test_same_seed_gives_the_recorded_study_bit_for_bit():
    # Recorded from the generator before it became a package (arms up, 3 lesions). A
    # change of this digest changes every phantom dataset: say so where it is changed.
    case = generate_study(100, spacing=(8.0, 8.0, 8.0))
    assert case.truth["patient"]["arms"] == "up" and case.truth["lesion_count"] == 3
    assert _digest(case) == "539072db0ab8dd0f6ddb71ea720f598589f88339dab4684aece0a82c392258b3"


def test_same_seed_same_arrays_other_seed_differs():
    a = generate_study(7, spacing=(6.0, 6.0, 6.0), config=ABDOMEN)
    b = generate_study(7, spacing=(6.0, 6.0, 6.0), config=ABDOMEN)
    c = generate_study(8, spacing=(6.0, 6.0, 6.0), config=ABDOMEN)
    for x, y in ((a.study.pet, b.study.pet), (a.study.ct, b.study.ct)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.lesions, b.lesions)
    np.testing.assert_array_equal(a.organs, b.organs)
    assert json.dumps(a.truth) == json.dumps(b.truth)
    assert a.truth["seed"] == 7
    assert not np.array_equal(a.study.pet, c.study.pet)


def test_generator_argument_is_used_as_given():
    a = generate_study(np.random.default_rng(5), config=ABDOMEN)
    b = generate_study(np.random.default_rng(5), config=ABDOMEN)
    np.testing.assert_array_equal(a.study.pet, b.study.pet)
    assert a.truth["seed"] is None


def test_default_grid_is_4mm_lps_centred(whole_body):
    g = whole_body.study.geometry
    # field 360 x 560 mm transaxial, 960 mm axial (-20..940 mm below the vertex), / 4 mm
    assert g.shape == (240, 90, 140)
    assert g.spacing == (4.0, 4.0, 4.0)
    centre = g.index_to_patient((np.asarray(g.shape) - 1) / 2)
    np.testing.assert_allclose(centre, 0.0, atol=1e-9)
    # axis 2 -> +x (left), axis 1 -> +y (posterior), axis 0 -> +z (superior)
    np.testing.assert_allclose(g.affine[:3, :3], [[0, 0, 4], [0, 4, 0], [4, 0, 0]])
    assert whole_body.study.pet.dtype == np.float32
    assert whole_body.lesions.dtype == np.int32
    assert whole_body.organs.dtype == np.uint8
    assert whole_body.study.provenance["synthetic"] is True


def test_all_organs_present_and_in_anatomical_order(whole_body):
    organs, g = whole_body.organs, whole_body.study.geometry
    present = set(np.unique(organs).tolist())
    assert present == set(ORGANS), sorted(set(ORGANS) - present)

    def z_mm(name):
        k = np.nonzero(organs == {v: k for k, v in ORGANS.items()}[name])[0]
        return float(g.index_to_patient([k.mean(), 0, 0])[2])

    # head above neck above thorax above abdomen above pelvis (z superior)
    order = ["brain", "thyroid", "lungs", "liver", "kidneys", "bladder"]
    heights = [z_mm(n) for n in order]
    assert heights == sorted(heights, reverse=True), dict(zip(order, heights, strict=True))

    def x_mm(name):
        i = np.nonzero(organs == {v: k for k, v in ORGANS.items()}[name])[2]
        return float(g.index_to_patient([0, 0, i.mean()])[0])

    assert x_mm("liver") < 0 < x_mm("spleen")  # liver on the patient's right (-x in LPS)


def test_organ_uptake_measured_on_noisy_image_matches_literature_ranges(whole_body):
    """Mean SUV of each organ's interior (> 6 mm, about one FWHM, from its border, > 12 mm
    from any lesion) on the noisy image equals the drawn value m, raised where noise is clipped at
    0: for Gaussian noise of SD s = sqrt(k·m), E[max(0, X)] = m·Φ(m/s) + s·φ(m/s)
    (k from truth["noise"]). The drawn values lie in the literature ranges of docs/phantom.md."""
    pet, organs, g = whole_body.study.pet, whole_body.organs, whole_body.study.geometry
    truth = whole_body.truth["organs"]
    k = whole_body.truth["noise"]["k_suv"]
    literature = {
        "spleen": (15, 30),
        "kidneys": (10, 20),
        "adrenals": (8, 15),
        "pituitary": (5, 10),
        "liver": (5, 9),
        "bladder": (5, 30),
        "bowel": (2, 4),
        "bone_marrow": (1, 2),
        "lungs": (0.3, 0.6),
        "soft_tissue": (0.5, 1.0),
        "brain": (0.1, 0.3),
    }
    for name, (lo, hi) in literature.items():
        assert lo <= truth[name]["suv_true"] <= hi, name
    checked = ["spleen", "kidneys", "liver", "bladder", "bowel", "bone_marrow", "lungs"]
    checked += ["soft_tissue", "fat", "brain", "stomach", "heart_and_aorta"]
    boxes = ndimage.find_objects(organs)
    far_from_lesions = ndimage.distance_transform_edt(whole_body.lesions == 0, sampling=g.spacing)
    for name in checked:
        box = boxes[truth[name]["label"] - 1]
        mask = np.pad(organs[box] == truth[name]["label"], 1)
        depth = ndimage.distance_transform_edt(mask, sampling=g.spacing)[1:-1, 1:-1, 1:-1]
        interior = (depth > 6.0) & (far_from_lesions[box] > 12.0)
        assert interior.sum() > 20, name
        m = truth[name]["suv_true"]
        s = math.sqrt(k * m)
        expected = m * stats.norm.cdf(m / s) + s * stats.norm.pdf(m / s)
        assert float(pet[box][interior].mean()) == pytest.approx(expected, rel=0.06), name


def test_ct_numbers(whole_body):
    ct, organs = whole_body.study.ct, whole_body.organs
    expected = {"lungs": -850, "fat": -100, "soft_tissue": 40, "liver": 60, "bladder": 10}
    for name, hu in expected.items():
        median = float(np.median(ct[organs == whole_body.truth["organs"][name]["label"]]))
        assert median == pytest.approx(hu, abs=25), name
    assert float(np.median(ct[organs == 0])) == pytest.approx(-1000, abs=5)
    bone = ct[organs == whole_body.truth["organs"]["bone_cortical"]["label"]]
    assert 400 <= float(np.median(bone)) <= 1000


def test_lesion_truth_matches_labels(abdomens, whole_body):
    for case in [*abdomens, whole_body]:
        g = case.study.geometry
        lesions = case.truth["lesions"]
        n = len(lesions)
        assert 0 <= n <= 40 and case.truth["lesion_count"] == n
        assert set(np.unique(case.lesions).tolist()) == set(range(n + 1))
        counts = np.bincount(case.lesions.ravel(), minlength=n + 1)
        for lesion in lesions:
            label = lesion["label"]
            assert lesion["voxels"] == counts[label] >= 1
            assert lesion["volume_ml"] == pytest.approx(counts[label] * g.voxel_volume_ml)
            centroid = g.index_to_patient(np.argwhere(case.lesions == label).mean(axis=0))
            np.testing.assert_allclose(lesion["centroid_mm"], centroid, atol=1e-3)
            assert 4.9 <= lesion["diameter_mm"] <= 40.1
        # lesions never touch: 26-connected components are exactly the labels
        assert cc3d.connected_components(case.lesions > 0, connectivity=26).max() == n


def test_drawn_lesion_counts_stay_within_0_to_40():
    counts = [
        generate_study(s, spacing=(8.0, 8.0, 8.0), config=ABDOMEN).truth["lesion_count"]
        for s in range(20, 26)
    ]
    assert all(0 <= c <= 40 for c in counts) and len(set(counts)) > 1


def test_negative_control_has_no_lesions():
    case = generate_study(3, negative_control=True, config=ABDOMEN)
    assert not case.lesions.any()
    assert case.truth["negative_control"] is True and case.truth["lesions"] == []
    with pytest.raises(ValueError, match="negative control"):
        generate_study(3, negative_control=True, n_lesions=2, config=ABDOMEN)


def test_reference_spheres_lie_in_normal_liver_and_spleen(abdomens):
    for case in abdomens:
        g = case.study.geometry
        for organ in ("liver", "spleen"):
            ref = case.truth["reference"][organ]
            assert ref["radius_mm"] == 15.0
            sphere = sphere_voxels(g, ref["centre_mm"], 15.0)
            assert np.all(case.organs[sphere] == case.truth["organs"][organ]["label"]), organ
            assert not case.lesions[sphere].any()


def test_liver_noise_level(abdomens):
    """Liver CoV in the 3 cm reference sphere on the noisy 4 mm image: 10-15 % noise
    target combined with 4 % texture, so about 0.10-0.16; allow sampling scatter."""
    for case in abdomens:
        values = case.study.pet[
            sphere_voxels(case.study.geometry, case.truth["reference"]["liver"]["centre_mm"], 15)
        ]
        cov = values.std(ddof=1) / values.mean()
        assert 0.08 <= cov <= 0.19


def test_liver_threshold_detects_most_lesions_but_misses_some(abdomens):
    """Carlsen threshold 1.5·mean + 2·SD in the suggested liver sphere (plain numpy):
    most lesions' SUVmax exceed it, and some low-uptake lesions do not."""
    above = below = 0
    for case in abdomens:
        pet, g = case.study.pet, case.study.geometry
        values = pet[sphere_voxels(g, case.truth["reference"]["liver"]["centre_mm"], 15.0)]
        threshold = 1.5 * values.mean() + 2 * values.std(ddof=1)
        assert threshold == pytest.approx(
            case.truth["reference"]["liver"]["threshold_suv"], rel=1e-4
        )
        suv_max = ndimage.maximum(pet, case.lesions, np.arange(1, case.lesions.max() + 1))
        above += int(np.sum(suv_max > threshold))
        below += int(np.sum(suv_max <= threshold))
    assert 0.5 <= above / (above + below) < 1.0
    assert below >= 1


def test_partial_volume_follows_the_gaussian_psf():
    """Noise-free image. A ball of radius r blurred by a Gaussian of SD σ keeps, at its
    centre, the fraction erf(a/√2) − √(2/π)·a·exp(−a²/2) of its value (a = r/σ;
    σ = FWHM/2.3548, FWHM = √(5.5² + 2²) mm). The ball of radius (smallest semi-axis −
    distance from the lesion centre to the nearest voxel centre) around that voxel lies
    inside the lesion, so the voxel keeps at least that fraction of the true SUV (less
    0.05 for the 4 mm sampling of the blur); lesions >= 20 mm recover fully."""
    case = generate_study(12, n_lesions=30, config=NOISE_FREE)
    g, pet = case.study.geometry, case.study.pet
    fwhm = case.truth["resolution"]["effective_fwhm_mm"]
    assert fwhm == pytest.approx(5.8523, abs=1e-4)  # √(5.5² + 2²) = √34.25
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    small = []
    for lesion in case.truth["lesions"]:
        index = np.rint(g.patient_to_index(lesion["centre_mm"])).astype(int)
        offset = np.linalg.norm(g.index_to_patient(index) - lesion["centre_mm"])
        a = max(min(lesion["semi_axes_mm"]) - offset, 0.0) / sigma
        recovery = special.erf(a / math.sqrt(2)) - math.sqrt(2 / math.pi) * a * math.exp(-a * a / 2)
        measured = pet[tuple(index)] / lesion["suv_true"]
        assert measured >= recovery - 0.05, lesion
        if lesion["diameter_mm"] >= 20:
            assert measured == pytest.approx(1.0, abs=0.03), lesion
        if lesion["diameter_mm"] <= 7:
            small.append(lesion["suv_max_image"] / lesion["suv_true"])
    assert small and max(small) < 0.95


def test_clinical_2x2x3_grid_on_a_short_crop():
    config = PhantomConfig(axial_range_mm=(480.0, 560.0))
    case = generate_study(2, spacing=(3.0, 2.0, 2.0), n_lesions=10, config=config)
    g = case.study.geometry
    assert g.shape == (27, 180, 280) and g.spacing == (3.0, 2.0, 2.0)
    assert g.voxel_volume_ml == pytest.approx(0.012)  # the paper's 2x2x3 mm = 0.012 mL
    counts = np.bincount(case.lesions.ravel())
    for lesion in case.truth["lesions"]:
        assert lesion["volume_ml"] == pytest.approx(counts[lesion["label"]] * 0.012)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="spacing"):
        generate_study(1, spacing=(0.0, 4.0, 4.0))
    with pytest.raises(ValueError, match="n_lesions"):
        generate_study(1, n_lesions=41)
    with pytest.raises(TypeError, match="seed"):
        generate_study("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="uptake lacks"):
        PhantomConfig(uptake={"liver": (5.0, 9.0)})
    assert set(DEFAULT_UPTAKE) == set(ORGANS.values()) - {"background"}
