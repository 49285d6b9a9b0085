"""Organ maps from real TotalSegmentator output (tests/data/real/ct-organs) in every form the
reader takes: multi-label NIfTI with a names JSON, with the names in its header, with the
numbering given; a folder of per-class masks; a DICOM SEG; resampled onto a PET grid."""

import json
import shutil

import numpy as np
import pytest

from petseg.io.nifti import read_nifti, write_nifti
from petseg.io.organs import (
    TOTALSEGMENTATOR_TOTAL_CLASSES,
    TotalSegmentatorError,
    check_totalsegmentator,
    organ_map_for_study,
    read_organ_map,
    totalsegmentator_organ_map,
    totalsegmentator_rois,
)
from petseg.organs import OrganMap, organ_map_on_grid
from petseg.study import Geometry, Study

#: Voxels per class of example_seg.nii.gz, from the data's README.
README_COUNTS = {
    "liver": 38634,
    "spleen": 9452,
    "kidney_right": 3947,
    "kidney_left": 3676,
    "adrenal_gland_right": 152,
    "adrenal_gland_left": 184,
    "stomach": 4675,
}


@pytest.fixture
def ct_organs(real_data):
    return real_data / "ct-organs"


def _counts(organ_map):
    counts = organ_map.voxel_counts()
    return {name: counts[name] for name in README_COUNTS}


def test_multilabel_nifti_with_names_json_header_table_or_numbering(ct_organs, tmp_path):
    beside = read_organ_map(ct_organs / "example_seg.nii.gz")
    assert _counts(beside) == README_COUNTS
    assert beside.source["names"].endswith("example_seg_labels.json")
    assert "vertebrae_L1" in beside.source["unmapped_classes"]
    assert beside.mask("kidneys").sum() == 3947 + 3676
    # the same file alone: names from the label table TotalSegmentator wrote in its header
    alone = tmp_path / "seg.nii.gz"
    shutil.copy(ct_organs / "example_seg.nii.gz", alone)
    from_header = read_organ_map(alone)
    assert _counts(from_header) == README_COUNTS
    assert "header label table" in from_header.source["names"]
    np.testing.assert_array_equal(from_header.labels, beside.labels)
    # or the numbering named explicitly
    assert _counts(read_organ_map(alone, names="totalsegmentator")) == README_COUNTS
    json_names = json.loads((ct_organs / "example_seg_labels.json").read_text())
    assert {int(k): v for k, v in json_names.items()} == TOTALSEGMENTATOR_TOTAL_CLASSES


def test_label_map_with_names_json_or_with_none(ct_organs, tmp_path):
    labels, geometry = read_nifti(ct_organs / "example_seg.nii.gz")
    # a map of our own: 1 liver, 2 both kidneys, 3 something unknown, written without names
    own = np.zeros(geometry.shape, np.uint8)
    own[labels == 5] = 1
    own[np.isin(labels, (2, 3))] = 2
    own[labels == 27] = 3
    path = write_nifti(tmp_path / "mine.nii.gz", own, geometry)
    with pytest.raises(
        ValueError, match=r"names no organs: give a JSON of names with --organ-names"
    ):
        read_organ_map(path)
    names = tmp_path / "legend.json"
    names.write_text(json.dumps({"Liver": 1, "Kidneys": 2, "L5": 3}))  # nnU-Net style
    organ_map = read_organ_map(path, names=names)
    assert organ_map.voxel_counts() == {"liver": 38634, "kidneys": 3947 + 3676}
    assert organ_map.source["unmapped_classes"] == ["L5"]
    (tmp_path / "mine.json").write_text(json.dumps({"1": "liver", "2": "kidneys"}))
    assert read_organ_map(path).voxel_counts()["liver"] == 38634
    empty = write_nifti(tmp_path / "empty.nii.gz", np.zeros(geometry.shape, np.uint8), geometry)
    with pytest.raises(
        ValueError, match=r"no voxel of an organ.*\['kidneys', 'liver'\] are all empty"
    ):
        read_organ_map(empty, names=tmp_path / "mine.json")
    names.write_text(json.dumps({"liver": "one"}))
    with pytest.raises(ValueError, match="must map labels to names"):
        read_organ_map(path, names=names)


