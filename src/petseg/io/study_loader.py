"""Load a PET/CT examination into a :class:`~petseg.study.Study` (PET in SUVbw).

Two sources:

* a DICOM folder (searched recursively; may mix PET, CT, RTSTRUCT and other series);
* NIfTI files ``pet=`` (and optionally ``ct=``).

The CT, when present, is resampled onto the PET grid (trilinear, −1024 HU outside the
CT) after checking that both share the Frame of Reference (DICOM) and that their fields
of view overlap.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from petseg.checks import did_you_mean
from petseg.io.dataset import case_ct, case_pet, is_case_folder
from petseg.io.dicom import DicomSeries, DicomVolume, instance_uids, read_series, scan_folder
from petseg.io.nifti import read_nifti
from petseg.io.resample import DEFAULT_CT_FILL_HU, fov_overlap_fraction, resample_to_grid
from petseg.io.suv import (
    NIFTI_SUV_UNITS,
    SuvConversion,
    SuvError,
    check_suv_options,
    check_suv_plausible,
    given_suv_factor,
    suv_factor,
    suv_headers,
    to_datetime,
)
from petseg.study import DicomSource, Geometry, Study

__all__ = ["PET_UNITS", "load_study", "select_series"]

#: Units a PET NIfTI may be in.
PET_UNITS = ("SUV", "BQML")


@dataclass(frozen=True)
class _SuvInputs:
    """The SUV conversion keywords of :func:`load_study`, as given (None: not given)."""

    suv_factor: float | None = None
    weight_kg: float | None = None
    dose_bq: float | None = None
    injection_time: dt.datetime | str | None = None
    scan_time: dt.datetime | str | None = None
    half_life_s: float | None = None


def select_series(
    series: list[DicomSeries], modality: str, series_uid: str | None, *, folder: Path, option: str
) -> DicomSeries | None:
    """Pick the one series of ``modality`` (or the one with ``series_uid``).

    Parameters
    ----------
    series : list of DicomSeries
        The series of a study folder (:func:`petseg.io.dicom.scan_folder`).
    modality : str
        DICOM Modality wanted: ``"PT"`` or ``"CT"``.
    series_uid : str or None
        Series Instance UID asked for; None picks the only series of ``modality``.
    folder : Path
        The study folder, named in error messages.
    option : str
        The library option that chooses the series (``series_uid``), named in the error
        when several series match.

    Returns
    -------
    DicomSeries or None
        None when there is no series of that modality and no UID was asked for.

    Raises
    ------
    ValueError
        The UID is not found, or several series of the modality exist and no UID was
        given; the message lists them and names ``option``.
    """
    candidates = [s for s in series if s.modality == modality]
    cli_option = "pet-series" if modality == "PT" else f"{modality.lower()}-series"
    listing = "\n  ".join(s.summary() for s in candidates) or "(none)"
    if series_uid is not None:
        chosen = [s for s in series if s.series_uid == series_uid]
        if not chosen:
            raise ValueError(
                f"{folder}: no series with SeriesInstanceUID {series_uid}; "
                f"{modality} series found:\n  {listing}"
            )
        return chosen[0]
    if len(candidates) > 1:
        raise ValueError(
            f"{folder} holds {len(candidates)} {modality} series; choose one with "
            f"{option}=<SeriesInstanceUID> (CLI: --{cli_option} UID):\n  {listing}"
        )
    return candidates[0] if candidates else None


def _check_pet(pet: np.ndarray, source: str) -> None:
    if not np.all(np.isfinite(pet)):
        bad = int(np.count_nonzero(~np.isfinite(pet)))
        raise ValueError(f"PET {source} has {bad} NaN/infinite voxels; fix or mask the input image")
    if not np.any(pet):
        raise ValueError(f"PET {source} is empty (all voxels are 0)")


def _attach_ct(
    ct: np.ndarray,
    ct_geometry: Geometry,
    pet_geometry: Geometry,
    *,
    pet_name: str,
    ct_name: str,
) -> np.ndarray:
    if fov_overlap_fraction(ct_geometry, pet_geometry) <= 0.0:
        raise ValueError(
            f"the CT ({ct_name}) does not overlap the PET ({pet_name}) in patient space "
            f"(CT origin {np.round(ct_geometry.origin, 1).tolist()} mm, PET origin "
            f"{np.round(pet_geometry.origin, 1).tolist()} mm); pass the CT of the same "
            "examination, or load the PET alone"
        )
    return resample_to_grid(ct, ct_geometry, pet_geometry, order=1, fill=DEFAULT_CT_FILL_HU)


def load_study(
    path: str | os.PathLike[str] | None = None,
    *,
    pet: str | os.PathLike[str] | None = None,
    ct: str | os.PathLike[str] | None = None,
    pet_units: str = "SUV",
    suv_check: bool = True,
    suv_factor: float | None = None,
    weight_kg: float | None = None,
    dose_bq: float | None = None,
    injection_time: dt.datetime | str | None = None,
    scan_time: dt.datetime | str | None = None,
    half_life_s: float | None = None,
    series_uid: str | None = None,
    ct_series_uid: str | None = None,
    skip_unreadable: bool = False,
) -> Study:
    """Load a PET (and CT) examination as a Study with PET in SUVbw (g/mL).

    Parameters
    ----------
    path : path, optional
        DICOM folder (searched recursively). Mutually exclusive with ``pet``/``ct``.
    pet, ct : path, optional
        NIfTI PET (and CT in HU) files.
    pet_units : {"SUV", "BQML"}
        Units of a NIfTI PET. ``"BQML"`` needs ``suv_factor``, or ``weight_kg`` +
        ``dose_bq`` (+ ``injection_time``, ``scan_time`` and ``half_life_s`` when the
        image is decay-corrected to the scan start rather than to the injection).
    suv_check : bool
        Refuse a PET whose values cannot be SUVbw (:func:`petseg.io.suv.check_suv_plausible`:
        e.g. Bq/mL read as SUV); False only records its statistics in
        ``provenance["suv"]["plausibility"]``.
    suv_factor : float, optional
        SUVbw = value × factor; for DICOM it replaces the header computation.
    weight_kg, dose_bq, injection_time : optional
        Override the DICOM header values (kg, Bq, date-time).
    scan_time, half_life_s : optional
        NIfTI BQML only: decay reference time and half-life (s).
    series_uid, ct_series_uid : str, optional
        Choose the PET / CT series when a folder holds several.
    skip_unreadable : bool
        DICOM: skip unreadable files (listed in ``provenance["dicom"]["skipped"]``).

    Returns
    -------
    Study
        ``provenance``: sources, UIDs, SUV details, DICOM files (see docs/io.md).
    """
    if path is not None and (pet is not None or ct is not None):
        raise ValueError("give either a DICOM folder (path) or NIfTI files (pet=, ct=), not both")
    case_dir = study = None
    given = _SuvInputs(suv_factor, weight_kg, dose_bq, injection_time, scan_time, half_life_s)
    if path is not None:
        source = Path(path)
        if source.is_file() and source.name.endswith((".nii", ".nii.gz")):
            pet = source
        elif is_case_folder(source):  # docs/dataset-layout.md
            case_dir, pet, ct = source, case_pet(source), case_ct(source)
        else:
            _refuse_unused(
                source,
                "a DICOM folder (its Units header decides)",
                pet_units=None if pet_units.upper() == "SUV" else pet_units,
                scan_time=scan_time,
                half_life_s=half_life_s,
            )
            study = _load_dicom(
                source,
                given,
                series_uid=series_uid,
                ct_series_uid=ct_series_uid,
                skip_unreadable=skip_unreadable,
            )
    if study is None:
        if pet is None:
            raise ValueError("no input: pass a DICOM folder, or pet= (and ct=) NIfTI files")
        dicom_only: dict[str, object] = {"series_uid": series_uid, "ct_series_uid": ct_series_uid}
        dicom_only["skip_unreadable"] = skip_unreadable or None
        _refuse_unused(Path(pet), "NIfTI files", **dicom_only)
        study = _load_nifti(Path(pet), None if ct is None else Path(ct), pet_units, given)
    if case_dir is not None:
        study.provenance["synthetic"] = _case_is_synthetic(case_dir)
    suv = study.provenance["suv"]
    suv["plausibility"] = check_suv_plausible(
        study.pet, units=suv["units"], source=study.provenance["source"], check=suv_check
    )
    return study


#: CLI options of the load_study keywords that apply to one input format only.
_CLI_OPTION = {
    "pet_units": "--pet-units",
    "series_uid": "--pet-series",
    "ct_series_uid": "--ct-series",
    "skip_unreadable": "--skip-unreadable",
}


def _refuse_unused(source: Path, kind: str, **options: object) -> None:
    """Refuse keywords given (not None) that do not apply to ``kind`` of input."""
    given = [
        f"{name}= ({_CLI_OPTION[name]})" if name in _CLI_OPTION else f"{name}="
        for name, value in options.items()
        if value is not None
    ]
    if given:
        raise ValueError(
            f"{source}: {', '.join(given)} cannot apply to {kind}; drop "
            f"{'it' if len(given) == 1 else 'them'}"
        )


def _case_is_synthetic(case_dir: Path) -> bool:
    """True when a case folder (or its dataset) declares itself synthetic (phantom data)."""
    for marker in (case_dir / "truth.json", case_dir.parent / "dataset.json"):
        if marker.is_file():
            try:
                if json.loads(marker.read_text(encoding="utf-8")).get("synthetic") is True:
                    return True
            except (json.JSONDecodeError, AttributeError):
                continue
    return False


def _dicom_ct(
    ct_series: DicomSeries, pet_geometry: Geometry, *, pet_name: str, pet_frame: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """The CT series resampled onto the PET grid, and its provenance entry."""
    ct_volume = read_series(ct_series)
    ct_frame = str(ct_volume.headers[0].get("FrameOfReferenceUID", ""))
    if ct_frame != pet_frame:
        raise ValueError(
            f"the CT ({ct_series.summary()}) has Frame of Reference UID {ct_frame} but the "
            f"PET ({pet_name}) has {pet_frame}: they are not in the same patient coordinates. "
            "Register the CT to the PET first, or choose another CT (ct_series_uid=)"
        )
    ct_array = _attach_ct(
        ct_volume.array,
        ct_volume.geometry,
        pet_geometry,
        pet_name=pet_name,
        ct_name=ct_series.summary(),
    )
    return ct_array, {
        "series_instance_uid": ct_series.series_uid,
        "dir": str(ct_series.files[0].parent),
        "geometry": ct_volume.geometry.to_dict(),
        "resampling": {"order": 1, "fill_hu": DEFAULT_CT_FILL_HU},
    }


def _dicom_provenance(
    folder: Path, pet: DicomVolume, conversion: SuvConversion, *, skipped: tuple[str, ...]
) -> dict[str, Any]:
    """``study.provenance`` of a DICOM study (see :func:`load_study`)."""
    head = pet.headers[0]
    return {
        "source": str(folder),
        "format": "DICOM",
        "patient_id": str(head.get("PatientID", "")),
        "modality": "PT",
        "manufacturer": str(head.get("Manufacturer", "")),
        "model": str(head.get("ManufacturerModelName", "")),
        "suv": conversion.to_dict(),
        "dicom": {
            "pet_dir": str(pet.files[0].parent),
            "pet_files": [str(p) for p in pet.files],
            "sop_instance_uids": instance_uids(pet.headers, pet.files),
            "study_instance_uid": str(head.get("StudyInstanceUID", "")),
            "series_instance_uid": str(head.get("SeriesInstanceUID", "")),
            "frame_of_reference_uid": str(head.get("FrameOfReferenceUID", "")),
            "patient_position": str(head.get("PatientPosition", "")),
            "skipped": list(skipped),
        },
    }


def _dicom_suv(pet: DicomVolume, name: str, given: _SuvInputs) -> SuvConversion:
    """The SUVbw conversion of a PET series: its headers, or the factor given."""
    source = f"{pet.files[0]} ({name})"
    if given.suv_factor is not None:
        return given_suv_factor(
            given.suv_factor,
            units=str(pet.headers[0].get("Units", "")),
            source=source,
            weight_kg=given.weight_kg,
            dose_bq=given.dose_bq,
            injection_time=given.injection_time,
        )
    return suv_factor(
        suv_headers(pet.headers, pet.files),
        weight_kg=given.weight_kg,
        dose_bq=given.dose_bq,
        injection_time=given.injection_time,
        source=source,
    )


def _load_dicom(
    folder: Path,
    given: _SuvInputs,
    *,
    series_uid: str | None,
    ct_series_uid: str | None,
    skip_unreadable: bool,
) -> Study:
    if not folder.exists():
        raise FileNotFoundError(f"{folder} does not exist")
    scan = scan_folder(folder, skip_unreadable=skip_unreadable)
    series = list(scan.series)
    pet_series = select_series(series, "PT", series_uid, folder=folder, option="series_uid")
    if pet_series is None or pet_series.modality != "PT":
        found = ", ".join(f"{s.modality} ({len(s.files)} files)" for s in series) or "no DICOM"
        raise ValueError(
            f"{folder} holds no PET series (Modality PT); found: {found}. "
            "Pass the folder of the PET examination"
        )
    pet_volume = read_series(pet_series)
    name = pet_series.summary()
    conversion = _dicom_suv(pet_volume, name, given)
    suv = pet_volume.array
    suv *= np.float32(conversion.factor)  # in place: the volume is not held twice
    _check_pet(suv, f"series {pet_series.series_uid} in {pet_series.files[0].parent}")
    head = pet_volume.headers[0]
    provenance = _dicom_provenance(folder, pet_volume, conversion, skipped=scan.skipped)
    ct_series = select_series(series, "CT", ct_series_uid, folder=folder, option="ct_series_uid")
    ct_array = None
    if ct_series is not None:
        ct_array, provenance["ct"] = _dicom_ct(
            ct_series,
            pet_volume.geometry,
            pet_name=name,
            pet_frame=str(head.get("FrameOfReferenceUID", "")),
        )
    return Study(
        pet=suv,
        geometry=pet_volume.geometry,
        ct=ct_array,
        patient_id=provenance["patient_id"] or "anonymous",
        study_id=str(head.get("StudyID", "") or provenance["dicom"]["study_instance_uid"]),
        provenance=provenance,
        dicom=DicomSource(
            headers=tuple(pet_volume.headers),
            geometry=pet_volume.geometry,
            files=tuple(pet_volume.files),
        ),
    )


def _nifti_suv(pet_path: Path, pet_units: str, given: _SuvInputs) -> SuvConversion:
    """The SUVbw conversion of a NIfTI PET in ``pet_units`` from the keywords given."""
    units = pet_units.upper()
    if units not in PET_UNITS:
        raise ValueError(
            f"pet_units must be one of {PET_UNITS}, got {pet_units!r}{did_you_mean(units, PET_UNITS)}"
        )
    check_suv_options(units, source=str(pet_path), **asdict(given))
    if units == "SUV":
        return SuvConversion(factor=1.0, rule="GML", units=NIFTI_SUV_UNITS)
    if given.suv_factor is not None:
        return given_suv_factor(given.suv_factor, units="BQML", source=str(pet_path))
    if given.weight_kg is None or given.dose_bq is None:
        raise SuvError(
            f"{pet_path} is in Bq/mL (pet_units='BQML') but NIfTI has no SUV headers: pass "
            "suv_factor=, or weight_kg= and dose_bq= (with injection_time=, scan_time= and "
            "half_life_s= if the image is decay-corrected to the scan start)"
        )
    header: dict[str, Any] = {
        "Units": "BQML",
        "CorrectedImage": ["ATTN", "DECY"],
        "PatientWeight": given.weight_kg,
        "RadionuclideTotalDose": given.dose_bq,
        "DecayCorrection": "ADMIN",
    }
    timing = (given.injection_time, given.scan_time, given.half_life_s)
    if any(v is not None for v in timing):
        if any(v is None for v in timing):
            raise SuvError(
                f"{pet_path}: to decay-correct the dose give all of injection_time=, "
                f"scan_time= and half_life_s= (got {timing})"
            )
        scan = to_datetime(given.scan_time)  # type: ignore[arg-type]
        header.update(
            DecayCorrection="START",
            RadionuclideHalfLife=given.half_life_s,
            SeriesDate=scan.strftime("%Y%m%d"),
            SeriesTime=scan.strftime("%H%M%S.%f"),
        )
    return suv_factor([header], injection_time=given.injection_time, source=str(pet_path))


def _load_nifti(pet_path: Path, ct_path: Path | None, pet_units: str, given: _SuvInputs) -> Study:
    conversion = _nifti_suv(pet_path, pet_units, given)
    values, geometry = read_nifti(pet_path)
    suv = np.asarray(values, dtype=np.float32) * np.float32(conversion.factor)
    _check_pet(suv, str(pet_path))
    provenance: dict[str, Any] = {
        "source": str(pet_path),
        "format": "NIfTI",
        "pet": str(pet_path),
        "suv": conversion.to_dict(),
    }
    ct_array = None
    if ct_path is not None:
        ct_values, ct_geometry = read_nifti(ct_path)
        ct_array = _attach_ct(
            np.asarray(ct_values, dtype=np.float32),
            ct_geometry,
            geometry,
            pet_name=str(pet_path),
            ct_name=str(ct_path),
        )
        provenance["ct"] = {
            "path": str(ct_path),
            "geometry": ct_geometry.to_dict(),
            "resampling": {"order": 1, "fill_hu": DEFAULT_CT_FILL_HU},
        }
    name = pet_path.name.removesuffix(".gz").removesuffix(".nii")
    if name == "pet":  # dataset layout: <case_id>/pet.nii.gz
        name = pet_path.resolve().parent.name
    return Study(
        pet=suv,
        geometry=geometry,
        ct=ct_array,
        patient_id=name,
        study_id=name,
        provenance=provenance,
    )
