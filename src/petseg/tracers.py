"""Tracer profiles: which organs show physiological uptake for a radiopharmaceutical.

A profile names the organs (petseg's organ vocabulary, :mod:`petseg.organs`) whose
normal uptake exceeds a liver-reference threshold often enough that a physician removes
it (Carlsen et al. 2022: "typically bladder, adrenal glands and kidney" for
[64Cu]Cu-DOTATATE). Organs are listed only when their uptake is physiological for the
tracer; an organ that is a common site of metastases with low normal uptake (the liver
with DOTATATE or FDG) is left out, so lesions there are kept. Sources are in
``docs/organs.md``.

The tracer of a study comes from the PET's DICOM Radiopharmaceutical Information
(:func:`tracer_from_radiopharmaceutical`); when the headers name none that petseg
knows, the user chooses one (``--tracer``) and the choice is recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from petseg.checks import check_choice
from petseg.organs import expand_organ

__all__ = [
    "TRACERS",
    "Radiopharmaceutical",
    "TracerChoice",
    "TracerProfile",
    "get_tracer",
    "radiopharmaceutical_from_dataset",
    "resolve_tracer",
    "tracer_from_radiopharmaceutical",
]


@dataclass(frozen=True)
class TracerProfile:
    """The organs whose physiological uptake is removed for one family of tracers.

    Attributes
    ----------
    name : str
        The ``--tracer`` value.
    title : str
        What the profile covers.
    physiological : tuple of str
        Organ vocabulary names (groups allowed), in the order they are tried.
    """

    name: str
    title: str
    physiological: tuple[str, ...]

    def __post_init__(self) -> None:
        for organ in self.physiological:
            expand_organ(organ)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: name, title and the organ names."""
        return {"name": self.name, "title": self.title, "physiological": list(self.physiological)}


#: The profiles, by ``--tracer`` name.
TRACERS: dict[str, TracerProfile] = {
    profile.name: profile
    for profile in (
        TracerProfile(
            name="dotatate",
            title="somatostatin-receptor ligands: [64Cu]Cu-/[68Ga]Ga-DOTATATE, DOTATOC, DOTANOC",
            physiological=(
                "spleen",
                "kidneys",
                "adrenal_glands",
                "urinary_bladder",
                "pituitary_gland",
            ),
        ),
        TracerProfile(
            name="fdg",
            title="[18F]FDG",
            physiological=("brain", "heart", "kidneys", "urinary_bladder"),
        ),
        TracerProfile(
            name="psma",
            title="PSMA ligands: [68Ga]Ga-PSMA-11, [18F]DCFPyL, [18F]PSMA-1007, …",
            physiological=(
                "salivary_glands",
                "lacrimal_glands",
                "kidneys",
                "urinary_bladder",
                "duodenum",
                "small_bowel",
            ),
        ),
    )
}

# Radiopharmaceutical names: a word pattern (in lower case) per profile.
_NAME_PATTERNS: dict[str, re.Pattern[str]] = {
    "dotatate": re.compile(
        r"dota-?(tate|toc|noc)|edotreotide|oxodotreotide|dotatate|somatostatin|netspot|detectnet"
    ),
    "fdg": re.compile(r"\bfdg\b|fluoro-?deoxy-?glucose|fludeoxyglucose"),
    "psma": re.compile(
        r"psma|dcfpyl|piflufolastat|pylarify|gozetotide|illuccix|locametz|flotufolastat|posluma"
    ),
}

# Coded radiopharmaceuticals (CID 4021 and older SNM3 codes): (scheme, value) → profile.
_CODES: dict[tuple[str, str], str] = {
    ("SCT", "35321007"): "fdg",  # Fluorodeoxyglucose F^18^
    ("SNM3", "C-B1031"): "fdg",
    ("SRT", "C-B1031"): "fdg",
    ("SCT", "724025002"): "dotatate",  # Dotatate Ga^68^
    ("UMLS", "C2713594"): "dotatate",  # Edotreotide Ga^68^
    ("DCM", "126758"): "psma",  # PSMA-1007 F^18^
    ("NCIt", "C118961"): "psma",  # PSMA-11 Ga^68^
    ("DCM", "126759"): "psma",  # PSMA-617 Ga^68^
    ("NCIt", "C116352"): "psma",  # Piflufolastat F^18^
}


def get_tracer(name: str) -> TracerProfile:
    """The profile called ``name`` (case-insensitive).

    Parameters
    ----------
    name : str
        A key of :data:`TRACERS`.

    Returns
    -------
    TracerProfile

    Raises
    ------
    ValueError
        Unknown name: ``--tracer must be one of (...), got 'x' (did you mean 'y'?)``.
    """
    key = str(name).strip().lower()
    check_choice("--tracer", key, TRACERS)
    return TRACERS[key]


