"""petseg.nnunet without nnU-Net: export format, environment scoping, importer, install hint.

These run in any environment (the export and the importer do not need nnunetv2).
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle

import numpy as np
import pytest

from petseg.io.nifti import read_nifti, write_nifti
from petseg.nnunet import environment
from petseg.nnunet.export import PET_NORMALISATIONS, export_dataset
from petseg.nnunet.importer import (
    check_properties,
    import_nnunet_predictions,
    read_nnunet_probabilities,
    read_properties,
    segmentation_from_probabilities,
)
from petseg.study import Geometry, Study

HAS_NNUNET = importlib.util.find_spec("nnunetv2") is not None


def _dataset(tmp_path):
    """Two hand-made cases on a 6×8×10 grid of 2×3×4 mm; case b is a negative control."""
    geometry = Geometry.from_spacing((6, 8, 10), (2.0, 3.0, 4.0), origin=(-10.0, 5.0, 40.0))
    root = tmp_path / "ds"
    for case, label_value in (("a", 3), ("b", 0)):
        pet = np.full(geometry.shape, 1.0, np.float32)
        pet[2:4, 3:5, 4:6] = 8.0
        ct = np.zeros(geometry.shape, np.int16)
        labels = np.zeros(geometry.shape, np.int32)
        labels[2:4, 3:5, 4:6] = label_value
        (root / case).mkdir(parents=True)
        write_nifti(root / case / "pet.nii.gz", pet, geometry)
        write_nifti(root / case / "ct.nii.gz", ct, geometry)
        write_nifti(root / case / "lesions.nii.gz", labels, geometry)
    (root / "dataset.json").write_text(json.dumps({"cases": ["a", "b"], "synthetic": True}))
    return root, geometry


def test_export_layout_channels_and_labels(tmp_path):
    root, geometry = _dataset(tmp_path)
    folder = export_dataset(root, tmp_path / "raw", dataset_id=7, name="T", pet_normalisation="ct")
    assert folder.name == "Dataset007_T"
    info = json.loads((folder / "dataset.json").read_text())
    # channel 0 named "CT" selects nnU-Net's CTNormalization for the PET ("ct" choice)
    assert info["channel_names"] == {"0": "CT", "1": "CT"}
    assert info["labels"] == {"background": 0, "lesion": 1}
    assert info["numTraining"] == 2 and info["file_ending"] == ".nii.gz"
    assert info["petseg"]["pet_normalisation"] == "ct"
    assert info["petseg"]["negative_controls"] == ["b"]
    pet, grid = read_nifti(folder / "imagesTr" / "a_0000.nii.gz")
    source, _ = read_nifti(root / "a" / "pet.nii.gz")
    assert grid.same_grid(geometry) and np.array_equal(pet, source)
    label, _ = read_nifti(folder / "labelsTr" / "a.nii.gz")
    assert label.dtype == np.uint8 and set(np.unique(label)) == {0, 1}
    assert int(label.sum()) == 2 * 2 * 2  # the 2×2×2 block written above, label 3 → 1
    # the default keeps nnU-Net's per-case z-score (channel "PET")
    other = export_dataset(root, tmp_path / "raw", dataset_id=8, name="T")
    assert json.loads((other / "dataset.json").read_text())["channel_names"]["0"] == "PET"
    with pytest.raises(FileExistsError, match="already exists"):
        export_dataset(root, tmp_path / "raw", dataset_id=8, name="T")
    with pytest.raises(FileExistsError, match="already uses nnU-Net dataset id 8"):
        export_dataset(root, tmp_path / "raw", dataset_id=8, name="Other")
    with pytest.raises(ValueError, match="zscore"):
        export_dataset(root, tmp_path / "raw", dataset_id=9, pet_normalisation="suv")


def test_cli_choices_match_library():
    from petseg.cli.nnunet import PET_NORMALISATION_CHOICES

    assert set(PET_NORMALISATION_CHOICES) == set(PET_NORMALISATIONS)


def test_environment_is_scoped_and_restored(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", "/elsewhere/raw")
    monkeypatch.delenv("nnUNet_results", raising=False)
    before = dict(os.environ)
    with environment.nnunet_environment(tmp_path, data_workers=0) as values:
        assert os.environ["nnUNet_raw"] == str(tmp_path.resolve() / "nnUNet_raw")
        assert os.environ["nnUNet_results"] == values["nnUNet_results"]
        assert os.environ["nnUNet_n_proc_DA"] == "0"
    assert dict(os.environ) == before
    with pytest.raises(RuntimeError), environment.nnunet_environment(tmp_path):
        raise RuntimeError("boom")
    assert dict(os.environ) == before


@pytest.mark.skipif(HAS_NNUNET, reason="checks the message shown when nnunetv2 is absent")
def test_without_nnunet_the_error_says_how_to_install():
    with pytest.raises(ImportError, match=r"pip install 'petseg\[nnunet\]'"):
        environment.require_nnunet()


def test_imported_maps_go_through_the_engines_ensemble():
    """Two folds' two-class softmax on a planted study: lesion A (27 voxels) p(lesion) 0.2
    and 0.7 (mean 0.45: not segmented), lesion B 0.9 and 0.5 (mean 0.7: segmented)."""
    shape = (24, 32, 32)
    geometry = Geometry.from_spacing(shape, (4.0, 4.0, 4.0))
    pet = np.zeros(shape, np.float32)
    pet[4:20, 8:24, 8:24] = 1.0  # body
    study = Study(pet, geometry, patient_id="planted")
    lesion = [np.zeros(shape, np.float32), np.zeros(shape, np.float32)]
    for p, a, b in zip(lesion, (0.2, 0.7), (0.9, 0.5), strict=True):
        p[6:9, 10:13, 10:13] = a
        p[14:17, 16:19, 16:19] = b
    maps = [np.stack([1 - p, p]) for p in lesion]
    prediction = segmentation_from_probabilities(study, maps, {"engine": "test"})
    assert prediction.result.patient.lesion_count == 1
    assert prediction.result.labels[15, 17, 17] == 1 and prediction.result.labels[7, 11, 11] == 0
    np.testing.assert_allclose(prediction.probability[7, 11, 11], 0.45, atol=1e-6)
    [flag] = prediction.result.lesion_uncertainty or []
    assert (flag.folds_segmenting, flag.review_first) == (2, False)  # 0.9 and 0.5 both ≥ 0.5
    with pytest.raises(ValueError, match="not on the PET grid"):
        segmentation_from_probabilities(study, [maps[0][:, :, :, :2]], {})


def _sitk_properties(geometry):
    """The properties nnU-Net's SimpleITKIO records (spacing z,y,x; ITK origin/direction)."""
    return {
        "sitk_stuff": {
            "spacing": tuple(reversed(geometry.spacing)),
            "origin": geometry.origin,
            "direction": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        },
        "spacing": list(geometry.spacing),
        "shape_before_cropping": geometry.shape,
        "bbox_used_for_cropping": [[0, n] for n in geometry.shape],
    }


