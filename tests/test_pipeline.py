"""The threshold pipeline, body contour, post-processing and seeded editing on a toy study."""

import numpy as np
import pytest

from petseg.body import body_mask
from petseg.edit import add_lesion_by_seed
from petseg.pipeline import SegmentParams, segment_study
from petseg.postprocess import postprocess


def liver_sphere(study):
    # centre of the liver block (k=10, j=17, i=13 -> 4 mm voxels), radius 12 mm
    x, y, z = study.geometry.index_to_patient((10, 17, 13))
    return (x, y, z, 12.0)


def test_body_mask_covers_cylinder_not_corner(toy_study):
    study, _ = toy_study
    body = body_mask(study.pet, study.geometry)
    assert body[20, 20, 20] and body[0, 20, 20]
    assert not body[20, 2, 2]  # the hot blob in the corner is not the largest component


def test_liver_pipeline_threshold_and_lesions(toy_study):
    study, _ = toy_study
    result = segment_study(study, SegmentParams(method="liver", ref_sphere=liver_sphere(study)))
    ref = result.reference
    # expected threshold from the VOI's own values (independent recomputation)
    from petseg.reference import sphere_mask

    mask = sphere_mask(study.geometry, liver_sphere(study)[:3], 12.0)
    values = study.pet[mask].astype(float)
    assert ref["mean"] == pytest.approx(values.mean())
    assert result.threshold_suv == pytest.approx(1.5 * values.mean() + 2 * values.std(ddof=1))
    # threshold ~ 1.5*6 + 2*1 = 11 -> the 20 and 12 SUV lesions are found, the 9 SUV one is not;
    # the single hot voxel (< 0.1 mL) and the outside blob are removed
    assert 10.5 < result.threshold_suv < 11.5
    assert result.patient.lesion_count == 2
    assert sorted(round(s.suv_max) for s in result.lesions) == [12, 20]
    assert result.parameters["min_voxels"] == 2  # 0.1 mL / 0.064 mL -> 2 voxels
    for lesion in result.lesions:
        assert lesion.voxels == 27 and lesion.volume_ml == pytest.approx(27 * 0.064)


def test_spleen_formula_used(toy_study):
    study, _ = toy_study
    result = segment_study(study, SegmentParams(method="spleen", ref_sphere=liver_sphere(study)))
    ref = result.reference
    assert result.threshold_suv == pytest.approx(0.67 * ref["mean"] + 2 * ref["sd"])
    assert ref["organ"] == "spleen"


def test_fixed_threshold_finds_all_three(toy_study):
    study, _ = toy_study
    result = segment_study(study, SegmentParams(method="fixed", threshold=8.0))
    assert result.patient.lesion_count == 3
    assert result.reference is None


def test_body_off_keeps_outside_blob(toy_study):
    study, _ = toy_study
    result = segment_study(study, SegmentParams(method="fixed", threshold=8.0, body=False))
    assert result.patient.lesion_count == 4


def test_automatic_reference_refused_without_a_liver_names_the_fix(toy_study):
    study, _ = toy_study  # a 112 mm cylinder: no trunk, so no liver to place the VOI in
    with pytest.raises(ValueError, match=r"no plausible liver.*--ref-sphere"):
        segment_study(study, SegmentParams(method="liver"))