@dataclass(frozen=True)
class Radiopharmaceutical:
    """What a PET's headers say about its tracer (Radiopharmaceutical Information Sequence).

    Attributes
    ----------
    name : str
        Radiopharmaceutical (0018,0031); "" when absent.
    codes : tuple of (str, str, str)
        (coding scheme, code value, code meaning) of each item of the Radiopharmaceutical
        Code Sequence (0054,0304).
    radionuclide : str
        Code meaning of the Radionuclide Code Sequence (0054,0300); "" when absent.
    """

    name: str = ""
    codes: tuple[tuple[str, str, str], ...] = ()
    radionuclide: str = ""

    def describe(self) -> str:
        """One phrase naming what the headers hold (for messages)."""
        parts = []
        if self.name:
            parts.append(f"Radiopharmaceutical {self.name!r}")
        for scheme, value, meaning in self.codes:
            parts.append(f"code ({value}, {scheme}, {meaning!r})")
        if self.radionuclide:
            parts.append(f"radionuclide {self.radionuclide!r}")
        return ", ".join(parts) or "no Radiopharmaceutical Information"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: name, codes as lists, radionuclide."""
        return {
            "name": self.name,
            "codes": [list(code) for code in self.codes],
            "radionuclide": self.radionuclide,
        }


def _items(sequence: Any) -> list[Any]:
    return list(sequence) if sequence else []


def radiopharmaceutical_from_dataset(header: Any) -> Radiopharmaceutical:
    """Read the Radiopharmaceutical Information of a PET header.

    Parameters
    ----------
    header : pydicom.Dataset or mapping
        Anything with ``.get(keyword)`` whose sequences are lists of such objects (a
        pydicom Dataset, or a dict as the JSON header dumps hold).

    Returns
    -------
    Radiopharmaceutical
        Empty fields when the header has no such sequence.
    """
    info = _items(header.get("RadiopharmaceuticalInformationSequence"))
    if not info:
        return Radiopharmaceutical()
    first = info[0]
    codes = tuple(
        (
            str(item.get("CodingSchemeDesignator", "") or ""),
            str(item.get("CodeValue", "") or ""),
            str(item.get("CodeMeaning", "") or ""),
        )
        for item in _items(first.get("RadiopharmaceuticalCodeSequence"))
    )
    nuclides = _items(first.get("RadionuclideCodeSequence"))
    return Radiopharmaceutical(
        name=str(first.get("Radiopharmaceutical", "") or "").strip(),
        codes=codes,
        radionuclide=str(nuclides[0].get("CodeMeaning", "") or "") if nuclides else "",
    )


def tracer_from_radiopharmaceutical(info: Radiopharmaceutical) -> str | None:
    """The profile named by a PET's radiopharmaceutical code or name, or None.

    The code is tried first (SNOMED CT and the other schemes of DICOM CID 4021), then
    the code meanings and the Radiopharmaceutical name as text. The radionuclide alone
    decides nothing: Ga-68, Cu-64 and F-18 each label several tracers.

    Parameters
    ----------
    info : Radiopharmaceutical
        What the PET's headers hold.

    Returns
    -------
    str or None
        A key of :data:`TRACERS`.
    """
    for scheme, value, _ in info.codes:
        found = _CODES.get((scheme, value))
        if found is not None:
            return found
    texts = [meaning for _, _, meaning in info.codes] + [info.name]
    for text in texts:
        lowered = text.lower()
        for tracer, pattern in _NAME_PATTERNS.items():
            if pattern.search(lowered):
                return tracer
    return None


@dataclass(frozen=True)
class TracerChoice:
    """The profile used for a study and where the choice came from (for report.json).

    Attributes
    ----------
    profile : TracerProfile
        The profile applied.
    source : str
        "--tracer" or "DICOM Radiopharmaceutical Information".
    header : Radiopharmaceutical or None
        What the PET's headers hold (None for NIfTI input), recorded either way.
    """

    profile: TracerProfile
    source: str
    header: Radiopharmaceutical | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the profile, its source and the header's radiopharmaceutical."""
        return {
            **self.profile.to_dict(),
            "source": self.source,
            "dicom_radiopharmaceutical": None if self.header is None else self.header.to_dict(),
        }


def resolve_tracer(option: str | None, header: Radiopharmaceutical | None) -> TracerChoice:
    """Choose the tracer profile: ``option`` when given, else the one the headers name.

    Parameters
    ----------
    option : str or None
        The user's ``--tracer``; it wins over the headers (both are recorded).
    header : Radiopharmaceutical or None
        The PET's Radiopharmaceutical Information; None for NIfTI input.

    Returns
    -------
    TracerChoice

    Raises
    ------
    ValueError
        No option and no known radiopharmaceutical in the headers: the message says
        what the headers hold and which ``--tracer`` values exist.
    """
    if option is not None:
        return TracerChoice(get_tracer(option), "--tracer", header)
    found = tracer_from_radiopharmaceutical(header) if header is not None else None
    if found is None:
        held = header.describe() if header is not None else "the PET is not DICOM"
        raise ValueError(
            f"cannot tell the tracer ({held}); pass --tracer "
            f"{'|'.join(TRACERS)} to choose which organs' physiological uptake is removed"
        )
    return TracerChoice(TRACERS[found], "DICOM Radiopharmaceutical Information", header)
