"""DICOM reading on the real sarcoma studies (the repository subset, and all 34 when
../shared/data holds them), and the loader's refusals."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from petseg.io import discover_series, load_study
from petseg.io.dicom import DicomFileError, read_series, scan_folder, series_geometry
from petseg.io.suv import SuvError


def readme_table(readme: Path) -> dict[str, dict]:
    """The patient table of sts-pet/README.md (the specification of each study)."""
    rows = {}
    pattern = re.compile(
        r"^\| (STS_\d+) \| (HFS|FFS) \| (\d+) x (\d+) \| ([\d.]+) x ([\d.]+) \| ([\d.]+) \| "
        r"(\d+) \|"
    )
    for line in readme.read_text().splitlines():
        m = pattern.match(line)
        if m:
            rows[m[1]] = {
                "position": m[2],
                "rows": int(m[3]),
                "cols": int(m[4]),
                "spacing": (float(m[5]), float(m[6])),
                "dz": float(m[7]),
                "slices": int(m[8]),
            }
    return rows


def test_readme_lists_34_patients(real_data: Path) -> None:
    assert len(readme_table(real_data / "sts-pet" / "README.md")) == 34


def test_geometry_matches_readme(real_data: Path, sts_study, sts_patient: str) -> None:
    expected = readme_table(real_data / "sts-pet" / "README.md")[sts_patient]
    (pet,) = [s for s in discover_series(sts_study(sts_patient)) if s.modality == "PT"]
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in pet.files]
    geometry, order = series_geometry(headers, list(pet.files))
    assert geometry.shape == (expected["slices"], expected["rows"], expected["cols"])
    dz, dy, dx = geometry.spacing
    assert (round(dy, 4), round(dx, 4)) == expected["spacing"]  # README rounds to 4 decimals
    assert dz == pytest.approx(expected["dz"], abs=1e-3)
    assert str(headers[0].PatientPosition) == expected["position"]
    # README: file names 000000.dcm... run in ascending z; IOP 1\0\0\0\1\0 so the normal is +z.
    assert [pet.files[i].name for i in order] == sorted(f.name for f in pet.files)
    np.testing.assert_allclose(geometry.affine[:3, 0], [0, 0, dz], atol=1e-9)
    z = [float(h.ImagePositionPatient[2]) for h in headers]
    assert geometry.origin[2] == pytest.approx(min(z))


@pytest.mark.parametrize("patient", ["STS_001", "STS_002"])
def test_ct_is_resampled_onto_pet_grid(sts_study, patient: str) -> None:
    study = load_study(sts_study(patient))
    assert study.ct is not None and study.ct.shape == study.pet.shape
    # README: CT values range from -1000 to about 1400 HU; -1024 only outside the CT's FOV.
    assert study.ct.min() >= -1024 and study.ct.max() <= 1500
    # Independent check of one voxel: trilinear interpolation by hand at the PET voxel centre.
    (ct_series,) = [s for s in discover_series(sts_study(patient)) if s.modality == "CT"]
    ct = read_series(ct_series)
    k, j, i = (s // 2 for s in study.pet.shape)
    point = study.geometry.index_to_patient([k, j, i])
    frac = ct.geometry.patient_to_index(point)
    base = np.floor(frac).astype(int)
    w = frac - base
    expected = 0.0
    for dk in (0, 1):
        for dj in (0, 1):
            for di in (0, 1):
                weight = (w[0] if dk else 1 - w[0]) * (w[1] if dj else 1 - w[1])
                weight *= w[2] if di else 1 - w[2]
                expected += weight * ct.array[base[0] + dk, base[1] + dj, base[2] + di]
    assert study.ct[k, j, i] == pytest.approx(expected, abs=1e-2)
    assert study.provenance["ct"]["series_instance_uid"] == ct_series.series_uid


def test_provenance_lists_sorted_pet_files_and_uids(sts_study) -> None:
    study = load_study(sts_study("STS_004"))  # FFS patient
    dicom = study.provenance["dicom"]
    assert [Path(p).name for p in dicom["pet_files"]] == [f"{n:06d}.dcm" for n in range(85)]
    first = pydicom.dcmread(dicom["pet_files"][0], stop_before_pixels=True)
    assert dicom["series_instance_uid"] == first.SeriesInstanceUID
    assert dicom["frame_of_reference_uid"] == first.FrameOfReferenceUID
    assert dicom["study_instance_uid"] == first.StudyInstanceUID
    assert study.provenance["suv"]["rule"] == "GML"  # README: pixels already SUVbw
    assert study.patient_id == "STS_004"


@pytest.fixture
def copy_pet(sts_study):
    """Copy one subset patient's PET series to a folder (the copy may be edited)."""

    def copy(patient: str, target: Path) -> Path:
        shutil.copytree(sts_study(patient) / "pet", target)
        return target

    return copy


