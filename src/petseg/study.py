"""The Study: PET in SUVbw and CT on the same voxel grid, with one geometry and provenance.

Array convention (used everywhere in petseg)
--------------------------------------------
Every volume is a C-ordered ``(Z, Y, X)`` NumPy array: axis 0 runs over transaxial
slices, axis 1 over image rows, axis 2 over image columns. Index ``[k, j, i]``.

``Geometry.affine`` is a 4×4 matrix mapping an index column vector ``(k, j, i, 1)``
to patient coordinates ``(x, y, z, 1)`` in millimetres in the DICOM patient frame
(LPS: +x towards the patient's left, +y posterior, +z superior). ``Geometry.spacing``
is ``(dz, dy, dx)`` in mm, in array-axis order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["DicomSource", "Geometry", "Study"]


@dataclass(frozen=True)
class Geometry:
    """Voxel grid of a ``(Z, Y, X)`` volume.

    Parameters
    ----------
    affine : (4, 4) float64 ndarray
        Maps ``(k, j, i, 1)`` to LPS patient coordinates ``(x, y, z, 1)`` in mm.
    shape : tuple of int
        ``(Z, Y, X)``.
    """

    affine: NDArray[np.float64]
    shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got shape {affine.shape}")
        if not np.allclose(affine[3], [0, 0, 0, 1]):
            raise ValueError(f"affine's last row must be [0, 0, 0, 1], got {affine[3]}")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
            raise ValueError("affine is singular: the voxel axes do not span 3D space")
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"shape must be three positive sizes (Z, Y, X), got {self.shape}")
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "shape", shape)

    @classmethod
    def from_spacing(
        cls,
        shape: tuple[int, int, int],
        spacing: tuple[float, float, float],
        origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> Geometry:
        """Axis-aligned grid: axis 2 along +x, axis 1 along +y, axis 0 along +z.

        Parameters
        ----------
        shape : (Z, Y, X)
        spacing : (dz, dy, dx) in mm
        origin : (x, y, z) in mm, the centre of voxel ``[0, 0, 0]``
        """
        dz, dy, dx = (float(s) for s in spacing)
        affine = np.eye(4)
        affine[:3, 0] = (0.0, 0.0, dz)
        affine[:3, 1] = (0.0, dy, 0.0)
        affine[:3, 2] = (dx, 0.0, 0.0)
        affine[:3, 3] = origin
        return cls(affine, shape)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """``(dz, dy, dx)`` in mm."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(norms[0]), float(norms[1]), float(norms[2]))

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (1 mL = 1000 mm³)."""
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)

    @property
    def origin(self) -> tuple[float, float, float]:
        """LPS position in mm of the centre of voxel ``[0, 0, 0]``."""
        x, y, z = self.affine[:3, 3]
        return (float(x), float(y), float(z))

    def index_to_patient(self, index: NDArray[np.floating] | Any) -> NDArray[np.float64]:
        """Map array indices ``(k, j, i)`` to LPS patient coordinates.

        Parameters
        ----------
        index : (..., 3) float ndarray
            Indices ``(k, j, i)``; fractional values address points between voxel centres.

        Returns
        -------
        (..., 3) float64 ndarray
            ``(x, y, z)`` in LPS mm.
        """
        index = np.asarray(index, dtype=np.float64)
        return index @ self.affine[:3, :3].T + self.affine[:3, 3]

    def patient_to_index(self, point: NDArray[np.floating] | Any) -> NDArray[np.float64]:
        """Map LPS patient coordinates to fractional indices ``(k, j, i)``.

        Parameters
        ----------
        point : (..., 3) float ndarray
            ``(x, y, z)`` in LPS mm.

        Returns
        -------
        (..., 3) float64 ndarray
            Indices ``(k, j, i)``, not rounded.
        """
        point = np.asarray(point, dtype=np.float64)
        inverse = np.linalg.inv(self.affine[:3, :3])
        return (point - self.affine[:3, 3]) @ inverse.T

    def is_axis_aligned(self, atol: float = 1e-4) -> bool:
        """True when every voxel axis is parallel to a patient axis.

        Parameters
        ----------
        atol : float
            Tolerance on the direction cosines (dimensionless).

        Returns
        -------
        bool
        """
        unit = self.affine[:3, :3] / np.linalg.norm(self.affine[:3, :3], axis=0)
        return bool(np.all(np.isclose(np.abs(unit).max(axis=0), 1.0, atol=atol)))

    def same_grid(self, other: Geometry, atol_mm: float = 1e-3) -> bool:
        """True when both grids have the same shape and voxel positions (within ``atol_mm``).

        Parameters
        ----------
        other : Geometry
            The grid compared with.
        atol_mm : float
            Tolerance on every affine entry, mm.

        Returns
        -------
        bool
        """
        return self.shape == other.shape and bool(
            np.allclose(self.affine, other.affine, atol=atol_mm)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (affine, shape, spacing in mm)."""
        return {
            "shape_zyx": list(self.shape),
            "spacing_mm_zyx": [round(s, 6) for s in self.spacing],
            "affine_index_kji_to_lps_mm": self.affine.round(6).tolist(),
        }


