"""What the RTSTRUCT and SEG writers share: identity values invalid for their VR, ROI
names, on the real STS_004 PET headers (Study ID 'IBSI_1_STS_004_PET': 18 characters,
VR SH allows 16)."""

import pytest

from petseg.io.export.common import (
    identity_cleaned,
    identity_problems,
    lesion_names,
    read_reference_series,
)


@pytest.fixture(scope="module")
def headers(sts_study):
    return read_reference_series(sts_study("STS_004") / "pet").headers


def test_invalid_study_id_is_reported_and_blanked_in_copies_only(headers) -> None:
    (problem,) = identity_problems(headers[0])
    assert problem.startswith("StudyID 'IBSI_1_STS_004_PET' not copied")
    cleaned = identity_cleaned(headers)
    assert len(cleaned) == len(headers) == 85
    for clean, header in zip(cleaned, headers, strict=True):
        assert clean.StudyID == "" and header.StudyID == "IBSI_1_STS_004_PET"
        assert [e.keyword for e in clean] == [e.keyword for e in header]
        assert clean.SOPInstanceUID == header.SOPInstanceUID
        assert clean.PatientID == header.PatientID == "STS_004"
    assert identity_problems(cleaned[0]) == []


def test_valid_headers_are_returned_as_they_are(headers) -> None:
    cleaned = identity_cleaned(headers)
    again = identity_cleaned(cleaned)
    assert all(a is b for a, b in zip(again, cleaned, strict=True))


def test_lesion_names_default_and_overrides() -> None:
    assert lesion_names([1, 7, 1234]) == {1: "lesion_001", 7: "lesion_007", 1234: "lesion_1234"}
    assert lesion_names([2, 3], {3: "liver met", 9: "not present"}) == {
        2: "lesion_002",
        3: "liver met",
    }