def test_bad_method_suggests():
    with pytest.raises(ValueError, match="did you mean 'liver'"):
        SegmentParams(method="livr")


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"method": "fixed", "threshold": float("nan")}, "positive SUV"),
        ({"method": "fixed", "threshold": float("inf")}, "positive SUV"),
        ({"method": "fixed", "threshold": -2.0}, "positive SUV"),
        ({"method": "fixed", "threshold": 4.0, "min_volume_ml": float("nan")}, "finite volume"),
        ({"method": "fixed", "threshold": 4.0, "min_volume_ml": float("inf")}, "finite volume"),
        ({"method": "fixed", "threshold": 4.0, "min_volume_ml": -0.1}, "finite volume"),
        ({"method": "fixed", "threshold": 4.0, "body_threshold_suv": float("nan")}, "body_thr"),
        ({"method": "percent_max", "percent_max": float("nan")}, r"\(0, 1\)"),
        ({"method": "liver", "ref_sphere": (0.0, 0.0, float("nan"), 15.0)}, "finite"),
        ({"method": "liver", "ref_sphere": (0.0, 0.0, 0.0, -15.0)}, "radius"),
        ({"method": "liver", "threshold": 4.0}, "does not apply to method 'liver'"),
        ({"method": "spleen", "threshold": 4.0}, "drop --threshold"),
        ({"method": "fixed", "threshold": 4.0, "ref_sphere": (0, 0, 0, 15)}, "does not apply"),
        ({"method": "fixed"}, "needs a positive SUV threshold"),
        ({"method": "liver", "ref_units": "cm"}, "ref_units"),
    ],
)
def test_impossible_or_inapplicable_parameters_are_refused(params, match):
    with pytest.raises(ValueError, match=match):
        SegmentParams(**params)


def test_a_reference_mask_does_not_apply_to_a_fixed_threshold(toy_study):
    study, _ = toy_study
    with pytest.raises(ValueError, match="reference mask does not apply"):
        segment_study(
            study,
            SegmentParams(method="fixed", threshold=8.0),
            reference_mask=np.ones(study.geometry.shape, bool),
        )


def test_a_negative_reference_threshold_is_refused(toy_study):
    study, _ = toy_study
    study.pet[5:15, 12:22, 8:18] = -3.0  # a "liver" that no SUV image has
    params = SegmentParams(method="liver", ref_sphere=liver_sphere(study), body=False)
    with pytest.raises(ValueError, match="not a positive SUV"):
        segment_study(study, params)


def test_postprocess_removes_outside_and_small(toy_study):
    study, _ = toy_study
    mask = np.zeros(study.geometry.shape, bool)
    mask[20, 1:4, 1:4] = True  # outside the body
    mask[35, 20, 20] = True  # one voxel, 0.064 mL
    mask[10:13, 20:23, 20:23] = True  # 27 voxels inside
    labels = postprocess(mask, study.pet, study.geometry)
    assert labels.max() == 1 and np.count_nonzero(labels) == 27
    excluded = postprocess(mask, study.pet, study.geometry, exclusions=[mask])
    assert excluded.max() == 0


def test_add_lesion_by_seed_methods(toy_study):
    study, info = toy_study
    labels = np.zeros(study.geometry.shape, np.int32)
    k, j, i = info["lesion_centres"][3]  # the 9 SUV lesion the liver threshold missed
    out, new = add_lesion_by_seed(
        labels, study.pet, study.geometry, (k, j, i), method="fixed", value=5.0
    )
    assert new == 1 and np.count_nonzero(out == 1) == 27
    out2, _ = add_lesion_by_seed(
        labels, study.pet, study.geometry, (k, j + 1, i), method="percent_max"
    )
    assert np.count_nonzero(out2) == 27  # 40 % of 9 = 3.6 > background 1
    ref = {"mean": 6.0, "sd": 1.0}
    with pytest.raises(ValueError, match="not above the threshold"):
        add_lesion_by_seed(
            labels, study.pet, study.geometry, (k, j, i), method="liver", reference=ref
        )
    with pytest.raises(ValueError, match="inside existing lesion 1"):
        add_lesion_by_seed(out, study.pet, study.geometry, (k, j, i), method="fixed", value=5.0)
    with pytest.raises(ValueError, match="outside the image"):
        add_lesion_by_seed(labels, study.pet, study.geometry, (99, 0, 0), method="fixed", value=5.0)