def test_folder_of_per_class_masks(ct_organs, tmp_path):
    labels, geometry = read_nifti(ct_organs / "example_seg.nii.gz")
    folder = tmp_path / "segmentations"
    folder.mkdir()
    for name in ("liver", "kidney_left", "adrenal_gland_right", "vertebrae_L5"):
        value = next(k for k, v in TOTALSEGMENTATOR_TOTAL_CLASSES.items() if v == name)
        write_nifti(folder / f"{name}.nii.gz", (labels == value).astype(np.uint8), geometry)
    organ_map = read_organ_map(folder)
    assert organ_map.voxel_counts() == {
        "adrenal_gland_right": 152,
        "kidney_left": 3676,
        "liver": 38634,
    }
    assert organ_map.source["other_files"] == ["vertebrae_L5"]
    with pytest.raises(ValueError, match="--organ-names applies to a label map"):
        read_organ_map(folder, names="totalsegmentator")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no NIfTI masks"):
        read_organ_map(empty)


def test_organ_map_on_a_pet_grid_keeps_volumes_and_places(ct_organs):
    """example_seg (3 mm) onto a 4 mm PET-like grid: volumes within a few % (nearest
    neighbour), liver centroid within 1 mm; the same labels shifted by 82 slices onto the
    full example_ct (README) lie on soft tissue and air where liver and lung are."""
    seg = read_organ_map(ct_organs / "example_seg.nii.gz")
    native = seg.geometry
    lo = native.index_to_patient(np.zeros(3))
    hi = native.index_to_patient(np.array(native.shape) - 1)
    pet = Geometry.from_spacing(
        tuple(int(n) for n in np.ceil((np.abs(hi - lo)[::-1]) / 4.0) + 1),
        (4.0, 4.0, 4.0),
        origin=tuple(np.minimum(lo, hi)),
    )
    on_pet = read_organ_map(ct_organs / "example_seg.nii.gz", pet)
    for name in ("liver", "spleen", "kidney_left", "kidney_right", "stomach"):
        native_ml = seg.mask(name).sum() * native.voxel_volume_ml
        pet_ml = on_pet.mask(name).sum() * pet.voxel_volume_ml
        assert pet_ml == pytest.approx(native_ml, rel=0.05), name

    def centroid(organ_map, name):
        return organ_map.geometry.index_to_patient(np.argwhere(organ_map.mask(name)).mean(axis=0))

    assert np.linalg.norm(centroid(on_pet, "liver") - centroid(seg, "liver")) < 1.0
    # onto the full CT: example_seg sits on its slices 82-111
    ct, ct_geometry = read_nifti(ct_organs / "example_ct.nii.gz")
    shift = np.eye(4)
    shift[:3, 3] = ct_geometry.affine[:3, 0] * 82
    shifted = Geometry(shift @ native.affine, native.shape)
    on_ct = organ_map_on_grid(OrganMap(seg.labels, seg.names, shifted), ct_geometry)
    liver = on_ct.mask("liver")
    assert liver.sum() == 38634 and np.argwhere(liver)[:, 0].min() >= 82
    assert 30 < np.median(ct[liver]) < 90  # liver parenchyma, HU
    assert np.median(ct[on_ct.mask("lungs")]) < -600  # lung bases: air
    far = Geometry.from_spacing((4, 4, 4), (4.0, 4.0, 4.0), origin=(0.0, 0.0, 5000.0))
    with pytest.raises(ValueError, match="does not overlap the PET"):
        read_organ_map(ct_organs / "example_seg.nii.gz", far)


