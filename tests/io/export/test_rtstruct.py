"""RT Structure Set export, checked by tools nobody here wrote (dciodvfy, plastimatch) and
by re-import with ``read_rtstruct`` on the real sarcoma studies (HFS and FFS)."""

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from petseg import __version__
from petseg.cli import export as export_cli
from petseg.contours import align_to_grid, label_contours, mask_contours
from petseg.io.atomic import OutputExistsError
from petseg.io.dicom_write import PetAcquisition, write_pet_series
from petseg.io.export import (
    TOTAL_ROI_NAME,
    EmptyLesionMapError,
    build_rtstruct,
    export_lesions_for_study,
    export_rtstruct,
    lesion_colors,
    read_reference_series,
    write_rtstruct,
)
from petseg.io.nifti import read_nifti, write_nifti
from petseg.io.rtstruct import read_rtstruct
from petseg.study import Geometry, Study

#: dciodvfy warnings our RTSTRUCTs may carry, each explained in docs/dicom-export.md.
ALLOWED_WARNINGS = (
    "Missing attribute or value that would be needed to build DICOMDIR - Study ID",
    "Retired Person Name form",
)


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """Run dciodvfy; return its Error and Warning lines."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy not installed (Debian/Ubuntu: apt-get install dicom3tools)")
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    lines = (run.stdout + run.stderr).splitlines()
    return [s for s in lines if s.startswith("Error")], [
        s for s in lines if s.startswith("Warning")
    ]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def _phantom_series(tmp_path: Path, geometry: Geometry, labels: np.ndarray, **kw) -> list[Path]:
    """A PET series in Bq/mL written by petseg.io.dicom_write: background SUV 1,
    lesions SUV 8."""
    suv = np.where(labels > 0, 8.0, 1.0).astype(np.float32)
    acquisition = PetAcquisition(
        weight_kg=70.0,
        dose_bq=200e6,
        injection_time=dt.datetime(2024, 3, 1, 9, 0, 0),
        series_time=dt.datetime(2024, 3, 1, 10, 0, 0),
    )
    return write_pet_series(
        tmp_path / "pet",
        suv,
        geometry,
        acquisition,
        patient_id="PHANTOM_01",
        patient_name="Phantom^Export",
        **kw,
    )


def _phantom_labels(shape: tuple[int, int, int]) -> np.ndarray:
    """Six lesions: spheres of several sizes, a hollow sphere (hole on its middle slices),
    two islands on one slice joined on another (one lesion), a single voxel, labels not
    consecutive."""
    z, y, x = np.indices(shape)
    labels = np.zeros(shape, np.int32)

    def ball(c, r):
        return (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= r * r

    labels[ball((6, 10, 10), 4.5)] = 1
    labels[ball((6, 10, 10), 2.0)] = 0  # hollow: holes on slices 4-8
    labels[ball((4, 25, 8), 2.2)] = 2
    labels[ball((12, 24, 26), 3.5)] = 5
    labels[9:12, 4, 22] = 9  # thin column: 1-voxel cross-sections
    labels[9, 4:6, 22] = 9
    labels[3, 28, 28] = 17  # single voxel
    labels[13, 20, 3:6] = 23  # U shape: two islands on slices 11, 12 joined on 13
    labels[11:13, 20, 3] = 23
    labels[11:13, 20, 5] = 23
    return labels


@pytest.fixture(scope="module")
def sts004(sts_study):
    """FFS patient: PET reference series and the physician's GTV on its grid."""
    case = sts_study("STS_004")
    reference = read_reference_series(case / "pet")
    gtv = read_rtstruct(case / "pet-rtstruct.dcm", reference.geometry)["GTV_Mass_PET"]
    return case, reference, gtv


