"""NIfTI reading and writing with nibabel, converted to petseg's array convention.

nibabel gives arrays indexed ``(i, j, k)`` with an affine to RAS+ mm. petseg holds
``(Z, Y, X)`` arrays indexed ``(k, j, i)`` with an affine to LPS mm. The conversion is
exact: the array is transposed, the affine's first and third columns swapped and its x
and y rows negated. Files are written with both qform and sform set to the scanner
frame (code 1), so every NIfTI reader places the voxels at the same positions.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.io.atomic import atomic_file
from petseg.study import Geometry

__all__ = [
    "NIFTI_COMPRESSLEVEL",
    "lps_kji_to_ras_ijk",
    "ras_ijk_to_lps_kji",
    "read_nifti",
    "read_nifti_geometry",
    "write_nifti",
]

#: Compression level of written ``.nii.gz`` files: ISA-L (``isal.igzip``, a standard gzip
#: stream that every reader opens) at level 1 of its 0-3. ``benchmarks/nifti_write.py`` on a
#: whole-body PET, CT and label map (505 x 180 x 187): zlib's fastest level (nibabel's
#: default writer) took 4-8x as long for files 1-4 % larger; zlib levels 3 and 6 took
#: 1.6x and 4.2x longer again. Writing the volumes by two threads was slower (0.65x) on the
#: shared 2-core machine, so outputs are written in turn.
NIFTI_COMPRESSLEVEL = 1

_LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_SWAP_IK = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)


def ras_ijk_to_lps_kji(affine: NDArray[np.floating]) -> NDArray[np.float64]:
    """Convert a nibabel affine ((i, j, k) → RAS mm) to petseg's ((k, j, i) → LPS mm).

    Parameters
    ----------
    affine : (4, 4) float ndarray
        NIfTI affine: voxel ``(i, j, k)`` to RAS+ patient coordinates in mm.

    Returns
    -------
    (4, 4) float64 ndarray
        Voxel ``(k, j, i)`` to LPS patient coordinates in mm.
    """
    return _LPS_FROM_RAS @ np.asarray(affine, dtype=np.float64) @ _SWAP_IK


def lps_kji_to_ras_ijk(affine: NDArray[np.floating]) -> NDArray[np.float64]:
    """Inverse of :func:`ras_ijk_to_lps_kji`.

    Parameters
    ----------
    affine : (4, 4) float ndarray
        petseg affine: voxel ``(k, j, i)`` to LPS mm.

    Returns
    -------
    (4, 4) float64 ndarray
        NIfTI affine: voxel ``(i, j, k)`` to RAS mm.
    """
    return _LPS_FROM_RAS @ np.asarray(affine, dtype=np.float64) @ _SWAP_IK


def _load(path: Path) -> Any:
    import nibabel as nib

    if not path.is_file():
        raise FileNotFoundError(f"NIfTI file {path} does not exist")
    try:
        return nib.load(path)
    except Exception as err:  # nibabel raises several types for unreadable files
        raise ValueError(
            f"{path} is not a readable NIfTI image ({err}): the file is truncated, damaged or "
            "not NIfTI; copy or write it again"
        ) from None


def _spatial_shape(path: Path, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """petseg's ``(Z, Y, X)`` shape of a NIfTI of nibabel ``shape``; refuses 2D images."""
    if len(shape) > 3 and all(s == 1 for s in shape[3:]):
        shape = shape[:3]
    if len(shape) != 3:
        raise ValueError(
            f"{path} has shape {shape}; petseg needs a 3D image (a 4D image with one volume is "
            "accepted). Split the time/channel dimension first"
        )
    if min(shape) < 2:
        raise ValueError(
            f"{path} has shape {shape}: a single slice, not a volume; petseg needs a 3D image "
            "of at least 2 voxels along each axis. Give the whole volume"
        )
    return (shape[2], shape[1], shape[0])


#: Largest |cosine| between two voxel axes of an affine taken as orthogonal (0.01°).
MAX_AXIS_COSINE = 1e-4


def _geometry(path: Path, img: Any) -> Geometry:
    """:func:`read_nifti_geometry` of the loaded image ``img`` of file ``path``.

    Parameters
    ----------
    path : Path
        The file, named in errors.
    img : nibabel.Nifti1Image
        The loaded image (header and affine; the voxels are not read).
    """
    shape = _spatial_shape(path, tuple(int(s) for s in img.shape))
    header = img.header
    if int(header["qform_code"]) == 0 and int(header["sform_code"]) == 0:
        raise ValueError(
            f"{path}: qform_code and sform_code are both 0, so the voxel positions and "
            "orientation are unknown; write the image with its scanner affine (e.g. "
            "nibabel: img.set_sform(affine, code=1)), or convert it again from DICOM"
        )
    axes = np.asarray(img.affine, dtype=np.float64)[:3, :3]
    unit = axes / np.linalg.norm(axes, axis=0)
    cosines = np.abs(unit.T @ unit - np.eye(3))
    if cosines.max() > MAX_AXIS_COSINE:
        raise ValueError(
            f"{path}: the affine is sheared (voxel axes not orthogonal, largest cosine "
            f"{cosines.max():.3g}); petseg needs orthogonal voxel axes: resample the image "
            "onto an orthogonal grid (e.g. with SimpleITK) first"
        )
    return Geometry(ras_ijk_to_lps_kji(img.affine), shape)