def test_dicom_seg_segments_matched_by_label_or_code(ct_organs, tmp_path):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from petseg.io.dicom import discover_series, read_series
    from petseg.io.dicom_write import write_ct_series

    ct, geometry = read_nifti(ct_organs / "example_ct_sm.nii.gz")
    labels, _ = read_nifti(ct_organs / "example_seg.nii.gz")
    write_ct_series(tmp_path / "ct", np.asarray(ct, np.float32), geometry, patient_id="ORGANS")
    [series] = discover_series(tmp_path / "ct")
    headers = read_series(series).headers
    segments = (
        # label only (a name in the vocabulary), code generic
        ("liver", codes.SCT.Organ, 5, None),
        # label meaningless: matched by the SNOMED CT code and laterality modifier
        ("Segment 2", codes.SCT.Kidney, 3, codes.SCT.Left),
        # an organ petseg has no name for: left out
        ("L5", codes.SCT.Vertebra, 27, None),
    )
    descriptions = []
    pixels = np.zeros(labels.shape, np.uint8)
    for number, (label, code, value, modifier) in enumerate(segments, start=1):
        description = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label,
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=code,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=hd.AlgorithmIdentificationSequence(
                name="TotalSegmentator", version="2", family=codes.cid7162.ArtificialIntelligence
            ),
        )
        if modifier is not None:
            description.SegmentedPropertyTypeCodeSequence[
                0
            ].SegmentedPropertyTypeModifierCodeSequence = [
                hd.sr.CodedConcept(modifier.value, modifier.scheme_designator, modifier.meaning)
            ]
        descriptions.append(description)
        pixels[labels == value] = number
    seg = hd.seg.Segmentation(
        source_images=headers,
        pixel_array=pixels,
        segmentation_type="BINARY",
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=5,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
    )
    seg.save_as(tmp_path / "organs.dcm")
    organ_map = read_organ_map(tmp_path / "organs.dcm")
    assert organ_map.voxel_counts() == {"liver": 38634, "kidney_left": 3676}
    assert organ_map.source["reader"] == "DICOM SEG"
    assert organ_map.source["segments"] == {"1": "liver", "2": "Segment 2", "3": "L5"}
    # the SEG's grid is the CT's: the same voxels as the NIfTI map
    nifti_map = read_organ_map(ct_organs / "example_seg.nii.gz", organ_map.geometry)
    np.testing.assert_array_equal(organ_map.mask("liver"), nifti_map.mask("liver"))
    with pytest.raises(ValueError, match="not a readable DICOM SEG"):
        read_organ_map(ct_organs / "README.md")


def test_totalsegmentator_run_refuses_cleanly(tmp_path):
    """What can run without TotalSegmentator's weights: the class subset, and the refusals."""
    assert totalsegmentator_rois(["kidneys", "adrenal_glands", "pituitary_gland", "liver"]) == [
        "kidney_right",
        "kidney_left",
        "liver",
        "adrenal_gland_right",
        "adrenal_gland_left",
    ]
    geometry = Geometry.from_spacing((4, 4, 4), (4.0, 4.0, 4.0))
    no_ct = Study(pet=np.ones((4, 4, 4), np.float32), geometry=geometry, patient_id="p1")
    with pytest.raises(TotalSegmentatorError, match="needs the study's CT and 'p1' has none"):
        totalsegmentator_organ_map(no_ct, ["liver"], tmp_path / "cache")
    with pytest.raises(ValueError, match="--organ-names names the labels of an organ-map file"):
        organ_map_for_study(
            "totalsegmentator", no_ct, organs=["liver"], cache=tmp_path, names="x.json"
        )
    try:
        check_totalsegmentator()
    except TotalSegmentatorError as err:
        message = str(err)
        assert "\n" not in message
        assert "pip install 'petseg[organs]'" in message or (
            "totalseg_download_weights -t total_fast" in message
            and "TOTALSEG_WEIGHTS_PATH" in message
        )
    else:  # pragma: no cover - a machine with TotalSegmentator and its weights
        pytest.skip("TotalSegmentator and its weights are installed here")