def test_study_keeps_the_sorted_pet_headers_so_export_reads_no_file_again(
    copy_pet, tmp_path
) -> None:
    from petseg.io.export import export_lesions_for_study

    folder = copy_pet("STS_004", tmp_path / "pet")
    study = load_study(folder)
    assert study.dicom is not None and study.dicom.geometry.same_grid(study.geometry)
    sop_uids = [str(ds.SOPInstanceUID) for ds in study.dicom.headers]
    assert sop_uids == study.provenance["dicom"]["sop_instance_uids"]
    assert not any("PixelData" in ds for ds in study.dicom.headers)
    shutil.rmtree(folder)  # the export must reference the headers kept on the Study
    labels = np.zeros(study.geometry.shape, np.int32)
    labels[40:44, 20:24, 20:24] = 1
    (written,) = export_lesions_for_study(tmp_path / "out", labels, study)
    rtstruct = pydicom.dcmread(written)
    contour_uids = {
        item.ReferencedSOPInstanceUID
        for roi in rtstruct.ROIContourSequence
        for contour in roi.ContourSequence
        for item in contour.ContourImageSequence
    }
    assert contour_uids == set(sop_uids[40:44])


def test_folder_without_pet_is_refused(sts_study, tmp_path: Path) -> None:
    shutil.copy(sts_study("STS_019") / "pet-rtstruct.dcm", tmp_path / "rs.dcm")
    (tmp_path / "notes.txt").write_text("not DICOM")  # skipped by discovery
    with pytest.raises(ValueError, match=r"holds no PET series.*RTSTRUCT"):
        load_study(tmp_path)


def test_two_pet_series_are_listed_and_one_can_be_chosen(
    sts_study, copy_pet, tmp_path: Path
) -> None:
    copy_pet("STS_002", tmp_path / "a")
    copy_pet("STS_019", tmp_path / "b")
    uids = {
        p: str(pydicom.dcmread(sts_study(p) / "pet" / "000000.dcm").SeriesInstanceUID)
        for p in ("STS_002", "STS_019")
    }
    with pytest.raises(ValueError) as info:
        load_study(tmp_path)
    message = str(info.value)
    assert "2 PT series" in message and "series_uid=" in message and "--pet-series" in message
    assert uids["STS_002"] in message and uids["STS_019"] in message
    assert "48 files" in message and "47 files" in message  # README slice counts
    study = load_study(tmp_path, series_uid=uids["STS_019"])
    assert study.pet.shape == (47, 28, 28)


def test_missing_slice_is_refused_naming_the_gap(copy_pet, tmp_path: Path) -> None:
    folder = copy_pet("STS_019", tmp_path / "pet")
    (folder / "000025.dcm").unlink()
    with pytest.raises(ValueError, match=r"irregular slice spacing.*000024\.dcm.*000026\.dcm"):
        load_study(folder)


def test_duplicate_slice_is_refused(copy_pet, tmp_path: Path) -> None:
    folder = copy_pet("STS_019", tmp_path / "pet")
    ds = pydicom.dcmread(folder / "000010.dcm")
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(folder / "copy.dcm")
    with pytest.raises(ValueError, match=r"irregular slice spacing.*gap 0\.000"):
        load_study(folder)