def test_rtstruct_content_references_the_pet_series(tmp_path, sts004) -> None:
    case, reference, gtv = sts004
    labels = np.zeros(gtv.shape, np.int32)
    labels[gtv] = 4
    labels[2, 2, 2] = 11  # a lone voxel far from the GTV
    result = write_rtstruct(
        tmp_path / "rs.dcm", labels, reference.geometry, case / "pet", include_total=True
    )
    ds = pydicom.dcmread(result.path)
    first = reference.first
    # identity copied, new UIDs generated
    assert ds.Modality == "RTSTRUCT"
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3"
    for keyword in ("PatientID", "PatientName", "PatientSex", "StudyInstanceUID", "StudyDate"):
        assert ds[keyword].value == first[keyword].value
    assert ds.StudyID == ""  # 'IBSI_1_STS_004_PET' is 18 characters, VR SH allows 16
    assert result.notes and "StudyID" in result.notes[0]
    assert ds.SeriesInstanceUID != first.SeriesInstanceUID
    assert ds.SOPInstanceUID not in {h.SOPInstanceUID for h in reference.headers}
    assert ds.FrameOfReferenceUID == first.FrameOfReferenceUID
    assert ds.SoftwareVersions == __version__ and ds.Manufacturer == "petseg"
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == first.FrameOfReferenceUID
    study = frame.RTReferencedStudySequence[0]
    assert study.ReferencedSOPInstanceUID == first.StudyInstanceUID
    series = study.RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == first.SeriesInstanceUID
    assert [i.ReferencedSOPInstanceUID for i in series.ContourImageSequence] == [
        h.SOPInstanceUID for h in reference.headers
    ]
    # ROIs numbered and named after the labels, plus the total ROI numbered max + 1
    rois = [(int(r.ROINumber), r.ROIName) for r in ds.StructureSetROISequence]
    assert rois == [(4, "lesion_004"), (11, "lesion_011"), (12, TOTAL_ROI_NAME)]
    assert {int(o.ReferencedROINumber) for o in ds.RTROIObservationsSequence} == {4, 11, 12}
    assert all(o.RTROIInterpretedType == "GTV" for o in ds.RTROIObservationsSequence)
    colors = [tuple(int(c) for c in item.ROIDisplayColor) for item in ds.ROIContourSequence]
    assert len(set(colors)) == 3
    assert result.n_rois == 3
    # every contour references the image of its own plane
    position = {h.SOPInstanceUID: float(h.ImagePositionPatient[2]) for h in reference.headers}
    n_contours = 0
    for item in ds.ROIContourSequence:
        for contour in item.ContourSequence:
            points = np.array(contour.ContourData, dtype=float).reshape(-1, 3)
            assert contour.ContourGeometricType == "CLOSED_PLANAR"
            assert int(contour.NumberOfContourPoints) == len(points) >= 4
            uid = contour.ContourImageSequence[0].ReferencedSOPInstanceUID
            assert np.allclose(points[:, 2], position[uid], atol=1e-3)
            n_contours += 1
    assert n_contours == result.n_contours
    # the lone voxel: one diamond on slice 2, side ±0.5 voxel = ±1.953 mm
    lone = ds.ROIContourSequence[1].ContourSequence
    assert len(lone) == 1 and int(lone[0].NumberOfContourPoints) == 4


def test_rtstruct_passes_dciodvfy(tmp_path, sts004) -> None:
    _case, reference, gtv = sts004
    labels = gtv.astype(np.int32)
    labels[3, 3:6, 3:6] = 2
    labels[3, 4, 4] = 0  # a hole
    labels[5, 30, 30] = 3  # single voxel
    path = write_rtstruct(
        tmp_path / "rs.dcm", labels, reference.geometry, reference, include_total=True
    ).path
    errors, warnings = dciodvfy(path)
    assert errors == []
    unexplained = [w for w in warnings if not any(a in w for a in ALLOWED_WARNINGS)]
    assert unexplained == []


def test_export_then_import_reproduces_every_sarcoma_gtv(sts_study, sts_patient, tmp_path) -> None:
    """Physician GTV (rasterised by read_rtstruct, whose voxel counts the I/O tests check
    against the data README) → our RTSTRUCT → read_rtstruct again: identical masks
    (Dice 1.0) for every patient (all 34 with ../shared/data), HFS and FFS."""
    folder = sts_study(sts_patient)
    reference = read_reference_series(folder / "pet")
    gtv = read_rtstruct(folder / "pet-rtstruct.dcm", reference.geometry)["GTV_Mass_PET"]
    ds = build_rtstruct(gtv.astype(np.int32), reference.geometry, reference)
    ds.save_as(tmp_path / "rs.dcm", enforce_file_format=True)
    back = read_rtstruct(
        tmp_path / "rs.dcm",
        reference.geometry,
        frame_of_reference_uid=reference.first.FrameOfReferenceUID,
    )
    assert list(back) == ["lesion_001"]
    np.testing.assert_array_equal(back["lesion_001"], gtv)


