"""Tracer profiles and the tracer named by a PET's DICOM headers (real headers where held)."""

import pydicom
import pytest

from petseg.organs import expand_organ
from petseg.tracers import (
    TRACERS,
    Radiopharmaceutical,
    get_tracer,
    radiopharmaceutical_from_dataset,
    resolve_tracer,
    tracer_from_radiopharmaceutical,
)


def test_profiles_name_vocabulary_organs_and_leave_the_liver_out():
    assert set(TRACERS) == {"dotatate", "fdg", "psma"}
    for profile in TRACERS.values():
        organs = set().union(*(expand_organ(o) for o in profile.physiological))
        assert "liver" not in organs  # liver metastases are kept
    assert {"kidneys", "urinary_bladder", "adrenal_glands", "spleen"} <= set(
        TRACERS["dotatate"].physiological
    )
    assert {"brain", "heart"} <= set(TRACERS["fdg"].physiological)
    assert get_tracer(" DOTATATE ").name == "dotatate"
    with pytest.raises(ValueError, match=r"--tracer must be one of .*did you mean 'dotatate'"):
        get_tracer("dotatat")


def _first_pet_header(folder):
    for path in sorted(folder.rglob("*.dcm")):
        header = pydicom.dcmread(path, stop_before_pixels=True)
        if header.Modality == "PT":
            return header
    raise AssertionError(f"no PET file in {folder}")


def test_real_fdg_headers_by_code_and_by_name(sts_study):
    # STS_002 codes FDG as SNM3 C-B1031; STS_004 with a private 99SDM code whose meaning
    # and Radiopharmaceutical name say "FDG -- fluorodeoxyglucose"
    coded = radiopharmaceutical_from_dataset(_first_pet_header(sts_study("STS_002") / "pet"))
    assert ("SNM3", "C-B1031", "FDG -- fluorodeoxyglucose") in coded.codes
    assert tracer_from_radiopharmaceutical(coded) == "fdg"
    named = radiopharmaceutical_from_dataset(_first_pet_header(sts_study("STS_004") / "pet"))
    assert named.codes[0][:2] == ("99SDM", "Y-X1743")
    assert tracer_from_radiopharmaceutical(named) == "fdg"
    choice = resolve_tracer(None, named)
    assert (choice.profile.name, choice.source) == ("fdg", "DICOM Radiopharmaceutical Information")
    assert choice.to_dict()["dicom_radiopharmaceutical"]["radionuclide"] == "18F"


def test_a_radionuclide_alone_names_no_tracer(shared_data):
    # the Lu-177 DOTATATE SPECT names only its radionuclide: the user must choose
    header = _first_pet_header(shared_data / "lu177-dotatate-spect/SCAN_001")
    info = radiopharmaceutical_from_dataset(header)
    assert (info.name, info.codes, info.radionuclide) == ("", (), "177 Lutetium")
    assert tracer_from_radiopharmaceutical(info) is None
    with pytest.raises(
        ValueError, match=r"radionuclide '177 Lutetium'.*--tracer dotatate\|fdg\|psma"
    ):
        resolve_tracer(None, info)
    chosen = resolve_tracer("dotatate", info)
    assert chosen.source == "--tracer" and chosen.header == info


def test_codes_and_names_of_other_tracers():
    def coded(scheme, value, meaning=""):
        return Radiopharmaceutical(codes=((scheme, value, meaning),))

    assert tracer_from_radiopharmaceutical(coded("SCT", "724025002")) == "dotatate"
    assert tracer_from_radiopharmaceutical(coded("SCT", "35321007")) == "fdg"
    assert tracer_from_radiopharmaceutical(coded("DCM", "126758")) == "psma"
    assert tracer_from_radiopharmaceutical(coded("NCIt", "C118961")) == "psma"
    assert tracer_from_radiopharmaceutical(coded("99X", "1", "Ga-68 DOTATOC")) == "dotatate"
    for name, tracer in (
        ("Cu-64 DOTATATE", "dotatate"),  # what petseg's phantom writes
        ("68Ga-DOTA-NOC", "dotatate"),
        ("Fludeoxyglucose F18", "fdg"),
        ("[18F]DCFPyL", "psma"),
        ("Ga-68 PSMA-11", "psma"),
        ("Fluciclovine", None),
        ("", None),
    ):
        assert tracer_from_radiopharmaceutical(Radiopharmaceutical(name=name)) == tracer, name
    # a header as a mapping (the JSON header dumps)
    header = {
        "RadiopharmaceuticalInformationSequence": [
            {"Radiopharmaceutical": "Cu-64 DOTATATE", "RadionuclideCodeSequence": []}
        ]
    }
    assert radiopharmaceutical_from_dataset(header).name == "Cu-64 DOTATATE"
    assert radiopharmaceutical_from_dataset({}) == Radiopharmaceutical()
    with pytest.raises(ValueError, match="the PET is not DICOM"):
        resolve_tracer(None, None)
    override = resolve_tracer("fdg", Radiopharmaceutical(name="Cu-64 DOTATATE"))
    assert override.profile.name == "fdg"
    assert override.to_dict()["dicom_radiopharmaceutical"]["name"] == "Cu-64 DOTATATE"