def test_ct_with_other_frame_of_reference_is_refused(sts_study, tmp_path: Path) -> None:
    shutil.copytree(sts_study("STS_002"), tmp_path / "study")
    for path in (tmp_path / "study" / "ct").iterdir():
        ds = pydicom.dcmread(path)
        ds.FrameOfReferenceUID = "1.2.3.4"
        ds.save_as(path)
    with pytest.raises(ValueError, match=r"Frame of Reference UID 1\.2\.3\.4.*not in the same"):
        load_study(tmp_path / "study")


def test_scan_reads_each_file_once_and_read_series_decodes_without_the_files(
    copy_pet, tmp_path: Path
) -> None:
    folder = copy_pet("STS_019", tmp_path / "pet")
    expected = np.stack(
        [
            pydicom.dcmread(folder / f"{n:06d}.dcm").pixel_array * float(ds.RescaleSlope)
            + float(ds.RescaleIntercept)
            for n in range(47)
            for ds in [pydicom.dcmread(folder / f"{n:06d}.dcm", stop_before_pixels=True)]
        ]
    ).astype(np.float32)
    scan = scan_folder(folder)
    shutil.rmtree(folder)  # every byte needed was read by the scan
    (pet,) = scan.series
    assert pet.modality == "PT" and len(pet.datasets) == 47 and scan.skipped == ()
    volume = read_series(pet)
    np.testing.assert_array_equal(volume.array, expected)
    # Pixel Data is dropped once decoded: pixels are not held twice.
    assert not any("PixelData" in ds for ds in pet.datasets)


def test_decoding_threads_give_the_same_volume(sts_study) -> None:
    (one,) = [s for s in scan_folder(sts_study("STS_002")).series if s.modality == "CT"]
    (two,) = [s for s in scan_folder(sts_study("STS_002")).series if s.modality == "CT"]
    np.testing.assert_array_equal(read_series(one).array, read_series(two, workers=2).array)


def _edit(path: Path, **values: object) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in values.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.save_as(path)


def test_header_cut_short_at_the_edge_stops_the_study_unless_skipped(
    copy_pet, tmp_path: Path
) -> None:
    folder = copy_pet("STS_019", tmp_path / "pet")
    last = folder / "000046.dcm"
    last.write_bytes(last.read_bytes()[:600])  # before the Series Instance UID
    with pytest.raises(DicomFileError, match=r"000046\.dcm: DICOM header cut short.*--skip-unr"):
        load_study(folder)
    study = load_study(folder, skip_unreadable=True)
    assert study.pet.shape == (46, 28, 28)  # README: 47 slices of 28 x 28
    (skipped,) = study.provenance["dicom"]["skipped"]
    assert skipped.startswith(f"{last}: DICOM header cut short")


def test_empty_dcm_file_is_unreadable_but_other_files_are_ignored(copy_pet, tmp_path: Path) -> None:
    folder = copy_pet("STS_019", tmp_path / "pet")
    (folder / "notes.txt").write_text("not DICOM")
    assert load_study(folder).pet.shape[0] == 47
    (folder / "zero.dcm").write_bytes(b"")
    with pytest.raises(DicomFileError, match=r"zero\.dcm: not a readable DICOM file"):
        load_study(folder)


