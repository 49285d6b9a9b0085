"""SUVbw scale factors from PET headers (QIBA rules).

The factor multiplies *rescaled* pixel values (stored × RescaleSlope + RescaleIntercept)
to give SUVbw in g/mL. The rules, by ``Units`` (0054,1001):

``GML``
    The pixels already are SUVbw: factor 1, no conversion.
``BQML``
    ``factor = weight_g / decayed_dose_Bq``. With ``DecayCorrection`` (0054,1102)
    ``START`` the dose is decayed to the scan reference time:
    ``dose · 2^(−dt / half_life)``, ``dt = reference − injection`` in seconds (full
    fractional seconds). The reference is the Series Date/Time unless that is later
    than the earliest Acquisition Date/Time of the instances, in which case it is that
    earliest acquisition. Injection is RadiopharmaceuticalStartDateTime, else the
    Series Date with RadiopharmaceuticalStartTime. With ``ADMIN`` the pixels are
    already decay-corrected to the injection: ``factor = weight_g / dose_Bq``.
``CNTS``
    Philips: the private SUV Scale Factor (7053,1000) of creator
    "Philips PET Private Group" is the factor.

Headers are plain mappings with the keys of :data:`HEADER_KEYS` (the JSON fixtures in
``shared/data/suv-headers`` have exactly this form); :func:`header_from_dataset`
builds one from a pydicom dataset.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "HEADER_KEYS",
    "MAX_PLAUSIBLE_WEIGHT_KG",
    "SUV_OPTIONS",
    "SuvConversion",
    "SuvError",
    "check_suv_options",
    "check_suv_plausible",
    "given_suv_factor",
    "header_from_dataset",
    "parse_dicom_datetime",
    "suv_factor",
    "suv_factor_from_values",
    "suv_headers",
    "to_datetime",
]

#: Header keys read from the PET instance itself.
_IMAGE_KEYS = (
    "SeriesDate",
    "SeriesTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "PatientWeight",
    "Units",
    "DecayCorrection",
)
#: Header keys read from the first Radiopharmaceutical Information Sequence item.
_RADIOPHARMACEUTICAL_KEYS = (
    "RadionuclideTotalDose",
    "RadionuclideHalfLife",
    "RadiopharmaceuticalStartTime",
    "RadiopharmaceuticalStartDateTime",
)
#: Keys of a header mapping (DICOM keywords; the Philips group is a nested mapping).
HEADER_KEYS = (
    *_IMAGE_KEYS,
    "CorrectedImage",
    *_RADIOPHARMACEUTICAL_KEYS,
    "PhilipsPETPrivateGroup",
)
#: Patient weights above this (kg) are refused as implausible (likely grams or a typo).
MAX_PLAUSIBLE_WEIGHT_KG = 400.0
PHILIPS_PRIVATE_CREATOR = "Philips PET Private Group"
#: Header keys that may differ between the slices of one series (the rest may not).
PER_SLICE_KEYS = ("AcquisitionDate", "AcquisitionTime")
#: The DICOM elements :func:`header_from_dataset` reads (the Philips private block:
#: its creator and SUV Scale Factor at the usual block 0x10).
_STORED: tuple[str | int, ...] = (
    *_IMAGE_KEYS,
    "CorrectedImage",
    "RadiopharmaceuticalInformationSequence",
    0x70530010,
    0x70531000,
)

_TAGS = {
    "PatientWeight": "(0010,1030)",
    "Units": "(0054,1001)",
    "DecayCorrection": "(0054,1102)",
    "CorrectedImage": "(0028,0051)",
    "RadionuclideTotalDose": "(0018,1074)",
    "RadionuclideHalfLife": "(0018,1075)",
    "RadiopharmaceuticalStartTime": "(0018,1072)",
    "RadiopharmaceuticalStartDateTime": "(0018,1078)",
    "SeriesDate": "(0008,0021)",
    "SeriesTime": "(0008,0031)",
    "SUVScaleFactor": "(7053,1000)",
}
_FIX = {
    "PatientWeight": "pass the weight in kg (weight_kg= / --weight-kg)",
    "RadionuclideTotalDose": "pass the injected activity in Bq (dose_bq= / --dose-bq)",
    "RadiopharmaceuticalStartTime": "pass the injection date and time (injection_time=)",
    "RadiopharmaceuticalStartDateTime": "pass the injection date and time (injection_time=)",
}


class SuvError(ValueError):
    """SUV cannot be computed from the headers; the message names the field and the fix."""


@dataclass(frozen=True)
class SuvConversion:
    """How rescaled pixel values were turned into SUVbw; stored in ``provenance["suv"]``.

    Attributes
    ----------
    factor : float
        SUVbw = rescaled value × factor (g/mL per pixel unit; g/Bq·mL for BQML).
    rule : str
        ``"GML"``, ``"BQML-START"``, ``"BQML-ADMIN"``, ``"CNTS-PHILIPS"`` or ``"given"``.
    units : str
        Pixel units before conversion.
    weight_kg, dose_bq, half_life_s : float or None
        Values used (after caller overrides).
    decay_time_s : float or None
        ``reference − injection`` in seconds (BQML-START only).
    reference_time, injection_time : str or None
        ISO 8601 date-times used.
    reference_source : str or None
        ``"SeriesDateTime"`` or ``"earliest AcquisitionDateTime"``.
    overrides : tuple of str
        Header values replaced by the caller.
    """

    factor: float
    rule: str
    units: str
    weight_kg: float | None = None
    dose_bq: float | None = None
    half_life_s: float | None = None
    decay_time_s: float | None = None
    reference_time: str | None = None
    injection_time: str | None = None
    reference_source: str | None = None
    overrides: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        out = asdict(self)
        out["overrides"] = list(self.overrides)
        return out


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def parse_dicom_datetime(date: Any = None, time: Any = None, datetime: Any = None) -> dt.datetime:
    """Combine DICOM DA + TM, or parse a DT, into a naive ``datetime`` (full fractions).

    A UTC offset in a DT value is dropped: all times of one examination are taken to be in
    the same local time zone, as DA/TM values are.

    Parameters
    ----------
    date : str or pydicom DA, optional
        DICOM date ``YYYYMMDD`` (with ``time``).
    time : str or pydicom TM, optional
        DICOM time ``HHMMSS.FFFFFF`` (with ``date``).
    datetime : str or pydicom DT, optional
        DICOM date-time ``YYYYMMDDHHMMSS.FFFFFF&ZZXX``; used instead of ``date`` and
        ``time`` when given.

    Returns
    -------
    datetime.datetime
        Naive (no time zone).

    Raises
    ------
    ValueError
        If the values are empty or malformed.
    """
    from pydicom.valuerep import DA, DT, TM

    if _text(datetime):
        parsed = DT(_text(datetime))
        if parsed is None:
            raise ValueError(f"empty DICOM date-time {datetime!r}")
        return dt.datetime.combine(parsed.date(), parsed.time())
    day = DA(_text(date)) if _text(date) else None
    clock = TM(_text(time)) if _text(time) else None
    if day is None or clock is None:
        raise ValueError(f"need both a date and a time, got date={date!r}, time={time!r}")
    return dt.datetime.combine(
        day, dt.time(clock.hour, clock.minute, clock.second, clock.microsecond)
    )


def to_datetime(value: dt.datetime | str) -> dt.datetime:
    """A naive ``datetime`` from a datetime, an ISO 8601 string or a DICOM DT string.

    Parameters
    ----------
    value : datetime.datetime or str
        A date-time (its time zone is dropped), ISO 8601 text or DICOM DT text.

    Returns
    -------
    datetime.datetime
        Naive (no time zone).
    """
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    text = _text(value)
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        return parse_dicom_datetime(datetime=text)


def _field_error(
    source: str, key: str, value: Any, problem: str, fix: str | None = None
) -> SuvError:
    fix = fix or _FIX.get(key, "fix the header or pass the value explicitly")
    return SuvError(
        f"{source}: cannot compute SUVbw: {key} {_TAGS.get(key, '')} is {problem} "
        f"(found {value!r}); {fix}"
    )


def _positive(source: str, header: Mapping[str, Any], key: str) -> float:
    value = header.get(key)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise _field_error(source, key, value, "missing or not a number") from None
    if not number > 0:
        raise _field_error(source, key, value, "not positive")
    return number


def suv_factor_from_values(
    *,
    weight_kg: float,
    dose_bq: float,
    half_life_s: float | None = None,
    decay_time_s: float | None = None,
) -> float:
    """SUVbw factor ``weight_g / (dose_Bq · 2^(−decay_time_s / half_life_s))``.

    Leave ``decay_time_s`` as None for images decay-corrected to the injection (ADMIN).

    Parameters
    ----------
    weight_kg : float
        Patient weight in kg (0 < weight ≤ :data:`MAX_PLAUSIBLE_WEIGHT_KG`).
    dose_bq : float
        Injected activity in Bq (> 0).
    half_life_s : float, optional
        Radionuclide half-life in s; needed with ``decay_time_s``.
    decay_time_s : float, optional
        Time from injection to the decay reference in s (≥ 0); None for no decay.

    Returns
    -------
    float
        g/(Bq·mL)·mL = mL⁻¹·g/Bq; SUVbw = Bq/mL × factor.
    """
    if not 0 < weight_kg <= MAX_PLAUSIBLE_WEIGHT_KG:
        raise SuvError(f"weight {weight_kg} kg is implausible; expected 0 < weight ≤ 400 kg")
    if not dose_bq > 0:
        raise SuvError(f"injected dose {dose_bq} Bq must be positive")
    decay = 1.0
    if decay_time_s is not None:
        if half_life_s is None or not half_life_s > 0:
            raise SuvError(f"half-life {half_life_s} s must be positive to decay the dose")
        if decay_time_s < 0:
            raise SuvError(f"decay time {decay_time_s} s is negative (scan before injection)")
        decay = 2.0 ** (-decay_time_s / half_life_s)
    return weight_kg * 1000.0 / (dose_bq * decay)


def suv_factor(
    headers: Sequence[Mapping[str, Any]],
    *,
    weight_kg: float | None = None,
    dose_bq: float | None = None,
    injection_time: dt.datetime | str | None = None,
    source: str = "PET series",
) -> SuvConversion:
    """SUVbw factor of one PET series from its instances' header mappings.

    Parameters
    ----------
    headers : sequence of mappings
        One per instance, keys as in :data:`HEADER_KEYS` (missing keys = absent fields).
        Series-level values are taken from the first; Acquisition Date/Time from all.
    weight_kg, dose_bq : float, optional
        Replace PatientWeight (kg) / RadionuclideTotalDose (Bq) from the header.
    injection_time : datetime or str, optional
        Replace the injection date-time (ISO 8601 or DICOM DT string).
    source : str
        Named in error messages (the file or series).

    Returns
    -------
    SuvConversion

    Raises
    ------
    SuvError
        Missing or implausible fields, or overrides given for a series whose units do not
        use them (GML, CNTS); the message names the DICOM keyword, tag, value found and
        the fix.
    """
    if not headers:
        raise SuvError(f"{source}: no PET headers given")
    first = headers[0]
    units = _text(first.get("Units")).upper()
    overrides = tuple(
        name
        for name, value in (
            ("PatientWeight", weight_kg),
            ("RadionuclideTotalDose", dose_bq),
            ("injection time", injection_time),
        )
        if value is not None
    )
    check_suv_options(
        units, weight_kg=weight_kg, dose_bq=dose_bq, injection_time=injection_time, source=source
    )
    if units == "GML":
        return SuvConversion(factor=1.0, rule="GML", units=units)
    if units == "CNTS":
        return _philips_cnts(first, source)
    if units != "BQML":
        raise _field_error(
            source,
            "Units",
            first.get("Units"),
            "not one of BQML, CNTS (Philips) or GML",
            "export the series in Bq/mL (BQML) or load it with pet_units='BQML' and suv_factor=",
        )
    _check_corrected(first, source)
    weight = weight_kg if weight_kg is not None else _positive(source, first, "PatientWeight")
    if not 0 < weight <= MAX_PLAUSIBLE_WEIGHT_KG:
        raise _field_error(
            source,
            "PatientWeight",
            weight,
            f"implausible (expected 0 < weight ≤ {MAX_PLAUSIBLE_WEIGHT_KG:g} kg)",
        )
    dose = dose_bq if dose_bq is not None else _positive(source, first, "RadionuclideTotalDose")
    if not dose > 0:
        raise _field_error(source, "RadionuclideTotalDose", dose, "not positive")
    return _bqml(headers, weight, dose, injection_time, source, overrides)


#: Loading options that convert Bq/mL to SUVbw: keyword, CLI option.
SUV_OPTIONS = {
    "suv_factor": "--suv-factor",
    "weight_kg": "--weight-kg",
    "dose_bq": "--dose-bq",
    "injection_time": "--injection-time",
    "scan_time": "scan_time=",
    "half_life_s": "half_life_s=",
}
#: Pixel units whose SUVbw factor uses no weight, dose or time, and what it comes from.
_FACTOR_WITHOUT_OPTIONS = {
    "GML": "the series has Units (0054,1001) GML: its pixels already are SUVbw",
    "SUV": "the image is taken as SUVbw (pet_units='SUV')",
    "CNTS": "the series has Units (0054,1001) CNTS: its factor is the Philips SUV Scale "
    "Factor (7053,1000)",
}


def check_suv_options(units: str, *, source: str, **options: object) -> None:
    """Refuse SUV conversion options that the conversion of ``units`` would ignore.

    Parameters
    ----------
    units : str
        ``Units`` (0054,1001) of a DICOM series, or ``"SUV"`` / ``"BQML"`` for a NIfTI.
    source : str
        Named in the error (the file or series).
    **options : object
        Keywords of :data:`SUV_OPTIONS` with the values given (None = not given).

    Raises
    ------
    SuvError
        ``weight_kg``, ``dose_bq``, times or ``suv_factor`` for an image already in SUVbw
        (``suv_factor`` is allowed for CNTS); weight, dose or times beside ``suv_factor``,
        which replaces the factor they would give.
    """
    given = [name for name, value in options.items() if value is not None]
    units = units.strip().upper()
    unused = [g for g in given if not (units == "CNTS" and g == "suv_factor")]
    if units in _FACTOR_WITHOUT_OPTIONS and unused:
        hint = (
            " (or pet_units='BQML', --pet-units BQML, if it is in Bq/mL)" if units == "SUV" else ""
        )
        raise SuvError(
            f"{source}: {_options_text(unused)} cannot apply: {_FACTOR_WITHOUT_OPTIONS[units]}; "
            f"drop {'it' if len(unused) == 1 else 'them'}{hint}"
        )
    if "suv_factor" in given and len(given) > 1:
        others = [g for g in given if g != "suv_factor"]
        raise SuvError(
            f"{source}: --suv-factor (suv_factor=) replaces the factor that "
            f"{_options_text(others)} would give; drop one or the other"
        )


def _options_text(names: Sequence[str]) -> str:
    """``--weight-kg (weight_kg=), scan_time=``: the options as the CLI and library name them."""
    cli = {n: SUV_OPTIONS[n] for n in names}
    return ", ".join(f"{c} ({n}=)" if c.startswith("--") else c for n, c in cli.items())


def given_suv_factor(factor: float, *, units: str, source: str, **options: object) -> SuvConversion:
    """The SUVbw factor given by the caller, checked against the image's units.

    Parameters
    ----------
    factor : float
        SUVbw = rescaled pixel value × factor (g/Bq·mL for Bq/mL images).
    units : str
        ``Units`` of the DICOM series, or ``"BQML"`` for a NIfTI.
    source : str
        Named in the error.
    **options : object
        The other :data:`SUV_OPTIONS` given (None = not given); any given is an error.

    Raises
    ------
    SuvError
        ``factor`` not a positive finite number; ``units`` already SUVbw; other options.
    """
    check_suv_options(units, source=source, suv_factor=factor, **options)
    if not (math.isfinite(factor) and factor > 0):
        raise SuvError(f"{source}: suv_factor must be a positive number, got {factor}")
    return SuvConversion(factor=float(factor), rule="given", units=units, overrides=("suv_factor",))


#: SUVbw (g/mL) above this is not physiological: the hottest organs (bladder, kidneys on
#: PSMA or DOTATATE) and lesions stay well below it; Bq/mL images read as SUV exceed it.
MAX_PLAUSIBLE_SUV = 500.0
#: Median SUVbw of the body voxels (above 1 % of the maximum) above this is implausible:
#: SUVbw averages 1 over the body by definition, so the median stays near or below it.
MAX_PLAUSIBLE_BODY_MEDIAN_SUV = 20.0
#: A maximum SUVbw below this is implausible: liver, brain and bladder exceed it (a factor
#: applied to pixels that already were SUVbw gives values ~10⁴ times too small).
MIN_PLAUSIBLE_MAX_SUV = 0.5
#: ``SuvConversion.units`` of a NIfTI PET taken as SUVbw (pet_units="SUV").
NIFTI_SUV_UNITS = "SUV (as given)"


def check_suv_plausible(
    suv: np.ndarray, *, units: str, source: str, check: bool = True
) -> dict[str, Any]:
    """Refuse a PET image whose values cannot be SUVbw (e.g. Bq/mL read as SUV).

    Parameters
    ----------
    suv : (Z, Y, X) ndarray
        PET after conversion, SUVbw in g/mL.
    units : str
        ``SuvConversion.units``: the pixel units before conversion (the fix named in the
        error depends on them).
    source : str
        Named in the error.
    check : bool
        False records the statistics without refusing (``--no-suv-check``).

    Returns
    -------
    dict
        For ``provenance["suv"]["plausibility"]``: ``max_g_ml`` (the maximum),
        ``body_median_g_ml`` (the median of the voxels above 1 % of the maximum: the body
        without the air around it) and ``checked``.

    Raises
    ------
    SuvError
        Maximum above :data:`MAX_PLAUSIBLE_SUV`, body median above
        :data:`MAX_PLAUSIBLE_BODY_MEDIAN_SUV`, or maximum below
        :data:`MIN_PLAUSIBLE_MAX_SUV`.
    """
    top = float(np.max(suv))
    median = float(np.median(suv[suv > 0.01 * top] if top > 0 else suv))
    found = f"maximum {top:.4g} g/mL, body median {median:.4g} g/mL"
    override = "or pass --no-suv-check (suv_check=False) if these are SUVbw"
    if check and (top > MAX_PLAUSIBLE_SUV or median > MAX_PLAUSIBLE_BODY_MEDIAN_SUV):
        fix = (
            "the image is probably in Bq/mL: load it with --pet-units BQML (pet_units='BQML') "
            "and --suv-factor, or --weight-kg and --dose-bq"
            if units == NIFTI_SUV_UNITS
            else f"check the series' Units (0054,1001) {units}, PatientWeight and "
            "RadionuclideTotalDose, or give --suv-factor"
        )
        raise SuvError(
            f"{source}: PET values are not plausible as SUVbw ({found}; physiological SUVs stay "
            f"below {MAX_PLAUSIBLE_SUV:g}, body median below "
            f"{MAX_PLAUSIBLE_BODY_MEDIAN_SUV:g}): {fix}, {override}"
        )
    if check and top < MIN_PLAUSIBLE_MAX_SUV:
        raise SuvError(
            f"{source}: PET values are not plausible as SUVbw ({found}; liver, brain and "
            f"bladder exceed {MIN_PLAUSIBLE_MAX_SUV:g}): a factor was applied to values that "
            f"were SUVbw already? Drop --pet-units BQML / --suv-factor, {override}"
        )
    return {"max_g_ml": top, "body_median_g_ml": median, "checked": check}


def _philips_cnts(first: Mapping[str, Any], source: str) -> SuvConversion:
    """Units CNTS: the factor is the Philips private SUV Scale Factor (7053,1000)."""
    private = first.get("PhilipsPETPrivateGroup") or {}
    value = private.get("SUVScaleFactor")
    try:
        factor = float(_text(value))
    except ValueError:
        factor = 0.0
    if not factor > 0:
        raise _field_error(
            source,
            "SUVScaleFactor",
            value,
            f"missing or not positive for Units CNTS (private creator {PHILIPS_PRIVATE_CREATOR!r})",
            "CNTS images without the Philips SUV Scale Factor cannot be converted; "
            "export the series in BQML from the scanner",
        )
    return SuvConversion(factor=factor, rule="CNTS-PHILIPS", units="CNTS")


def _check_corrected(first: Mapping[str, Any], source: str) -> None:
    """BQML: CorrectedImage (0028,0051) must list attenuation and decay correction."""
    corrected = first.get("CorrectedImage") or []
    corrected = [corrected] if isinstance(corrected, str) else list(corrected)
    missing = [c for c in ("ATTN", "DECY") if c not in {_text(x).upper() for x in corrected}]
    if missing:
        raise _field_error(
            source,
            "CorrectedImage",
            corrected,
            f"lacking {'/'.join(missing)} (attenuation and decay correction are needed for SUV)",
            "reconstruct with attenuation and decay correction",
        )


def _bqml(
    headers: Sequence[Mapping[str, Any]],
    weight: float,
    dose: float,
    injection_time: dt.datetime | str | None,
    source: str,
    overrides: tuple[str, ...],
) -> SuvConversion:
    """Units BQML with weight (kg) and dose (Bq): the decay rule of DecayCorrection."""
    first = headers[0]
    decay_correction = _text(first.get("DecayCorrection")).upper()
    if decay_correction == "ADMIN":
        factor = suv_factor_from_values(weight_kg=weight, dose_bq=dose)
        return SuvConversion(
            factor=factor,
            rule="BQML-ADMIN",
            units="BQML",
            weight_kg=weight,
            dose_bq=dose,
            overrides=overrides,
        )
    if decay_correction != "START":
        raise _field_error(
            source,
            "DecayCorrection",
            first.get("DecayCorrection"),
            "not START or ADMIN",
            "only images decay-corrected to the series start or to the injection are supported",
        )
    half_life = _positive(source, first, "RadionuclideHalfLife")
    injection = _injection_time(first, injection_time, source)
    reference, reference_source = _reference_time(headers, source)
    decay_time = (reference - injection).total_seconds()
    if decay_time < 0:
        raise SuvError(
            f"{source}: cannot compute SUVbw: the scan reference time {reference.isoformat()} "
            f"({reference_source}) is {-decay_time:.3f} s before the injection "
            f"{injection.isoformat()} (RadiopharmaceuticalStartDateTime (0018,1078) / "
            "RadiopharmaceuticalStartTime (0018,1072)); pass the correct injection date and "
            "time (injection_time=)"
        )
    factor = suv_factor_from_values(
        weight_kg=weight, dose_bq=dose, half_life_s=half_life, decay_time_s=decay_time
    )
    return SuvConversion(
        factor=factor,
        rule="BQML-START",
        units="BQML",
        weight_kg=weight,
        dose_bq=dose,
        half_life_s=half_life,
        decay_time_s=decay_time,
        reference_time=reference.isoformat(),
        injection_time=injection.isoformat(),
        reference_source=reference_source,
        overrides=overrides,
    )


def _injection_time(
    header: Mapping[str, Any], override: dt.datetime | str | None, source: str
) -> dt.datetime:
    if override is not None:
        return to_datetime(override)
    start_dt = _text(header.get("RadiopharmaceuticalStartDateTime"))
    try:
        if start_dt:
            return parse_dicom_datetime(datetime=start_dt)
        return parse_dicom_datetime(
            date=header.get("SeriesDate"), time=header.get("RadiopharmaceuticalStartTime")
        )
    except ValueError:
        raise _field_error(
            source,
            "RadiopharmaceuticalStartTime",
            header.get("RadiopharmaceuticalStartDateTime")
            or header.get("RadiopharmaceuticalStartTime"),
            "missing or malformed (and so is RadiopharmaceuticalStartDateTime (0018,1078), "
            "or SeriesDate (0008,0021))",
        ) from None


def _reference_time(headers: Sequence[Mapping[str, Any]], source: str) -> tuple[dt.datetime, str]:
    first = headers[0]
    try:
        series = parse_dicom_datetime(date=first.get("SeriesDate"), time=first.get("SeriesTime"))
    except ValueError:
        raise _field_error(
            source,
            "SeriesTime",
            (first.get("SeriesDate"), first.get("SeriesTime")),
            "missing or malformed (SeriesDate (0008,0021) and SeriesTime are needed as the "
            "decay reference)",
            "fix the header",
        ) from None
    acquisitions = []
    for header in headers:
        try:
            acquisitions.append(
                parse_dicom_datetime(
                    date=header.get("AcquisitionDate"), time=header.get("AcquisitionTime")
                )
            )
        except ValueError:
            continue
    if acquisitions and series > min(acquisitions):
        return min(acquisitions), "earliest AcquisitionDateTime"
    return series, "SeriesDateTime"


def header_from_dataset(ds: Any) -> dict[str, Any]:
    """Header mapping (keys of :data:`HEADER_KEYS`) from a pydicom ``Dataset``.

    Parameters
    ----------
    ds : pydicom.Dataset
        One PET instance (pixel data not needed).

    Returns
    -------
    dict
        The SUV fields; absent fields are None, numbers are float.
    """
    header: dict[str, Any] = {key: ds.get(key) for key in _IMAGE_KEYS}
    corrected = ds.get("CorrectedImage")
    header["CorrectedImage"] = (
        [] if corrected is None else [corrected] if isinstance(corrected, str) else list(corrected)
    )
    sequence = ds.get("RadiopharmaceuticalInformationSequence")
    item = sequence[0] if sequence else {}
    for key in _RADIOPHARMACEUTICAL_KEYS:
        header[key] = item.get(key) if item else None
    private: dict[str, Any] = {}
    try:
        block = ds.private_block(0x7053, PHILIPS_PRIVATE_CREATOR)
    except KeyError:
        block = None
    if block is not None:
        for name, offset in (("SUVScaleFactor", 0x00), ("ActivityConcentrationScaleFactor", 0x09)):
            if offset in block:
                value = block[offset].value
                if isinstance(value, bytes):
                    value = value.decode("ascii", errors="replace").strip("\x00 ")
                private[name] = value
    header["PhilipsPETPrivateGroup"] = private
    for key in ("PatientWeight", "RadionuclideTotalDose", "RadionuclideHalfLife"):
        if header[key] is not None and _text(header[key]) != "":
            header[key] = float(header[key])
        else:
            header[key] = None
    return header


def _series_value(header: Mapping[str, Any], key: str) -> Any:
    """The value of ``key`` that must be the same in every slice (Philips: the SUV factor)."""
    if key == "PhilipsPETPrivateGroup":
        return (header.get(key) or {}).get("SUVScaleFactor")
    return header.get(key)


def suv_headers(datasets: Sequence[Any], files: Sequence[Any]) -> list[dict[str, Any]]:
    """Header mappings of every slice of a PET series, checked to agree with each other.

    Parameters
    ----------
    datasets : sequence of pydicom.Dataset
        The slices of one series.
    files : sequence of path
        Their files, in the same order (named in errors).

    Returns
    -------
    list of dict
        One :func:`header_from_dataset` mapping per slice.

    Raises
    ------
    SuvError
        A slice holds an SUV field that is not a number, or one that differs from the
        first slice (only Acquisition Date/Time may differ); the message names both
        values and files.
    """
    from petseg.io.dicom import raw_value

    def read(ds: Any, path: Any, keys: Sequence[str] = ()) -> dict[str, Any]:
        try:
            return {key: ds.get(key) for key in keys} if keys else header_from_dataset(ds)
        except Exception as err:  # pydicom raises several types for malformed values
            raise SuvError(
                f"{path}: an SUV field cannot be read ({type(err).__name__}: {err}); fix the header"
            ) from None

    def stored(ds: Any, keywords: Sequence[str | int]) -> tuple[Any, ...]:
        return tuple(raw_value(ds, keyword) for keyword in keywords)

    series_keys: list[str | int] = [k for k in _STORED if k not in PER_SLICE_KEYS]
    reference = stored(datasets[0], series_keys), stored(datasets[0], PER_SLICE_KEYS)
    headers = [read(datasets[0], files[0])]
    for ds, path in zip(datasets[1:], files[1:], strict=True):
        if stored(ds, series_keys) == reference[0]:  # the same stored bytes: the same values
            header = dict(headers[0])
            if stored(ds, PER_SLICE_KEYS) != reference[1]:
                header.update(read(ds, path, PER_SLICE_KEYS))
            headers.append(header)
            continue
        header = read(ds, path)
        for key in HEADER_KEYS:
            expected = _series_value(headers[0], key)
            if key not in PER_SLICE_KEYS and _series_value(header, key) != expected:
                raise SuvError(
                    f"{path}: {key} {_TAGS.get(key, '')} is {_series_value(header, key)!r} but "
                    f"{files[0]} has {expected!r}; the slices of one PET series must agree "
                    "(a slice from another series, or a damaged file?)"
                )
        headers.append(header)
    return headers
