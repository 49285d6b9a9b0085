"""The dataset layout: a folder of case folders (specification: docs/dataset-layout.md).

One place decides what a case id is, which folders are cases and where a case's files
are; training, prediction, evaluation, the slice methods, cohorts and the review app
all list and validate cases through it.

::

    DATASET/
      dataset.json          optional: {"name", "synthetic", "cases": [ids], ...}
      <case_id>/
        pet.nii.gz          PET, SUVbw in g/mL
        ct.nii.gz           optional: CT in HU on the PET grid
        lesions.nii.gz      optional: lesion labels (ground truth or a result)
        ...
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

__all__ = [
    "CASE_ID_PATTERN",
    "CT_FILES",
    "DATASET_INFO",
    "LESIONS_FILE",
    "PET_FILES",
    "case_ct",
    "case_pet",
    "check_case_id",
    "find_lesion_maps",
    "is_case_folder",
    "is_case_id",
    "is_dataset",
    "list_cases",
    "read_dataset_info",
    "study_folders",
]

#: A case id is a folder name: a letter or digit, then letters, digits, '_', '-', '.'
#: (at most 128 characters in all, and never '..').
CASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: The dataset's description file.
DATASET_INFO = "dataset.json"
#: A case's PET (SUVbw g/mL) and CT (HU) files, in order of preference.
PET_FILES = ("pet.nii.gz", "pet.nii")
CT_FILES = ("ct.nii.gz", "ct.nii")
#: A case's lesion labels (0 = background).
LESIONS_FILE = "lesions.nii.gz"


def is_case_id(text: object) -> bool:
    """True when ``text`` is a valid case id (:data:`CASE_ID_PATTERN`, no ``..``).

    Parameters
    ----------
    text : object
        The candidate id (anything that is not a str is invalid).
    """
    return isinstance(text, str) and bool(CASE_ID_PATTERN.fullmatch(text)) and ".." not in text


def check_case_id(case_id: object, where: str | os.PathLike[str]) -> str:
    """Return ``case_id`` when valid; otherwise raise naming ``where`` it came from.

    Parameters
    ----------
    case_id : object
        The candidate id.
    where : str or path
        The file, folder or row the id comes from (named in the error).

    Raises
    ------
    ValueError
        The id breaks :data:`CASE_ID_PATTERN`.
    """
    if not is_case_id(case_id):
        raise ValueError(
            f"{where}: case id {case_id!r} may only hold letters, digits, '_', '-', '.', "
            "starting with a letter or digit (at most 128 characters, no '..'); rename it"
        )
    return str(case_id)


def case_pet(folder: str | os.PathLike[str]) -> Path | None:
    """The PET file of a case folder (``pet.nii.gz`` or ``pet.nii``), or None.

    Parameters
    ----------
    folder : path
        The case folder.
    """
    return next((Path(folder) / n for n in PET_FILES if (Path(folder) / n).is_file()), None)


def case_ct(folder: str | os.PathLike[str]) -> Path | None:
    """The CT file of a case folder (``ct.nii.gz`` or ``ct.nii``), or None.

    Parameters
    ----------
    folder : path
        The case folder.
    """
    return next((Path(folder) / n for n in CT_FILES if (Path(folder) / n).is_file()), None)


def is_case_folder(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` is a case folder (it holds a NIfTI PET).

    Parameters
    ----------
    folder : path
        The candidate folder.
    """
    return Path(folder).is_dir() and case_pet(folder) is not None


def is_dataset(path: str | os.PathLike[str] | None) -> bool:
    """True when ``path`` is a dataset: it holds ``dataset.json`` or a case folder.

    Parameters
    ----------
    path : path or None
        The candidate folder (None: not a dataset).
    """
    if path is None or not Path(path).is_dir():
        return False
    root = Path(path)
    return (root / DATASET_INFO).is_file() or any(
        is_case_folder(entry) for entry in root.iterdir() if not entry.name.startswith(".")
    )