def test_properties_checked_against_the_grid(tmp_path):
    geometry = Geometry.from_spacing((4, 5, 6), (2.0, 3.0, 4.0), origin=(1.0, 2.0, 3.0))
    good = _sitk_properties(geometry)
    check_properties(good, geometry, "p.pkl")
    moved = _sitk_properties(
        Geometry.from_spacing((4, 5, 6), (2.0, 3.0, 4.0), origin=(1.0, 2.0, 9.0))
    )
    with pytest.raises(ValueError, match=r"p\.pkl: origin"):
        check_properties(moved, geometry, "p.pkl")
    with pytest.raises(ValueError, match="spacing"):
        check_properties({**good, "spacing": [3.0, 3.0, 4.0]}, geometry, "p.pkl")
    # a pickle that would call os.system is refused, not run
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'echo hacked'\ntR.")
    with pytest.raises(ValueError, match=r"refusing to load os\.system"):
        read_properties(evil)
    ok = tmp_path / "ok.pkl"
    ok.write_bytes(pickle.dumps({**good, "arr": np.arange(3)}))
    assert read_properties(ok)["arr"].tolist() == [0, 1, 2]


def test_import_probabilities_and_labels(tmp_path):
    geometry = Geometry.from_spacing((10, 12, 14), (4.0, 4.0, 4.0))
    pet = np.full(geometry.shape, 1.0, np.float32)
    pet[3:7, 4:8, 5:9] = 6.0
    study = Study(pet, geometry, patient_id="p", provenance={"synthetic": True})
    lesion = np.zeros(geometry.shape, bool)
    lesion[3:7, 4:8, 5:9] = True  # 64 voxels × 0.064 mL = 4.096 mL
    p1 = np.where(lesion, 0.9, 0.05).astype(np.float32)
    p2 = np.where(lesion, 0.3, 0.05).astype(np.float32)  # mean in the lesion: 0.6 → lesion
    for name, p in (("f0", p1), ("f1", p2)):
        np.savez_compressed(tmp_path / f"{name}.npz", probabilities=np.stack([1 - p, p]))
        (tmp_path / f"{name}.pkl").write_bytes(pickle.dumps(_sitk_properties(geometry)))
    got = read_nnunet_probabilities(tmp_path / "f0.npz", geometry)
    np.testing.assert_array_equal(got[1], p1)
    result = import_nnunet_predictions(
        study, [tmp_path / "f0.npz", tmp_path / "f1.npz"], tmp_path / "out_prob"
    )
    assert result.patient.lesion_count == 1
    assert result.patient.total_tumour_volume_ml == pytest.approx(4.096)
    report = json.loads((tmp_path / "out_prob" / "report.json").read_text())
    assert report["parameters"]["members"] == 2
    # the label NIfTI path gives the same lesion map
    write_nifti(tmp_path / "case.nii.gz", lesion.astype(np.uint8), geometry)
    labels = import_nnunet_predictions(study, [tmp_path / "case.nii.gz"], tmp_path / "out_lab")
    np.testing.assert_array_equal(labels.labels, result.labels)
    other = Geometry.from_spacing((10, 12, 14), (4.0, 4.0, 5.0))
    write_nifti(tmp_path / "other.nii.gz", lesion.astype(np.uint8), other)
    with pytest.raises(ValueError, match="not on the PET grid"):
        import_nnunet_predictions(study, [tmp_path / "other.nii.gz"], tmp_path / "out_bad")
    with pytest.raises(ValueError, match=r"one label \.nii\.gz"):
        import_nnunet_predictions(
            study, [tmp_path / "case.nii.gz", tmp_path / "f0.npz"], tmp_path / "out_mix"
        )