@pytest.mark.parametrize(
    ("case", "position"), [("STS_019", "HFS"), ("STS_004", "FFS")], ids=["HFS", "FFS"]
)
def test_plastimatch_reads_our_rtstruct_on_real_pet(sts_study, tmp_path, case, position) -> None:
    """Independent rasteriser: plastimatch converts our RTSTRUCT back to masks on the
    PET series; Dice with our lesion map (measured: 1.0 for both patients)."""
    tool = shutil.which("plastimatch")
    if tool is None:
        pytest.skip("plastimatch not installed (Debian/Ubuntu: apt-get install plastimatch)")
    folder = sts_study(case)
    reference = read_reference_series(folder / "pet")
    assert reference.first.PatientPosition == position
    gtv = read_rtstruct(folder / "pet-rtstruct.dcm", reference.geometry)["GTV_Mass_PET"]
    labels = gtv.astype(np.int32) * 3
    labels[4, 3, 3:5] = 8  # a 2-voxel lesion
    write_rtstruct(tmp_path / "rs.dcm", labels, reference.geometry, reference)
    masks = _plastimatch_masks(tool, tmp_path / "rs.dcm", folder / "pet", tmp_path / "pm")
    assert sorted(masks) == ["lesion_003", "lesion_008"]
    for name, label in (("lesion_003", 3), ("lesion_008", 8)):
        mask, geometry = masks[name]
        on_pet = align_to_grid(mask, geometry, reference.geometry)
        assert dice(on_pet, labels == label) >= 0.95


