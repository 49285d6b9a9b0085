"""DICOM export (RTSTRUCT or SEG) of a saved review version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from petseg.review.errors import BadRequestError, UnprocessableError
from petseg.review.session import CaseSession

__all__ = ["export_saved_version"]


def export_saved_version(session: CaseSession, fmt: Any) -> dict[str, Any]:
    """Export the session's saved version as DICOM RTSTRUCT or SEG beside it.

    Needs a case read from DICOM (``report["inputs"]["dicom"]``) and no unsaved edits. A
    saved version never changes, so exporting it again answers with the files written
    the first time (``"existing": true``).

    Parameters
    ----------
    session : CaseSession
        A session on a saved version, without unsaved edits.
    fmt : {"rtstruct", "seg"}
        The DICOM object to write.

    Returns
    -------
    dict
        ``written`` (the files) and ``existing`` (written by an earlier export).
    """
    from petseg.io.atomic import MARKER, atomic_dir, is_petseg_output
    from petseg.study import Study

    if fmt not in ("rtstruct", "seg"):
        raise BadRequestError(f"format must be 'rtstruct' or 'seg', got {fmt!r}")
    case = session.case
    inputs = case.report.get("inputs") or {}
    if not inputs.get("dicom"):
        raise UnprocessableError(
            "this case was segmented from NIfTI files, so there is no DICOM series to "
            "reference; an RTSTRUCT/SEG needs the PET read from DICOM (petseg segment DICOM_FOLDER)"
        )
    if session.base_version == 0 or session.unsaved:
        raise UnprocessableError(
            "save the corrected version first; the export is of a saved version"
        )
    target = case.folder / "review" / f"v{session.base_version:03d}" / f"export-{fmt}"
    if target.exists():
        if not is_petseg_output(target):
            raise UnprocessableError(f"{target} exists and was not written by petseg; move it away")
        files = sorted(str(p) for p in target.iterdir() if p.name != MARKER)
        return {"written": files, "existing": True}
    from petseg.io.export import export_lesions_for_study, read_reference_series

    dicom = inputs["dicom"] if isinstance(inputs["dicom"], dict) else {}
    series = dicom.get("pet_files") or dicom.get("pet_dir")
    if not series:
        raise UnprocessableError(
            f"{case.folder / 'report.json'} names no PET DICOM files (inputs.dicom.pet_files); "
            "segment the case again from its DICOM folder"
        )
    try:
        reference = read_reference_series(series)
    except OSError as err:
        raise UnprocessableError(
            f"the PET series this case was segmented from cannot be read ({err}); "
            "put it back where report.json's inputs.dicom says, or segment the case again"
        ) from err
    study = Study(
        pet=case.suv,
        geometry=case.geometry,
        patient_id=str(case.report.get("patient_id", "anonymous")),
        study_id=str(case.report.get("study_id", "")),
        provenance=inputs,
        dicom=reference,
    )
    with atomic_dir(target) as tmp:
        written = export_lesions_for_study(
            tmp, session.labels, study, rtstruct=fmt == "rtstruct", seg=fmt == "seg"
        )
    return {"written": [str(target / Path(p).name) for p in written], "existing": False}