def _overwrite_value(path: Path, tag: bytes) -> None:
    """Replace the value of the (implicit VR little endian) element ``tag`` with letters."""
    data = bytearray(path.read_bytes())
    start = data.index(tag) + 8
    length = int.from_bytes(data[start - 4 : start], "little")
    data[start : start + length] = b"x" * length
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"RescaleSlope": 0}, r"000010\.dcm: RescaleSlope is 0"),
        ({"RescaleSlope": None}, r"000010\.dcm: RescaleSlope is missing"),
        ({"BitsStored": 12}, r"000010\.dcm: BitsStored is 12 but .*000000\.dcm has 16"),
    ],
)
def test_unusable_slice_values_name_the_file(
    copy_pet, tmp_path: Path, values: dict, message: str
) -> None:
    folder = copy_pet("STS_019", tmp_path / "pet")
    _edit(folder / "000010.dcm", **values)
    with pytest.raises(DicomFileError, match=message):
        load_study(folder)


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS:UserWarning")  # damaged on purpose
@pytest.mark.parametrize(
    ("tag", "message"),
    [
        (b"\x28\x00\x52\x10", r"000010\.dcm: RescaleIntercept is missing or is not 1 number"),
        (b"\x20\x00\x32\x00", r"000010\.dcm: ImagePositionPatient is missing or is not 3"),
    ],
)
def test_values_that_are_not_numbers_name_the_file(
    copy_pet, tmp_path: Path, tag: bytes, message: str
) -> None:
    folder = copy_pet("STS_019", tmp_path / "pet")
    _overwrite_value(folder / "000010.dcm", tag)
    with pytest.raises(DicomFileError, match=message):
        load_study(folder)


def test_patient_weight_differing_between_slices_names_both_values_and_files(
    copy_pet,
    tmp_path: Path,
) -> None:
    folder = copy_pet("STS_019", tmp_path / "pet")
    weight = float(pydicom.dcmread(folder / "000000.dcm").PatientWeight)
    _edit(folder / "000030.dcm", PatientWeight=weight + 12)
    with pytest.raises(SuvError) as info:
        load_study(folder)
    message = str(info.value)
    assert message.startswith(f"{folder / '000030.dcm'}: PatientWeight (0010,1030) is")
    assert f"{weight + 12!r}" in message and f"{folder / '000000.dcm'} has {weight!r}" in message


def test_unknown_value_representation_is_one_line_naming_the_file(copy_pet, tmp_path: Path) -> None:
    folder = copy_pet("STS_019", tmp_path / "pet")
    path = folder / "000000.dcm"  # the first slice: its values are the series' values
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    data = bytearray(path.read_bytes())
    rows = data.index(b"\x28\x00\x10\x00US")  # (0028,0010) Rows, explicit VR
    data[rows + 4 : rows + 6] = b"ZZ"
    path.write_bytes(bytes(data))
    with pytest.raises(DicomFileError) as info:
        load_study(folder)
    message = str(info.value)
    assert message.startswith(f"{path}: Rows cannot be read") and "'ZZ'" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "relative",
    ["sts-pet/STS_019/pet/000010.dcm", "sts-pet/STS_002/ct", "pet-slices/acrin-flt-static.dcm"],
)
def test_read_series_gives_pydicoms_pixels_rescaled(real_data: Path, relative: str) -> None:
    path = real_data / relative
    path = min(path.iterdir()) if path.is_dir() else path
    ds = pydicom.dcmread(path)
    (series,) = [s for s in scan_folder(path.parent).series if path in s.files]
    volume = read_series(series)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(volume.array[volume.files.index(path)], expected.astype("f4"))


def test_skip_unreadable_does_not_apply_to_nifti(tmp_path: Path) -> None:
    from petseg.io.nifti import write_nifti
    from petseg.study import Geometry

    pet = tmp_path / "pet.nii.gz"
    write_nifti(pet, np.ones((2, 3, 4), np.float32), Geometry.from_spacing((2, 3, 4), (2, 2, 2)))
    with pytest.raises(ValueError, match=r"skip_unreadable= \(--skip-unreadable\) cannot apply"):
        load_study(pet=pet, skip_unreadable=True)


def test_image_series_leaves_out_the_structure_set(sts_study) -> None:
    from petseg.io.dicom import discover_series, image_series

    folder = sts_study("STS_004")  # pet/ and the physician's pet-rtstruct.dcm
    assert "RTSTRUCT" in {s.modality for s in discover_series(folder)}
    assert [s.modality for s in image_series(folder)] == ["PT"]
