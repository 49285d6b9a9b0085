"""Find the studies of a cohort: a folder of study folders, or a CSV manifest.

A *cohort folder* holds one sub-folder per study; the folder name is the study id.
A sub-folder holding ``pet.nii.gz`` (or ``pet.nii``) is a NIfTI case folder (the
dataset layout, ``ct.nii.gz`` optional); any other sub-folder is a DICOM study folder
(PET and optional CT series found by :func:`petseg.io.load_study`, also in sub-folders).
Hidden entries and plain files (``dataset.json``) are ignored.

A *CSV manifest* has the columns ``id`` and ``pet`` or ``dicom`` (one of them per row),
and optionally ``ct``, ``ref_sphere`` (a per-study reference VOI ``"x,y,z,r"`` in
LPS mm, which replaces ``--ref-sphere`` for that study) and ``organs`` (the study's organ
map, a file, folder or DICOM SEG, or ``totalsegmentator``). Relative paths are read from
the manifest's folder.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from petseg.io.dataset import case_ct, case_pet, check_case_id, is_case_folder, study_folders

__all__ = ["CSV_COLUMNS", "StudyInput", "discover_studies", "read_manifest_csv"]

CSV_COLUMNS = ("id", "pet", "ct", "dicom", "ref_sphere", "organs")


@dataclass(frozen=True)
class StudyInput:
    """Where one study's inputs are.

    Attributes
    ----------
    id : str
        Study id (the output folder's name).
    pet, ct : Path or None
        NIfTI files (PET in SUVbw g/mL, CT in HU).
    dicom : Path or None
        DICOM study folder (or a NIfTI case folder read by ``load_study``).
    ref_sphere : (x, y, z, radius) tuple of float, or None
        Per-study reference sphere in LPS mm.
    organs : str or None
        The study's organ map (file or folder) or ``"totalsegmentator"``.
    """

    id: str
    pet: Path | None = None
    ct: Path | None = None
    dicom: Path | None = None
    ref_sphere: tuple[float, float, float, float] | None = None
    organs: str | None = None

    def __post_init__(self) -> None:
        check_case_id(self.id, "study")
        if (self.pet is None) == (self.dicom is None):
            raise ValueError(f"study {self.id!r}: give exactly one of a PET file or a DICOM folder")

    @property
    def kind(self) -> Literal["dicom", "nifti"]:
        """``"nifti"`` for PET/CT files or a NIfTI case folder, ``"dicom"`` otherwise."""
        if self.pet is not None or (self.dicom is not None and is_case_folder(self.dicom)):
            return "nifti"
        return "dicom"

    def input_files(self) -> list[Path]:
        """Every file the study is read from (sorted; a folder's files recursively).

        Raises
        ------
        FileNotFoundError
            If a named file or folder does not exist.
        """
        files: list[Path] = []
        for path in (self.pet, self.ct):
            if path is not None:
                if not path.is_file():
                    raise FileNotFoundError(f"study {self.id!r}: {path} is not a file")
                files.append(path)
        if self.dicom is not None:
            if not self.dicom.is_dir():
                raise FileNotFoundError(f"study {self.id!r}: {self.dicom} is not a folder")
            files.extend(_walk(self.dicom))
        if self.organs is not None and self.organs != "totalsegmentator":
            organs = Path(self.organs)
            if not organs.exists():
                raise FileNotFoundError(f"study {self.id!r}: organ map {organs} does not exist")
            files.extend(_walk(organs) if organs.is_dir() else [organs])
        return sorted(files)


def _walk(folder: Path) -> Iterator[Path]:
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith("."):
                yield Path(root) / name


def discover_studies(cohort: str | os.PathLike[str]) -> list[StudyInput]:
    """The studies of a cohort folder or CSV manifest, sorted by id.

    Parameters
    ----------
    cohort : path
        A folder of study folders, or a ``.csv`` manifest (:func:`read_manifest_csv`).

    Returns
    -------
    list of StudyInput

    Raises
    ------
    FileNotFoundError
        If ``cohort`` does not exist or holds no study.
    ValueError
        ``cohort`` is a file that is not a ``.csv`` manifest.
    """
    cohort = Path(cohort)
    if cohort.is_file():
        if cohort.suffix.lower() != ".csv":
            raise ValueError(f"{cohort}: a cohort is a folder of studies or a .csv manifest")
        return read_manifest_csv(cohort)
    if not cohort.is_dir():
        raise FileNotFoundError(f"cohort {cohort} does not exist (a folder or a .csv manifest)")
    studies = []
    for entry in study_folders(cohort):
        pet = case_pet(entry)
        if pet is not None:
            studies.append(StudyInput(entry.name, pet=pet, ct=case_ct(entry)))
        else:
            studies.append(StudyInput(entry.name, dicom=entry))
    if not studies:
        raise FileNotFoundError(
            f"{cohort} holds no study folders (NIfTI case folders with pet.nii.gz, or DICOM folders)"
        )
    return studies


def _parse_sphere(text: str, where: str) -> tuple[float, float, float, float]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or values[3] <= 0:
        raise ValueError(
            f"{where}: ref_sphere must be 'x,y,z,r' (LPS mm, radius > 0), got {text!r}"
        )
    return (values[0], values[1], values[2], values[3])


def read_manifest_csv(path: str | os.PathLike[str]) -> list[StudyInput]:
    """Read a CSV manifest (columns :data:`CSV_COLUMNS`); return its studies sorted by id.

    Parameters
    ----------
    path : path
        The ``.csv`` file (UTF-8, a byte-order mark allowed); relative paths in it are
        read from its folder.

    Returns
    -------
    list of StudyInput

    Raises
    ------
    ValueError
        Unknown or missing columns, a duplicate id, a row with neither or both of ``pet``
        and ``dicom``, or a malformed ``ref_sphere``; the message names the file and row.
    """
    path = Path(path)
    base = path.parent
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        unknown = sorted(set(columns) - set(CSV_COLUMNS))
        if unknown or "id" not in columns or not {"pet", "dicom"} & set(columns):
            raise ValueError(
                f"{path}: columns must be id, pet and/or dicom, optional ct, ref_sphere, organs; "
                f"got {columns}" + (f" (unknown: {unknown})" if unknown else "")
            )
        studies: dict[str, StudyInput] = {}
        for line, raw in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            where = f"{path} line {line}"
            sid = row.get("id", "")

            def file(column: str, row: dict[str, str] = row) -> Path | None:
                value = row.get(column, "")
                return (base / value) if value else None

            sphere = row.get("ref_sphere", "")
            organs = row.get("organs", "")
            try:
                study = StudyInput(
                    sid,
                    pet=file("pet"),
                    ct=file("ct"),
                    dicom=file("dicom"),
                    ref_sphere=_parse_sphere(sphere, where) if sphere else None,
                    organs=(organs if organs in ("", "totalsegmentator") else str(base / organs))
                    or None,
                )
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None
            if sid in studies:
                raise ValueError(f"{where}: study id {sid!r} appears twice")
            studies[sid] = study
    if not studies:
        raise ValueError(f"{path}: the manifest lists no studies")
    return [studies[k] for k in sorted(studies)]