def read_dataset_info(dataset: str | os.PathLike[str]) -> dict[str, Any]:
    """``dataset.json`` of a dataset folder, or ``{}`` when the folder has none.

    Parameters
    ----------
    dataset : path
        The dataset folder.

    Raises
    ------
    NotADirectoryError
        ``dataset`` is not a folder.
    ValueError
        ``dataset.json`` is not a JSON object.
    """
    root = Path(dataset)
    if not root.is_dir():
        raise NotADirectoryError(f"dataset folder {root} does not exist")
    path = root / DATASET_INFO
    if not path.exists():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err}); fix or remove the file") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: must hold a JSON object, got {type(info).__name__}")
    return info


def list_cases(dataset: str | os.PathLike[str], *, labelled: bool = False) -> list[str]:
    """Case ids of a dataset: ``dataset.json``'s ``cases``, else every case folder.

    Parameters
    ----------
    dataset : path
        The dataset folder.
    labelled : bool
        Every case must also hold :data:`LESIONS_FILE`.

    Returns
    -------
    list of str
        Ids in the order of ``dataset.json``, or sorted.

    Raises
    ------
    ValueError
        No case, or an invalid id.
    FileNotFoundError
        A listed case lacks its PET (or lesions when ``labelled``).
    """
    root = Path(dataset)
    info = read_dataset_info(root)
    if "cases" in info:
        ids = [str(c) for c in info["cases"]]
    else:
        ids = sorted(p.name for p in root.iterdir() if is_case_folder(p))
    if not ids:
        raise ValueError(f"{root} holds no case folders with pet.nii.gz (docs/dataset-layout.md)")
    for case_id in ids:
        check_case_id(case_id, root / DATASET_INFO if "cases" in info else root / case_id)
        folder = root / case_id
        if case_pet(folder) is None or (labelled and not (folder / LESIONS_FILE).is_file()):
            needed = "pet.nii.gz" + (f" and {LESIONS_FILE}" if labelled else "")
            raise FileNotFoundError(
                f"{folder}: a case folder needs {needed} (docs/dataset-layout.md)"
            )
    return ids


def study_folders(folder: str | os.PathLike[str]) -> list[Path]:
    """Every sub-folder of ``folder`` (hidden ones aside), sorted, each named by a valid id.

    Used where a case may also be a DICOM study folder (cohorts, the slice methods).

    Parameters
    ----------
    folder : path
        The folder of studies.

    Raises
    ------
    ValueError
        A sub-folder's name is not a valid case id.
    """
    root = Path(folder)
    entries = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    for entry in entries:
        check_case_id(entry.name, entry)
    return entries


def find_lesion_maps(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Lesion-map files of a folder of results or ground truth, by case id.

    Accepts the dataset layout and the folders ``petseg segment`` / ``predict`` write
    (one sub-folder per case holding ``lesions.nii.gz``) and flat folders of
    ``<case>.nii.gz`` / ``<case>.nii``. Sub-folders without ``lesions.nii.gz`` and
    hidden entries are ignored.

    Parameters
    ----------
    folder : path
        The folder of cases.

    Returns
    -------
    dict of str to Path
        Lesion-map file per case id, sorted by id.

    Raises
    ------
    NotADirectoryError, FileNotFoundError
        ``folder`` is not a folder, or holds no lesion map.
    ValueError
        An invalid case id, or a case given twice.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder of cases")
    cases: dict[str, Path] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            path, case = entry / LESIONS_FILE, entry.name
            if not path.is_file():
                continue
        elif entry.name.endswith((".nii.gz", ".nii")):
            path, case = entry, re.sub(r"\.nii(\.gz)?$", "", entry.name)
        else:
            continue
        check_case_id(case, entry)
        if case in cases:
            raise ValueError(f"{root}: case {case!r} appears twice ({cases[case]} and {path})")
        cases[case] = path
    if not cases:
        raise FileNotFoundError(
            f"{root} holds no cases: expected sub-folders with {LESIONS_FILE} or <case>.nii.gz files"
        )
    return cases