def test_organ_map_removes_physiological_uptake_in_the_pipeline(toy_study):
    from petseg.organs import OrganMap
    from petseg.tracers import TracerChoice, get_tracer

    study, info = toy_study
    organs = np.zeros(study.geometry.shape, np.uint8)
    k, j, i = info["lesion_centres"][1]  # the SUV 20 lesion, 27 voxels
    organs[k - 1 : k + 2, j - 1 : j + 2, i - 1 : i + 1] = 1  # 18 of its 27 voxels (67 %)
    organ_map = OrganMap(organs, {1: "kidney_left"}, study.geometry)
    tracer = TracerChoice(get_tracer("dotatate"), "test", None)
    params = SegmentParams(method="fixed", threshold=8.0)
    result = segment_study(study, params, organs=organ_map, tracer=tracer)
    assert result.patient.lesion_count == 2  # removed whole, not trimmed to 9 voxels
    assert sorted(round(s.suv_max) for s in result.lesions) == [9, 12]
    assert result.physiological is not None
    assert np.count_nonzero(result.physiological.removed) == 27
    [row] = result.extra["organs"]["removed"]
    assert (row["organ"], row["rule"], row["voxels"]) == ("kidneys", "inside", 27)
    assert row["suv_max"] == pytest.approx(20.0)
    # 9 of 27 voxels (33 %) in the kidney: the lesion is cut there, 18 voxels kept
    organs[:] = 0
    organs[k - 1 : k + 2, j - 1 : j + 2, i - 1] = 1
    result = segment_study(study, params, organs=organ_map, tracer=tracer)
    assert result.patient.lesion_count == 3
    assert sorted(s.voxels for s in result.lesions) == [18, 27, 27]
    assert result.extra["organs"]["removed"][0]["rule"] == "cut"
    # the same voxels in the liver, which has no physiological DOTATATE uptake: kept whole
    liver_map = OrganMap(organs, {1: "liver"}, study.geometry)
    result = segment_study(study, params, organs=liver_map, tracer=tracer)
    assert [s.voxels for s in result.lesions] == [27, 27, 27]
    assert result.extra["organs"]["organs_missing_from_map"] == [
        "spleen",
        "kidneys",
        "adrenal_glands",
        "urinary_bladder",
        "pituitary_gland",
    ]
    with pytest.raises(ValueError, match="needs both an organ map"):
        segment_study(study, params, organs=organ_map)