@dataclass(frozen=True)
class DicomSource:
    """The DICOM image series a :class:`Study` was read from, kept for export.

    Built once when the series is read (:func:`petseg.io.dicom.dicom_source`), so
    RTSTRUCT and SEG export reference the same instances without reading a file again.

    Parameters
    ----------
    headers : tuple of pydicom.Dataset
        One per slice, without pixel data, sorted so ``headers[k]`` is slice ``k`` of
        ``geometry`` (identity, SOP instance UIDs, Frame of Reference).
    geometry : Geometry
        The series grid.
    files : tuple of Path
        The instance files in the same order (empty when built from datasets in memory).
    """

    headers: tuple[Any, ...]
    geometry: Geometry
    files: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if not self.headers:
            raise ValueError("a DICOM source needs at least one instance header")
        if len(self.headers) != self.geometry.shape[0]:
            raise ValueError(
                f"{len(self.headers)} instance headers for a grid of {self.geometry.shape[0]} "
                "slices: one header per slice is expected"
            )
        if self.files and len(self.files) != len(self.headers):
            raise ValueError(f"{len(self.files)} files for {len(self.headers)} instance headers")
        object.__setattr__(self, "headers", tuple(self.headers))
        object.__setattr__(self, "files", tuple(Path(f) for f in self.files))

    @property
    def first(self) -> Any:
        """Header of slice 0 (patient and study identity are the same in every slice)."""
        return self.headers[0]


@dataclass
class Study:
    """One PET/CT examination on the PET voxel grid.

    Parameters
    ----------
    pet : (Z, Y, X) float32 ndarray
        SUVbw in g/mL.
    geometry : Geometry
        The PET grid.
    ct : (Z, Y, X) float32 ndarray or None
        CT in HU resampled onto the PET grid, if a CT was given.
    patient_id, study_id : str
        Identifiers written into every output.
    provenance : dict
        Where the data came from (files, series UIDs, SUV conversion), JSON-ready.
    dicom : DicomSource or None
        The PET series headers when the study was read from DICOM (what RTSTRUCT and
        SEG export reference); None for NIfTI input.
    """

    pet: NDArray[np.float32]
    geometry: Geometry
    ct: NDArray[np.float32] | None = None
    patient_id: str = "anonymous"
    study_id: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    dicom: DicomSource | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.pet = np.ascontiguousarray(self.pet, dtype=np.float32)
        if self.pet.ndim != 3:
            raise ValueError(f"PET must be a 3D (Z, Y, X) array, got {self.pet.ndim}D")
        if self.pet.shape != self.geometry.shape:
            raise ValueError(
                f"PET shape {self.pet.shape} does not match its geometry {self.geometry.shape}"
            )
        if not np.all(np.isfinite(self.pet)):
            bad = int(np.count_nonzero(~np.isfinite(self.pet)))
            raise ValueError(
                f"PET of {self.patient_id!r} has {bad} NaN/infinite voxels; "
                "fix or mask the input image before segmentation"
            )
        if not np.any(self.pet):
            raise ValueError(f"PET of {self.patient_id!r} is empty (all voxels are 0)")
        if self.dicom is not None and not self.dicom.geometry.same_grid(self.geometry):
            raise ValueError(
                f"the DICOM source of {self.patient_id!r} is on another grid than its PET "
                f"({self.dicom.geometry.shape} vs {self.geometry.shape})"
            )
        if self.ct is not None:
            self.ct = np.ascontiguousarray(self.ct, dtype=np.float32)
            if self.ct.shape != self.pet.shape:
                raise ValueError(
                    f"CT shape {self.ct.shape} differs from PET shape {self.pet.shape}; "
                    "resample the CT onto the PET grid first (petseg.io.resample_to_grid)"
                )
