"""The cases under review: a cohort folder (or one case folder) and a case's images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.io.dataset import is_case_id
from petseg.lesions import DEFAULT_CONNECTIVITY, as_label_map, check_connectivity
from petseg.review.errors import CaseNotFoundError, ReviewError, UnprocessableError
from petseg.review.versions import case_status, read_json, status_row
from petseg.study import Geometry

__all__ = ["REQUIRED_FILES", "CaseData", "Cohort", "load_labels"]

REQUIRED_FILES = ("lesions.nii.gz", "pet_suv.nii.gz", "report.json")


class Cohort:
    """A folder of case folders, or a single case folder, under review.

    Case ids are folder names; :meth:`case_dir` accepts only ids that name a direct
    sub-folder (no ``..``, no separators, no absolute paths, no symlink leaving the
    cohort), so a request can never reach a file outside ``root``.

    Parameters
    ----------
    root : str or Path
        Case output folder of ``petseg segment``, or a cohort folder of such case folders.
    """

    def __init__(self, root: str | Path) -> None:
        root = Path(root)
        if not root.is_dir():
            raise NotADirectoryError(
                f"{root} is not a folder; give a case output folder of `petseg segment` "
                "or a cohort folder of such case folders"
            )
        self.root = root.resolve()
        self.single = all((self.root / name).is_file() for name in REQUIRED_FILES)
        if not self.single and not self.case_ids():
            raise FileNotFoundError(
                f"{root} holds no case folder (a folder with {', '.join(REQUIRED_FILES)}); "
                "run `petseg segment` first"
            )

    def _folder(self, case_id: str) -> Path | None:
        """The case folder of a well-formed id inside the cohort, or None."""
        if not is_case_id(case_id):
            return None
        folder = (self.root / case_id).resolve()
        if folder.parent != self.root or not all((folder / n).is_file() for n in REQUIRED_FILES):
            return None
        return folder

    def case_ids(self) -> list[str]:
        """Ids of the cases, sorted (sub-folders with the case files, not leaving the cohort)."""
        if self.single:
            return [self.root.name]
        return sorted(
            child.name
            for child in self.root.iterdir()
            if child.is_dir() and self._folder(child.name) is not None
        )

    def case_dir(self, case_id: str) -> Path:
        """The folder of ``case_id``; CaseNotFoundError for anything else.

        Parameters
        ----------
        case_id : str
            As received in a request.

        Returns
        -------
        Path
        """
        if not is_case_id(case_id):
            raise CaseNotFoundError(f"unknown case {case_id!r}")
        if self.single:
            if case_id != self.root.name:
                raise CaseNotFoundError(
                    f"unknown case {case_id!r}; this review has {self.root.name!r}"
                )
            return self.root
        folder = self._folder(case_id)
        if folder is None:
            raise CaseNotFoundError(f"unknown case {case_id!r} in {self.root}")
        return folder

    def status(self) -> list[dict[str, Any]]:
        """One row per case: reviewed or not, latest version, score, correction time.

        A case whose files cannot be read gets status ``"unreadable"`` and its ``error``;
        the other cases are listed as usual.
        """
        rows = []
        for case_id in self.case_ids():
            try:
                rows.append(case_status(self.case_dir(case_id), case_id))
            except (ReviewError, OSError, ValueError, TypeError) as err:
                rows.append({**status_row(case_id), "status": "unreadable", "error": str(err)})
        return rows


@dataclass
class CaseData:
    """The read-only images of a case, shared by all sessions on it.

    Attributes
    ----------
    case_id : str
        The case folder's name.
    folder : Path
        The case folder.
    suv : (Z, Y, X) float32 ndarray
        PET in SUVbw (g/mL).
    geometry : Geometry
        The PET grid (spacing in mm).
    report : dict
        The case's ``report.json``.
    has_ct : bool
        The folder holds ``ct.nii.gz``.
    removed : (Z, Y, X) int32 ndarray or None
        What the organ map removed as physiological uptake (``removed.nii.gz``), if anything.
    """

    case_id: str
    folder: Path
    suv: NDArray[np.float32]
    geometry: Geometry
    report: dict[str, Any]
    has_ct: bool
    #: what the organ map removed as physiological uptake (``removed.nii.gz``), if anything
    removed: NDArray[np.int32] | None = None

    @classmethod
    def load(cls, folder: Path, case_id: str) -> CaseData:
        """Read the case folder's PET, report and removed components (422 when unreadable).

        Parameters
        ----------
        folder : Path
            Case folder with ``pet_suv.nii.gz`` and ``report.json``.
        case_id : str
            Its id in the cohort.

        Returns
        -------
        CaseData
        """
        from petseg.io.nifti import read_nifti

        try:
            suv, geometry = read_nifti(folder / "pet_suv.nii.gz")
        except (OSError, ValueError) as err:
            raise UnprocessableError(f"{folder / 'pet_suv.nii.gz'} cannot be read: {err}") from err
        removed_file = folder / "removed.nii.gz"
        return cls(
            case_id=case_id,
            folder=folder,
            suv=np.ascontiguousarray(suv, dtype=np.float32),
            geometry=geometry,
            report=read_json(folder / "report.json"),
            has_ct=(folder / "ct.nii.gz").is_file(),
            removed=load_labels(removed_file, geometry) if removed_file.is_file() else None,
        )

    def removed_components(self) -> dict[int, dict[str, Any]]:
        """Rows of ``report.json["organs"]["removed"]`` by removed label (organ, rule, mL, SUV)."""
        rows = (self.report.get("organs") or {}).get("removed") or []
        return {int(row["label"]): row for row in rows}

    @property
    def connectivity(self) -> int:
        """The lesion connectivity (6, 18, 26) the segmentation used (its report's parameters)."""
        params = self.report.get("parameters") or {}
        return check_connectivity(int(params.get("connectivity", DEFAULT_CONNECTIVITY)))


def load_labels(path: Path, geometry: Geometry) -> NDArray[np.int32]:
    """A lesion or removed-component map of a case, checked to lie on its PET grid (else 422).

    Parameters
    ----------
    path : Path
        NIfTI label map (``lesions.nii.gz``, ``removed.nii.gz``).
    geometry : Geometry
        The case's PET grid, which the map must share.

    Returns
    -------
    (Z, Y, X) int32 ndarray
    """
    from petseg.io.nifti import read_nifti

    try:
        labels, label_geometry = read_nifti(path)
    except (OSError, ValueError) as err:
        raise UnprocessableError(f"{path} cannot be read: {err}") from err
    if not label_geometry.same_grid(geometry):
        raise UnprocessableError(
            f"{path} is not on the PET grid of its case ({label_geometry.shape} vs "
            f"{geometry.shape}); it was not written by petseg for this case"
        )
    try:
        return np.ascontiguousarray(as_label_map(labels, str(path)))
    except ValueError as err:
        raise UnprocessableError(str(err)) from err