def read_nifti_geometry(path: str | os.PathLike[str]) -> Geometry:
    """Geometry of a NIfTI file without reading its voxels.

    Parameters
    ----------
    path : str or os.PathLike
        A 3D NIfTI file (``.nii`` or ``.nii.gz``).

    Returns
    -------
    Geometry
        Affine (k, j, i) → LPS mm and the ``(Z, Y, X)`` shape.

    Raises
    ------
    ValueError
        Neither qform nor sform code set (nibabel would fall back to the voxel sizes
        alone, with no position or orientation), a sheared affine (voxel axes not
        orthogonal), a 2D image, or an unreadable file; the message names the file and
        the fix.
    """
    path = Path(path)
    return _geometry(path, _load(path))


def read_nifti(path: str | os.PathLike[str]) -> tuple[NDArray[np.generic], Geometry]:
    """Read a 3D NIfTI image as a ``(Z, Y, X)`` array and its Geometry.

    The on-disk data type is kept (scaled data, ``scl_slope`` ≠ 1, come back as float).

    Parameters
    ----------
    path : str or os.PathLike
        A 3D NIfTI file, or a 4D one with a single volume.

    Returns
    -------
    array : (Z, Y, X) ndarray
    geometry : Geometry
        Affine (k, j, i) → LPS mm.

    Raises
    ------
    ValueError
        An unreadable or truncated file, a 2D image, a sheared affine, or no spatial
        codes; the message names the file.
    """
    path = Path(path)
    img = _load(path)
    geometry = _geometry(path, img)
    try:
        data = np.asanyarray(img.dataobj)
    except (EOFError, OSError, ValueError, zlib.error) as err:
        raise ValueError(
            f"{path}: the image data cannot be read ({type(err).__name__}: {err}); the file is "
            "truncated or damaged: copy or write it again"
        ) from None
    data = data.reshape(data.shape[:3])
    array = np.ascontiguousarray(data.transpose(2, 1, 0))
    return array, geometry


def write_nifti(
    path: str | os.PathLike[str],
    array: NDArray[np.generic],
    geometry: Geometry,
    force: bool = False,
    *,
    description: str | None = None,
    compresslevel: int = NIFTI_COMPRESSLEVEL,
) -> Path:
    """Write a ``(Z, Y, X)`` array on ``geometry`` as NIfTI-1, atomically.

    Parameters
    ----------
    path : path
        ``.nii.gz`` or ``.nii``.
    array : (Z, Y, X) ndarray
        bool is stored as uint8; int64 as int32 (error if values do not fit); float64
        as float64; other types as they are.
    geometry : Geometry
        Must have the array's shape.
    force : bool
        Replace an existing file.
    description : str, optional
        Header ``descrip`` (80 characters); default ``"petseg <version>"``.
    compresslevel : int
        ISA-L gzip level 0-3 of a ``.nii.gz`` (default :data:`NIFTI_COMPRESSLEVEL`). The
        gzip header holds no time stamp and no file name, so the same array gives the
        same bytes.

    Returns
    -------
    Path
        The written file.
    """
    import nibabel as nib
    from isal import igzip

    from petseg import __version__

    path = Path(path)
    if not path.name.endswith((".nii", ".nii.gz")):
        raise ValueError(f"NIfTI output {path} must end in .nii.gz or .nii")
    if compresslevel not in range(4):
        raise ValueError(f"compresslevel must be an ISA-L gzip level 0-3, got {compresslevel}")
    array = np.asarray(array)
    if array.shape != geometry.shape:
        raise ValueError(
            f"array shape {array.shape} does not match the geometry {geometry.shape} for {path}"
        )
    if array.dtype == bool:
        array = array.astype(np.uint8)
    elif array.dtype in (np.int64, np.uint64):
        info = np.iinfo(np.int32)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise ValueError(f"integer values of {path} do not fit int32")
        array = array.astype(np.int32)
    affine = lps_kji_to_ras_ijk(geometry.affine)
    img = nib.Nifti1Image(array.transpose(2, 1, 0), affine)  # F-order on disk: a view
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header["descrip"] = (description or f"petseg {__version__}")[:79].encode("ascii", "replace")
    if np.issubdtype(array.dtype, np.integer):
        img.header.set_slope_inter(1.0, 0.0)
    img.header.set_xyzt_units("mm", "sec")
    with atomic_file(path, force=force) as tmp:
        if path.name.endswith(".gz"):
            with (
                open(tmp, "wb") as raw,
                igzip.GzipFile("", "wb", compresslevel, raw, mtime=0) as stream,
            ):
                img.to_file_map({"image": nib.FileHolder(fileobj=stream)})
        else:
            nib.save(img, tmp)
    return path