def test_segment_cli_on_a_phantom_case_folder(tmp_path):
    import json

    from petseg.cli import main
    from petseg.phantom import write_dataset

    dataset = write_dataset(tmp_path / "ds", n=1, seed=3, spacing=(8.0, 8.0, 8.0), progress=False)
    case = next(p for p in sorted(dataset.iterdir()) if p.is_dir())
    truth = json.loads((case / "truth.json").read_text())
    x, y, z = truth["reference"]["liver"]["centre_mm"]
    out = tmp_path / "out"
    code = main(["segment", str(case), "--ref-sphere", f"{x},{y},{z},15", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["synthetic"] is True and "SYNTHETIC" in report["note"]
    assert report["threshold_suv"] > 0 and report["patient_id"] == case.name
    assert (out / "ct.nii.gz").is_file()  # the case folder's CT came along
    assert main(["segment", str(case), "--ref-sphere", f"{x},{y},{z},15", "--out", str(out)]) == 2


def test_segment_cli_with_an_organ_map_and_a_tracer(tmp_path, capsys):
    import hashlib
    import json

    from petseg.cli import main
    from petseg.io.nifti import read_nifti
    from petseg.phantom import write_dataset

    dataset = write_dataset(
        tmp_path / "ds", n=1, seed=3, spacing=(8.0, 8.0, 8.0), dicom=True, progress=False
    )
    case = next(p for p in sorted(dataset.iterdir()) if p.is_dir())
    inputs = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(case.rglob("*.*"))}
    truth = json.loads((case / "truth.json").read_text())
    x, y, z = truth["reference"]["liver"]["centre_mm"]
    sphere = ["--ref-sphere", f"{x},{y},{z},15"]
    organs = ["--organs", str(case / "organs.nii.gz")]  # names: truth.json's organ_legend
    out = tmp_path / "out"
    # NIfTI input names no radiopharmaceutical: the tracer is the user's explicit choice
    assert main(["segment", str(case), *sphere, *organs, "--out", str(out)]) == 2
    assert "the PET is not DICOM); pass --tracer dotatate|fdg|psma" in capsys.readouterr().err
    assert (
        main(["segment", str(case), *sphere, *organs, "--tracer", "dotatat", "--out", str(out)])
        == 2
    )
    assert "did you mean 'dotatate'" in capsys.readouterr().err
    assert main(["segment", str(case), *sphere, "--tracer", "fdg", "--out", str(out)]) == 2
    assert "give the organ map with --organs" in capsys.readouterr().err
    # TotalSegmentator cannot run here (not installed, or no weights): one line, nothing written
    ts = ["--organs", "totalsegmentator", "--tracer", "dotatate"]
    assert main(["segment", str(case), *sphere, *ts, "--out", str(out)]) == 2
    message = capsys.readouterr().err
    assert "pip install 'petseg[organs]'" in message or "totalseg_download_weights" in message
    assert not out.exists()

    assert (
        main(["segment", str(case), *sphere, *organs, "--tracer", "DOTATATE", "--out", str(out)])
        == 0
    )
    assert "removed as dotatate organ uptake" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    record = report["organs"]
    assert record["tracer"]["source"] == "--tracer" and record["tracer"]["name"] == "dotatate"
    assert record["organ_map"]["names"].endswith("truth.json")
    assert record["organs_used"] == [
        "spleen",
        "kidneys",
        "adrenal_glands",
        "urinary_bladder",
        "pituitary_gland",
    ]
    assert {"removed.nii.gz", "removed.csv", "organ_map.nii.gz"} <= set(report["outputs"])
    removed, _ = read_nifti(out / "removed.nii.gz")
    lesions, _ = read_nifti(out / "lesions.nii.gz")
    organ_labels, _ = read_nifti(out / "organ_map.nii.gz")
    rows = (out / "removed.csv").read_text().splitlines()
    assert rows[0].startswith("label,organ,rule,fraction_in_organs,voxels,volume_ml")
    assert len(rows) - 1 == len(record["removed"]) == int(removed.max()) > 0
    assert "spleen" in {row["organ"] for row in record["removed"]}
    assert not np.any((removed > 0) & (lesions > 0))
    legend = {int(k): v for k, v in record["organ_map"]["labels"].items()}
    spleen = organ_labels == next(k for k, v in legend.items() if v == "spleen")
    assert not np.any(spleen & (lesions > 0))  # nothing of the lesion map is left in the spleen
    # DICOM input: the tracer comes from the PET's Radiopharmaceutical ("Cu-64 DOTATATE")
    out_dicom = tmp_path / "out_dicom"
    assert main(["segment", str(case / "dicom"), *sphere, *organs, "--out", str(out_dicom)]) == 0
    tracer = json.loads((out_dicom / "report.json").read_text())["organs"]["tracer"]
    assert (tracer["name"], tracer["source"]) == (
        "dotatate",
        "DICOM Radiopharmaceutical Information",
    )
    assert tracer["dicom_radiopharmaceutical"]["name"] == "Cu-64 DOTATATE"
    removed_dicom, _ = read_nifti(out_dicom / "removed.nii.gz")
    np.testing.assert_array_equal(removed_dicom > 0, removed > 0)
    # the organ map and every input file are untouched
    assert inputs == {
        p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(case.rglob("*.*"))
    }


@pytest.fixture(scope="module")
def phantom_case(tmp_path_factory):
    from petseg.phantom import write_dataset

    root = tmp_path_factory.mktemp("autoref")
    dataset = write_dataset(root / "ds", n=1, seed=3, spacing=(4.0, 4.0, 4.0), progress=False)
    return next(p for p in sorted(dataset.iterdir()) if p.is_dir())


@pytest.mark.parametrize("with_ct", [True, False], ids=["ct", "pet-only"])
def test_segment_cli_places_the_reference_without_a_coordinate(
    phantom_case, tmp_path, capsys, with_ct
):
    import json
    import shutil

    from petseg.cli import main
    from petseg.io.nifti import read_nifti
    from petseg.reference import sphere_mask

    case = tmp_path / "case"
    shutil.copytree(phantom_case, case)
    if not with_ct:
        (case / "ct.nii.gz").unlink()
    out = tmp_path / "out"
    assert main(["segment", str(case), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    source = "CT" if with_ct else "PET"
    assert f"reference automatic liver sphere ({source}) at (" in printed
    report = json.loads((out / "report.json").read_text())
    automatic = report["reference"]["automatic"]
    assert automatic["source"] == source and automatic["converged"]
    assert 0 <= automatic["confidence"] <= 1 and automatic["iterations"] >= 2
    assert automatic["organ_detection"]["chosen"]["failed"] == []
    organs, geometry = read_nifti(case / "organs.nii.gz")
    lesions, _ = read_nifti(case / "lesions.nii.gz")
    sphere = sphere_mask(geometry, tuple(automatic["centre_mm"]), automatic["radius_mm"])
    assert (organs[sphere] == 9).all() and not lesions[sphere].any()  # 9: liver
    truth = json.loads((case / "truth.json").read_text())["reference"]["liver"]
    assert report["threshold_suv"] == pytest.approx(truth["threshold_suv"], rel=0.05)


def test_reference_sphere_and_mask_together_is_one_line(phantom_case, tmp_path, capsys):
    from petseg.cli import main

    code = main(
        [
            "segment",
            str(phantom_case),
            "--ref-sphere",
            "0,0,0,15",
            "--ref-mask",
            str(phantom_case / "organs.nii.gz"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "give either a reference sphere (--ref-sphere) or a reference mask (--ref-mask)" in err


def test_organ_map_without_liver_is_refused(toy_study):
    from petseg.autoref import NoReferenceError
    from petseg.organs import organ_map_from_labels
    from petseg.tracers import TracerChoice, get_tracer

    study, info = toy_study
    labels = np.zeros(study.geometry.shape, np.uint8)
    labels[info["liver_slices"]] = 1
    spleen_only = organ_map_from_labels(labels, study.geometry, {1: "spleen"})
    tracer = TracerChoice(get_tracer("dotatate"), "test", None)
    with pytest.raises(NoReferenceError, match=r"the organ map has no liver.*--ref-sphere"):
        segment_study(study, organs=spleen_only, tracer=tracer)


def test_study_without_liver_is_refused_on_the_command_line(sts_study, tmp_path, capsys):
    from petseg.cli import main

    code = main(["segment", str(sts_study("STS_019")), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "no plausible liver in the field of view" in err and "--ref-sphere" in err
    assert not (tmp_path / "o").exists()


def test_segment_cli_places_the_reference_in_the_organ_maps_liver(phantom_case, tmp_path, capsys):
    import json

    from petseg.cli import main
    from petseg.io.nifti import read_nifti
    from petseg.reference import sphere_mask

    organs = phantom_case / "organs.nii.gz"  # names from truth.json's organ_legend
    out = tmp_path / "out"
    argv = ["segment", str(phantom_case), "--organs", str(organs), "--tracer", "dotatate"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "reference automatic liver sphere (organ map) at (" in capsys.readouterr().out
    automatic = json.loads((out / "report.json").read_text())["reference"]["automatic"]
    assert automatic["source"] == "organ map" and automatic["organ_detection"] is None
    labels, geometry = read_nifti(organs)
    sphere = sphere_mask(geometry, tuple(automatic["centre_mm"]), automatic["radius_mm"])
    assert (labels[sphere] == 9).all()  # 9: liver