def _plastimatch_masks(
    tool: str, rtstruct: Path, reference: Path, out: Path, *, xor: bool = True
) -> dict:
    """plastimatch's masks by ROI name. Its default fills every contour and ORs them
    (holes filled); ``--xor-contours`` applies the even-odd rule our holes follow."""
    run = subprocess.run(
        [
            tool,
            "convert",
            "--input",
            str(rtstruct),
            "--referenced-ct",
            str(reference),
            "--output-prefix",
            str(out),
            "--prefix-format",
            "nii.gz",
            *(["--xor-contours"] if xor else []),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return {p.name.removesuffix(".nii.gz"): read_nifti(p) for p in sorted(out.glob("*.nii.gz"))}


def _oblique_ffs_geometry(shape: tuple[int, int, int]) -> Geometry:
    """Non-identity direction cosines: rows/columns rotated 20 degrees about z, columns
    towards patient right, slices stacked towards the feet (right-handed)."""
    a = np.deg2rad(20.0)
    rot = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, 2] = rot @ [-4.0, 0.0, 0.0]
    affine[:3, 1] = rot @ [0.0, 4.0, 0.0]
    affine[:3, 0] = rot @ [0.0, 0.0, -3.0]
    affine[:3, 3] = (60.0, -70.0, 410.0)
    return Geometry(affine, shape)


@pytest.mark.parametrize(
    "geometry",
    [
        Geometry.from_spacing((16, 32, 32), (3.0, 4.0, 4.0), origin=(-62.0, -62.0, -300.0)),
        _oblique_ffs_geometry((16, 32, 32)),
    ],
    ids=["axis-aligned", "oblique-feet-first"],
)
def test_phantom_dicom_round_trip_plastimatch_and_read_rtstruct(tmp_path, geometry) -> None:
    """Phantom lesions on a PET series written as DICOM: read_rtstruct gives the map back
    exactly; plastimatch with --xor-contours too (Dice 1.0 per lesion), and with its
    default OR rule every lesion is present with Dice >= 0.95 (measured 0.956 for the
    hollow sphere, whose 33-voxel hole it fills; 1.0 for the others)."""
    labels = _phantom_labels(geometry.shape)
    _phantom_series(tmp_path, geometry, labels)
    result = write_rtstruct(
        tmp_path / "rs.dcm", labels, geometry, tmp_path / "pet", include_total=True
    )
    errors, _ = dciodvfy(result.path)
    assert errors == []
    reference = read_reference_series(tmp_path / "pet")
    back = read_rtstruct(result.path, reference.geometry)
    expected = np.asarray(align_to_grid(labels, geometry, reference.geometry))
    for label in (1, 2, 5, 9, 17, 23):
        np.testing.assert_array_equal(back[f"lesion_{label:03d}"], expected == label)
    np.testing.assert_array_equal(back[TOTAL_ROI_NAME], expected > 0)
    tool = shutil.which("plastimatch")
    if tool is None:
        pytest.skip("plastimatch not installed (Debian/Ubuntu: apt-get install plastimatch)")
    for xor, minimum in ((True, 1.0), (False, 0.95)):
        out = tmp_path / f"pm-xor-{xor}"
        masks = _plastimatch_masks(tool, result.path, tmp_path / "pet", out, xor=xor)
        for label in (1, 2, 5, 9, 17, 23):
            mask, mask_geometry = masks[f"lesion_{label:03d}"]
            on_grid = align_to_grid(mask, mask_geometry, reference.geometry)
            assert dice(on_grid, expected == label) >= minimum, (xor, label)


def test_cli_exports_a_flipped_nifti_lesion_map(tmp_path, sts004, capsys) -> None:
    """A lesion map NIfTI stored with reversed row and slice axes (another tool's
    orientation) is reordered onto the PET grid, not misplaced."""
    case, reference, gtv = sts004
    g = reference.geometry
    flipped = np.flip(gtv.astype(np.int16), axis=(0, 1)).copy()
    affine = g.affine.copy()
    affine[:3, 3] = g.index_to_patient([g.shape[0] - 1, g.shape[1] - 1, 0])
    affine[:3, 0] *= -1
    affine[:3, 1] *= -1
    write_nifti(tmp_path / "lesions.nii.gz", flipped, Geometry(affine, g.shape))
    argv = [
        "export",
        "rtstruct",
        str(tmp_path / "lesions.nii.gz"),
        "--reference",
        str(case / "pet"),
        "--out",
        str(tmp_path / "rs.dcm"),
    ]
    assert _run_cli(argv) == 0
    assert "wrote" in capsys.readouterr().out
    back = read_rtstruct(tmp_path / "rs.dcm", g)["lesion_001"]
    np.testing.assert_array_equal(back, gtv)
    # no overwrite without --force; with it, the file is replaced
    with pytest.raises(OutputExistsError):
        _run_cli(argv)
    assert _run_cli([*argv, "--force"]) == 0


def _run_cli(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="petseg")
    export_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_grid_mismatch_and_empty_map_are_refused(tmp_path, sts004) -> None:
    case, reference, gtv = sts004
    g = reference.geometry
    other = Geometry.from_spacing(g.shape, (3.27, 2.0, 2.0), origin=g.origin)
    with pytest.raises(ValueError, match="resample the lesion map onto the PET grid"):
        build_rtstruct(gtv.astype(np.int32), other, reference)
    with pytest.raises(EmptyLesionMapError, match="no lesion"):
        build_rtstruct(np.zeros(g.shape, np.int32), g, reference)
    with pytest.raises(ValueError, match="generation_algorithm must be one of"):
        build_rtstruct(gtv.astype(np.int32), g, reference, generation_algorithm="AUTO")
    bad = tmp_path / "float.nii.gz"
    write_nifti(bad, gtv.astype(np.float32) * 0.5, g)
    with pytest.raises(ValueError, match="non-integer values"):
        export_rtstruct(bad, case / "pet", tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()


def test_export_lesions_for_study_writes_into_case_folder(tmp_path, sts004) -> None:
    _case, reference, gtv = sts004
    pet = np.ones(reference.geometry.shape, np.float32)
    labels = gtv.astype(np.int32)
    from_dicom = Study(
        pet=pet,
        geometry=reference.geometry,
        dicom=reference,
    )
    written = export_lesions_for_study(tmp_path / "a", labels, from_dicom, seg=True)
    assert [p.name for p in written] == ["rtstruct.dcm", "seg.dcm"]
    assert pydicom.dcmread(written[1]).Modality == "SEG"
    nifti_study = Study(pet=pet, geometry=reference.geometry)
    assert export_lesions_for_study(tmp_path / "b", labels, nifti_study) == []
    assert export_lesions_for_study(tmp_path / "c", 0 * labels, from_dicom) == []
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_lesion_colours_are_distinct_and_stable() -> None:
    colors = lesion_colors(range(1, 301))
    assert len(set(colors.values())) == 300
    assert all(0 <= c <= 255 for rgb in colors.values() for c in rgb)
    assert lesion_colors([7])[7] == colors[7]


#: Every element of an RTSTRUCT, in the order written (tag order), per level.
TOP_LEVEL = [
    "SpecificCharacterSet", "InstanceCreationDate", "InstanceCreationTime", "SOPClassUID",
    "SOPInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "Modality", "Manufacturer",
    "ReferringPhysicianName", "StudyDescription", "SeriesDescription", "OperatorsName",
    "ManufacturerModelName", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "PatientAge", "PatientSize", "PatientWeight", "SoftwareVersions", "StudyInstanceUID",
    "SeriesInstanceUID", "StudyID", "SeriesNumber", "InstanceNumber", "FrameOfReferenceUID",
    "PositionReferenceIndicator", "StructureSetLabel", "StructureSetName",
    "StructureSetDescription", "StructureSetDate", "StructureSetTime",
    "ReferencedFrameOfReferenceSequence", "StructureSetROISequence", "ROIContourSequence",
    "RTROIObservationsSequence",
]  # fmt: skip
ROI_ITEM = [
    "ROINumber", "ReferencedFrameOfReferenceUID", "ROIName", "ROIGenerationAlgorithm",
    "ROIGenerationDescription",
]  # fmt: skip
CONTOUR_ITEM = [
    "ContourImageSequence", "ContourGeometricType", "NumberOfContourPoints", "ContourNumber",
    "ContourData",
]  # fmt: skip
OBSERVATION_ITEM = [
    "ObservationNumber", "ReferencedROINumber", "ROIObservationLabel", "RTROIInterpretedType",
    "ROIInterpreter",
]  # fmt: skip


def _keywords(ds) -> list[str]:
    return [elem.keyword for elem in ds]


def test_every_element_of_an_rtstruct_on_a_real_study(tmp_path, sts004) -> None:
    """The written file, element by element: keywords and order at every level, each
    VR as the data dictionary has it, the values copied from the PET, written by petseg
    or computed here from the PET headers (the lone voxel's diamond), and every
    contour's DS strings as the 0.001 mm formatting of petseg.contours' polygons."""
    case, reference, gtv = sts004
    labels = np.zeros(gtv.shape, np.int32)
    labels[gtv] = 4
    labels[2, 2, 2] = 11
    result = write_rtstruct(
        tmp_path / "rs.dcm", labels, reference.geometry, case / "pet", include_total=True,
        source="gtv.nii.gz", series_number=77, generation_algorithm="SEMIAUTOMATIC",
    )  # fmt: skip
    ds = pydicom.dcmread(result.path)
    first = reference.first
    assert _keywords(ds.file_meta)[2:] == [
        "MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID",
        "ImplementationClassUID", "ImplementationVersionName",
    ]  # fmt: skip
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.file_meta.ImplementationVersionName == f"PETSEG_{__version__}"[:16]
    assert _keywords(ds) == TOP_LEVEL
    for elem in ds.iterall():
        assert elem.VR == pydicom.datadict.dictionary_VR(elem.tag), elem.keyword
    written = {
        "SpecificCharacterSet": "ISO_IR 100", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.481.3",
        "Modality": "RTSTRUCT", "Manufacturer": "petseg", "ManufacturerModelName": "petseg",
        "SoftwareVersions": __version__, "SeriesDescription": "petseg lesions",
        "OperatorsName": "", "SeriesNumber": 77, "InstanceNumber": 1,
        "StructureSetLabel": "petseg lesions", "StructureSetName": "lesions",
        "StudyID": "",  # 18 characters in the PET, VR SH allows 16
        "StructureSetDescription": f"petseg {__version__} export rtstruct: 2 lesion(s) from "
        "gtv.nii.gz; include_total=True; contours are 0.5 iso-lines on the PET slices, holes "
        "as separate contours (even-odd rule)",
    }  # fmt: skip
    assert {k: ds[k].value for k in written} == written
    copied = [
        "StudyDate", "StudyTime", "AccessionNumber", "ReferringPhysicianName", "StudyDescription",
        "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientSize",
        "PatientWeight", "StudyInstanceUID", "FrameOfReferenceUID", "PositionReferenceIndicator",
    ]  # fmt: skip
    assert {k: str(ds[k].value) for k in copied} == {k: str(first[k].value) for k in copied}
    assert ds.InstanceCreationDate == ds.StructureSetDate and len(ds.StructureSetDate) == 8
    assert ds.InstanceCreationTime == ds.StructureSetTime
    assert ds.SeriesInstanceUID != first.SeriesInstanceUID

    assert [_keywords(item) for item in ds.StructureSetROISequence] == [ROI_ITEM] * 3
    assert [
        (r.ROINumber, r.ROIName, r.ROIGenerationAlgorithm, r.ROIGenerationDescription)
        for r in ds.StructureSetROISequence
    ] == [
        (n, name, "SEMIAUTOMATIC", f"petseg {__version__}")
        for n, name in ((4, "lesion_004"), (11, "lesion_011"), (12, TOTAL_ROI_NAME))
    ]
    assert [_keywords(item) for item in ds.RTROIObservationsSequence] == [OBSERVATION_ITEM] * 3
    assert [
        (o.ObservationNumber, o.ReferencedROINumber, o.ROIObservationLabel, o.ROIInterpreter)
        for o in ds.RTROIObservationsSequence
    ] == [(4, 4, "lesion_004", ""), (11, 11, "lesion_011", ""), (12, 12, TOTAL_ROI_NAME, "")]
    colors = lesion_colors([4, 11])
    assert [
        (list(item.ROIDisplayColor), item.ReferencedROINumber) for item in ds.ROIContourSequence
    ] == [(list(colors[4]), 4), (list(colors[11]), 11), ([255, 255, 0], 12)]

    # contours: petseg.contours' polygons on each slice's own Image Position (Patient)
    expected = label_contours(labels, reference.geometry)
    expected[12] = mask_contours(labels > 0, reference.geometry)
    for item in ds.ROIContourSequence:
        contours = expected[item.ReferencedROINumber]
        assert [_keywords(c) for c in item.ContourSequence] == [CONTOUR_ITEM] * len(contours)
        for number, (c, contour) in enumerate(
            zip(item.ContourSequence, contours, strict=True), start=1
        ):
            header = reference.headers[contour.k]
            assert c.ContourNumber == number and c.ContourGeometricType == "CLOSED_PLANAR"
            assert c.NumberOfContourPoints == len(contour.points)
            (image,) = c.ContourImageSequence
            assert _keywords(image) == ["ReferencedSOPClassUID", "ReferencedSOPInstanceUID"]
            assert image.ReferencedSOPInstanceUID == header.SOPInstanceUID
            assert image.ReferencedSOPClassUID == header.SOPClassUID
            points = contour.points.copy()
            points[:, 2] = float(header.ImagePositionPatient[2])  # axial slices
            assert [v.original_string for v in c.ContourData] == [
                f"{v:.3f}" for v in points.ravel()
            ]

    # the lone voxel (k, j, i) = (2, 2, 2): a diamond of half-pixel steps around its
    # centre, computed from the slice's Image Position and Orientation (Patient)
    header = reference.headers[2]
    row, column = np.array(header.ImageOrientationPatient, float).reshape(2, 3)
    dj, di = (float(v) for v in header.PixelSpacing)
    centre = np.array(header.ImagePositionPatient, float) + 2 * di * row + 2 * dj * column
    diamond = {
        tuple(np.round(centre + step, 3))
        for step in (0.5 * dj * column, -0.5 * dj * column, 0.5 * di * row, -0.5 * di * row)
    }
    (lone,) = ds.ROIContourSequence[1].ContourSequence
    assert {tuple(p) for p in np.array(lone.ContourData, float).reshape(-1, 3)} == diamond
