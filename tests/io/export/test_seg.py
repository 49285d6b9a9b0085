"""DICOM SEG export, checked by dciodvfy and read back with highdicom on real PET series
(STS_019 head-first, STS_004 feet-first)."""

import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from petseg import __version__
from petseg.io.export import (
    EmptyLesionMapError,
    build_seg,
    export_seg,
    read_reference_series,
    write_seg,
)
from petseg.io.nifti import write_nifti
from petseg.io.rtstruct import read_rtstruct


@pytest.fixture
def sts_reference(sts_study):
    """A sarcoma study's folder, PET reference series and physician GTV on its grid."""

    def load(case: str):
        folder = sts_study(case)
        reference = read_reference_series(folder / "pet")
        gtv = read_rtstruct(folder / "pet-rtstruct.dcm", reference.geometry)["GTV_Mass_PET"]
        return folder, reference, gtv

    return load


def _dciodvfy(path: Path) -> list[str]:
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy not installed (Debian/Ubuntu: apt-get install dicom3tools)")
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    return (run.stdout + run.stderr).splitlines()


def _labels(gtv: np.ndarray) -> np.ndarray:
    """GTV as label 6, a 2x2x2 block as label 2, a single voxel as label 40."""
    labels = np.zeros(gtv.shape, np.int32)
    labels[gtv] = 6
    labels[1:3, 2:4, 2:4] = 2
    labels[-2, -3, -3] = 40
    return labels


def _read_back(seg: hd.seg.Segmentation, reference) -> dict[str, np.ndarray]:
    """Per segment label: a (Z, Y, X) mask on the reference slices, via highdicom."""
    uids = [h.SOPInstanceUID for h in reference.headers]
    masks = {}
    for item in seg.SegmentSequence:
        number = int(item.SegmentNumber)
        if number == 0:
            continue
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=uids,
            segment_numbers=[number],
            ignore_spatial_locations=True,
            assert_missing_frames_are_empty=True,
        )
        masks[str(item.SegmentLabel)] = pixels[..., 0].astype(bool)
    return masks


@pytest.mark.parametrize("case", ["STS_019", "STS_004"], ids=["HFS", "FFS"])
def test_binary_seg_passes_dciodvfy_and_reads_back(sts_reference, tmp_path, case) -> None:
    _, reference, gtv = sts_reference(case)
    labels = _labels(gtv)
    result = write_seg(tmp_path / "seg.dcm", labels, reference.geometry, reference)
    lines = _dciodvfy(result.path)
    assert [s for s in lines if s.startswith("Error")] == []
    seg = hd.seg.segread(result.path)
    assert seg.SegmentationType == "BINARY"
    assert seg.StudyInstanceUID == reference.first.StudyInstanceUID
    assert seg.FrameOfReferenceUID == reference.first.FrameOfReferenceUID
    assert seg.PatientID == reference.first.PatientID
    referenced = {
        i.ReferencedSOPInstanceUID
        for s in seg.ReferencedSeriesSequence
        for i in s.ReferencedInstanceSequence
    }
    assert referenced <= {h.SOPInstanceUID for h in reference.headers}
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == reference.first.SeriesInstanceUID
    # segments 1..3 in label order, labelled after the lesion labels
    assert [(int(s.SegmentNumber), s.SegmentLabel) for s in seg.SegmentSequence] == [
        (1, "lesion_002"),
        (2, "lesion_006"),
        (3, "lesion_040"),
    ]
    for item in seg.SegmentSequence:
        assert item.SegmentAlgorithmType == "AUTOMATIC"
        assert item.SegmentAlgorithmName == "petseg"
        algorithm = item.SegmentationAlgorithmIdentificationSequence[0]
        assert algorithm.AlgorithmVersion == __version__
        assert item.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
        assert item.SegmentedPropertyTypeCodeSequence[0].CodeValue == "108369006"
    masks = _read_back(seg, reference)
    for label in (2, 6, 40):
        np.testing.assert_array_equal(masks[f"lesion_{label:03d}"], labels == label)


def test_labelmap_seg_reads_back(sts_reference, tmp_path) -> None:
    _, reference, gtv = sts_reference("STS_004")
    labels = _labels(gtv)
    seg = build_seg(labels, reference.geometry, reference, seg_type="labelmap")
    seg.save_as(tmp_path / "seg.dcm")
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    assert seg.SegmentationType == "LABELMAP"
    masks = _read_back(seg, reference)
    for label in (2, 6, 40):
        np.testing.assert_array_equal(masks[f"lesion_{label:03d}"], labels == label)
    lines = _dciodvfy(tmp_path / "seg.dcm")
    if any("Information Object Not found" in s for s in lines):
        pytest.skip(
            "the installed dciodvfy predates the Label Map Segmentation IOD (DICOM 2024); "
            "it cannot validate a LABELMAP SEG"
        )
    assert [s for s in lines if s.startswith("Error")] == []


def test_cli_level_export_and_options(sts_reference, tmp_path) -> None:
    folder, reference, gtv = sts_reference("STS_019")
    write_nifti(tmp_path / "lesions.nii.gz", gtv.astype(np.uint8), reference.geometry)
    result = export_seg(
        tmp_path / "lesions.nii.gz",
        folder / "pet",
        tmp_path / "seg.dcm",
        algorithm_type="SEMIAUTOMATIC",
        algorithm_family="threshold",
    )
    assert result.n_rois == 1
    ds = pydicom.dcmread(result.path)
    item = ds.SegmentSequence[0]
    assert item.SegmentAlgorithmType == "SEMIAUTOMATIC"
    # DICOM PS3.16 CID 7162: "Histogram Analysis" is DCM 123105 (used for SUV thresholds)
    family = item.SegmentationAlgorithmIdentificationSequence[0]
    assert family.AlgorithmFamilyCodeSequence[0].CodeValue == "123105"
    with pytest.raises(FileExistsError):
        export_seg(tmp_path / "lesions.nii.gz", folder / "pet", tmp_path / "seg.dcm")
    with pytest.raises(ValueError, match="seg_type must be one of"):
        build_seg(gtv.astype(np.int32), reference.geometry, reference, seg_type="fractional")
    with pytest.raises(EmptyLesionMapError):
        build_seg(np.zeros(gtv.shape, np.int32), reference.geometry, reference)
