"""DICOM image series: discovery in a folder tree, geometry, and reading to a volume.

Slices are sorted by Image Position (Patient) projected on the slice normal
``n = row cosine × column cosine`` (from Image Orientation (Patient)); the slice spacing
comes from these positions, never from Slice Thickness. Rescale Slope/Intercept are
applied per slice. Any orthonormal orientation is supported: the affine carries it.

The affine columns (petseg's ``(k, j, i)`` index order) are
``axis0 = n × dz`` (direction of increasing sorted position), ``axis1 = column cosine ×
PixelSpacing[0]`` (row spacing), ``axis2 = row cosine × PixelSpacing[1]`` (column
spacing); the translation is the Image Position (Patient) of the first sorted slice.

Refused, with an error naming the series and the positions: slices with different
orientation, matrix or pixel spacing; duplicate positions; gaps that differ from the
median spacing by more than 1 %; slices not stacked along their normal (gantry tilt);
multi-frame (enhanced) images.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.study import DicomSource, Geometry

__all__ = [
    "DICOM_SUFFIXES",
    "NON_IMAGE_MODALITIES",
    "SPACING_TOLERANCE",
    "DicomFileError",
    "DicomScan",
    "DicomSeries",
    "DicomVolume",
    "dicom_source",
    "discover_series",
    "image_series",
    "instance_uids",
    "raw_value",
    "read_series",
    "scan_folder",
    "series_geometry",
]

#: Largest allowed relative deviation of a slice gap from the median gap.
SPACING_TOLERANCE = 0.01
#: File name endings that declare a file DICOM: such a file that cannot be read is an error.
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
#: Identifiers every DICOM instance has (Type 1); a file without one is damaged.
REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID")
#: Modalities whose image module makes Rescale Slope and Intercept mandatory (Type 1).
RESCALED_MODALITIES = ("PT", "CT")
#: Attributes that describe the stored pixels; they must be the same in every slice.
PIXEL_FORMAT = (
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
)


class DicomFileError(ValueError):
    """A DICOM file cannot be read, or holds a value petseg cannot use.

    Parameters
    ----------
    path : path
        The file; the message starts with it (kept as ``path``).
    problem : str
        What is wrong and the fix (kept as ``problem``).
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class DicomSeries:
    """One series found by :func:`scan_folder`, with the datasets read in that pass.

    Attributes
    ----------
    series_uid : str
        Series Instance UID (0020,000E).
    modality : str
        Modality (0008,0060): ``"PT"``, ``"CT"``, ``"SEG"``, ...
    description : str
        Series Description (0008,103E); empty when absent.
    files : tuple of Path
        The series' files, in the order the folder was walked (sorted names).
    study_uid : str
        Study Instance UID (0020,000D); empty when absent.
    frame_of_reference_uid : str
        Frame of Reference UID (0020,0052); empty when absent.
    patient_id : str
        Patient ID (0010,0020); empty when absent.
    manufacturer : str
        Manufacturer (0008,0070); empty when absent.
    datasets : tuple of pydicom.Dataset
        One per file, in the order of ``files``; they hold Pixel Data when the folder
        was scanned with ``pixels=True`` until :func:`read_series` decodes it.
    """

    series_uid: str
    modality: str
    description: str
    files: tuple[Path, ...]
    study_uid: str = ""
    frame_of_reference_uid: str = ""
    patient_id: str = ""
    manufacturer: str = ""
    datasets: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    def summary(self) -> str:
        """One line naming the series for error messages."""
        return (
            f"{self.modality} series {self.series_uid} ({self.description or 'no description'}, "
            f"{len(self.files)} files, in {os.path.commonpath([str(f) for f in self.files])})"
        )


@dataclass(frozen=True)
class DicomScan:
    """The DICOM series of a folder tree, read in one pass by :func:`scan_folder`.

    Attributes
    ----------
    series : tuple of DicomSeries
        Sorted by modality, description and UID.
    skipped : tuple of str
        ``"path: reason"`` for each unreadable file skipped on request
        (``skip_unreadable=True``); files that are not DICOM are not listed.
    """

    series: tuple[DicomSeries, ...]
    skipped: tuple[str, ...] = ()


@dataclass
class DicomVolume:
    """A read image series.

    Attributes
    ----------
    array : (Z, Y, X) float32 ndarray
        Rescaled values (stored × slope + intercept, per slice).
    geometry : Geometry
    files : list of Path
        The instances in sorted slice order (index ``k``).
    headers : list of pydicom.Dataset
        Headers of the sorted instances (without pixel data).
    """

    array: NDArray[np.float32]
    geometry: Geometry
    files: list[Path]
    headers: list[Any] = field(repr=False)


def _iter_files(folder: Path) -> Iterable[Path]:
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            if name.upper() == "DICOMDIR" or name.startswith("."):
                continue
            yield Path(root) / name


def _claims_dicom(path: Path) -> bool:
    """True when the file says it is DICOM: a DICOM name ending or the ``DICM`` prefix."""
    if path.name.lower().endswith(DICOM_SUFFIXES):
        return True
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _read_file(path: Path, pixels: bool) -> Any:
    """The dataset of one file; None when the file is not DICOM and does not claim to be.

    Raises
    ------
    DicomFileError
        The file claims to be DICOM (name or ``DICM`` prefix) but cannot be parsed, or
        lacks the SOP Class or Series Instance UID (a header cut short).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=not pixels)
        ok = all(_uid_key(ds, key) for key in REQUIRED_UIDS)
    except InvalidDicomError:
        if _claims_dicom(path):
            raise DicomFileError(path, "not a readable DICOM file (no DICM header)") from None
        return None
    except Exception as err:  # pydicom raises many types on corrupt files
        raise DicomFileError(
            path, f"unreadable DICOM ({type(err).__name__}: {err})".replace("\n", " ")
        ) from None
    if not ok:
        raise DicomFileError(
            path,
            f"DICOM header cut short or damaged (it lacks one of {', '.join(REQUIRED_UIDS)})",
        )
    return ds


def _uid_key(ds: Any, keyword: str) -> bytes:
    """The stored UID of element ``keyword`` without padding (cheap to compare); b"" if absent."""
    value = raw_value(ds, keyword)
    if value is None:
        return b""
    return value.strip(b"\x00 ") if isinstance(value, bytes) else str(value).encode()


def _text(ds: Any, keyword: str) -> str:
    return str(ds.get(keyword, "") or "")


def scan_folder(
    folder: str | os.PathLike[str], *, pixels: bool = True, skip_unreadable: bool = False
) -> DicomScan:
    """Read every DICOM file under ``folder`` once and group the datasets by series.

    Parameters
    ----------
    folder : path
        Searched recursively (``DICOMDIR`` and hidden files are ignored).
    pixels : bool
        Keep Pixel Data in the datasets, so :func:`read_series` decodes without opening
        a file again. ``False`` reads headers only.
    skip_unreadable : bool
        Skip (and list in :attr:`DicomScan.skipped`) files that claim to be DICOM but
        cannot be read, instead of stopping.

    Returns
    -------
    DicomScan

    Raises
    ------
    NotADirectoryError
        ``folder`` is not a directory.
    DicomFileError
        A file named ``*.dcm`` (or with the ``DICM`` prefix) cannot be read, unless
        ``skip_unreadable``; the message names the file and the option.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder of DICOM files")
    found: dict[bytes, tuple[list[Path], list[Any]]] = {}
    skipped: list[str] = []
    for path in _iter_files(folder):
        try:
            ds = _read_file(path, pixels)
        except DicomFileError as err:
            if not skip_unreadable:
                raise DicomFileError(
                    path,
                    f"{err.problem}; remove or replace the file, or skip unreadable files "
                    "(skip_unreadable=True, CLI --skip-unreadable)",
                ) from None
            skipped.append(str(err))
            continue
        if ds is not None:
            files, datasets = found.setdefault(_uid_key(ds, "SeriesInstanceUID"), ([], []))
            files.append(path)
            datasets.append(ds)
    series = []
    for files, datasets in found.values():
        head = datasets[0]
        series.append(
            DicomSeries(
                series_uid=_text(head, "SeriesInstanceUID"),
                modality=_text(head, "Modality"),
                description=_text(head, "SeriesDescription"),
                files=tuple(files),
                study_uid=_text(head, "StudyInstanceUID"),
                frame_of_reference_uid=_text(head, "FrameOfReferenceUID"),
                patient_id=_text(head, "PatientID"),
                manufacturer=_text(head, "Manufacturer"),
                datasets=tuple(datasets),
            )
        )
    series.sort(key=lambda s: (s.modality, s.description, s.series_uid))
    return DicomScan(series=tuple(series), skipped=tuple(skipped))


def instance_uids(datasets: Sequence[Any], files: Sequence[Path]) -> list[str]:
    """The SOP Instance UIDs of ``datasets``; a malformed one is an error naming its file.

    Parameters
    ----------
    datasets : sequence of pydicom.Dataset
        The instances.
    files : sequence of Path
        Their files, in the same order.
    """
    return [
        str(_value(ds, "SOPInstanceUID", path)) for ds, path in zip(datasets, files, strict=True)
    ]


#: Modalities of DICOM objects that are not images: structure sets, segmentations, reports,
#: plans, doses, presentation states and key-object selections.
NON_IMAGE_MODALITIES = frozenset({"RTSTRUCT", "SEG", "SR", "RTPLAN", "RTDOSE", "PR", "KO"})


def image_series(folder: str | os.PathLike[str]) -> list[DicomSeries]:
    """The image series under ``folder`` (headers only), without the non-image objects.

    Parameters
    ----------
    folder : path
        Searched recursively.

    Returns
    -------
    list of DicomSeries
        Every series whose modality is not in :data:`NON_IMAGE_MODALITIES`.
    """
    return [s for s in discover_series(folder) if s.modality not in NON_IMAGE_MODALITIES]


def discover_series(folder: str | os.PathLike[str]) -> list[DicomSeries]:
    """The series under ``folder`` with their headers (no Pixel Data); see :func:`scan_folder`.

    Parameters
    ----------
    folder : path
        Searched recursively.

    Raises
    ------
    NotADirectoryError, DicomFileError
        As :func:`scan_folder`.
    """
    return list(scan_folder(folder, pixels=False).series)


def raw_value(ds: Any, keyword: str | int) -> Any:
    """The value of element ``keyword`` without pydicom's conversion when it is not yet done.

    Parameters
    ----------
    ds : pydicom.Dataset
    keyword : str or int
        A DICOM keyword, or a tag as an integer (``0xGGGGEEEE``).

    Returns
    -------
    bytes, or the converted value, or None
        The stored bytes while the element is unconverted (cheap to compare between
        slices); None when the element is absent.
    """
    element = ds.get_item(keyword)
    return None if element is None else element.value


def _floats(ds: Any, keyword: str, count: int, path: Path) -> NDArray[np.float64]:
    """``count`` decimal numbers of element ``keyword``, parsed from its stored text."""
    value = raw_value(ds, keyword)
    if isinstance(value, bytes):  # DS/IS text "a\\b\\c", padded with space or NUL
        values: Any = value.strip(b"\x00 ").split(b"\\") if value.strip(b"\x00 ") else []
    else:
        values = value if count > 1 else [value]
    try:
        if value is None or isinstance(values, (str, bytes)) or len(values) != count:
            raise ValueError
        numbers = np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise DicomFileError(
            path,
            f"{keyword} is missing or is not {count} number(s) (found {value!r}); petseg needs "
            "it to read the image",
        ) from None
    if not np.all(np.isfinite(numbers)):
        raise DicomFileError(path, f"{keyword} is not finite (found {value!r})")
    return numbers


def _value(ds: Any, keyword: str, path: Path) -> Any:
    """pydicom's value of element ``keyword``; a malformed one is an error naming the file."""
    try:
        return ds.get(keyword)
    except Exception as err:  # pydicom raises several types for malformed values
        raise DicomFileError(
            path, f"{keyword} cannot be read ({type(err).__name__}: {err})"
        ) from None


def _int(ds: Any, keyword: str, path: Path) -> int:
    value = _value(ds, keyword, path)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DicomFileError(
            path, f"{keyword} is missing or not an integer (found {value!r})"
        ) from None


def _single_slice_thickness(header: Any, path: Path, name: str) -> float:
    """Slice thickness (mm) of a one-slice series: Spacing Between Slices or Slice Thickness."""
    dz = next(
        (
            float(_floats(header, keyword, 1, path)[0])
            for keyword in ("SpacingBetweenSlices", "SliceThickness")
            if raw_value(header, keyword)
        ),
        0.0,
    )
    if not dz > 0:
        raise ValueError(
            f"{name}: single slice without Spacing Between Slices or Slice Thickness; "
            "cannot give it a thickness"
        )
    return dz


def _regular_spacing(
    along: NDArray[np.float64],
    positions: NDArray[np.float64],
    normal: NDArray[np.float64],
    pixel_mm: float,
    files: Sequence[Path],
    name: str,
) -> float:
    """Slice spacing (mm) of sorted slices; refuses irregular gaps and in-plane drift."""
    gaps = np.diff(along)
    median = float(np.median(gaps))
    bad = np.flatnonzero((gaps <= 1e-6) | (np.abs(gaps - median) > SPACING_TOLERANCE * median))
    if bad.size:
        listing = ", ".join(
            f"{files[b].name} at {along[b]:.3f} mm → "
            f"{files[b + 1].name} at {along[b + 1]:.3f} mm (gap {gaps[b]:.3f})"
            for b in bad[:5]
        )
        raise ValueError(
            f"{name}: irregular slice spacing (median gap {median:.3f} mm, tolerance "
            f"{SPACING_TOLERANCE:.0%}): {listing}{' ...' if bad.size > 5 else ''}. "
            "Duplicate or missing slices: remove duplicates, or export the complete "
            "series (petseg does not interpolate missing slices)"
        )
    dz = float((along[-1] - along[0]) / (len(along) - 1))
    offsets = positions - positions[0] - np.outer(along - along[0], normal)
    worst = float(np.abs(offsets).max())
    if worst > max(0.01 * dz, 1e-3) + 0.01 * pixel_mm:
        raise ValueError(
            f"{name}: slice positions are not stacked along the slice normal "
            f"(in-plane drift up to {worst:.3f} mm; gantry tilt?); resample the series "
            "to a regular grid first"
        )
    return dz


def _refuse_multi_frame(headers: Sequence[Any], files: Sequence[Path]) -> None:
    """Raise when an instance holds more than one frame (enhanced multi-frame images)."""
    for ds, path in zip(headers, files, strict=True):
        if raw_value(ds, "NumberOfFrames") is not None and _int(ds, "NumberOfFrames", path) > 1:
            raise ValueError(
                f"{path}: multi-frame (enhanced) images are not supported; "
                "convert the series to single-frame instances (e.g. with dcm2dcm/emf2sf)"
            )


def _common_plane(
    headers: Sequence[Any], files: Sequence[Path], name: str
) -> tuple[NDArray[np.float64], NDArray[np.float64], int, int]:
    """Orientation, pixel spacing (mm), rows and columns shared by every instance.

    Stored bytes are compared first; a value is parsed only where they differ.
    """
    iop = _floats(headers[0], "ImageOrientationPatient", 6, files[0])
    spacing = _floats(headers[0], "PixelSpacing", 2, files[0])
    stored_shape = [raw_value(headers[0], "Rows"), raw_value(headers[0], "Columns")]
    rows, cols = _int(headers[0], "Rows", files[0]), _int(headers[0], "Columns", files[0])
    for ds, path in zip(headers[1:], files[1:], strict=True):
        other = _floats(ds, "ImageOrientationPatient", 6, path)
        if not np.allclose(other, iop, atol=1e-4):
            raise ValueError(
                f"{name}: {path} has Image Orientation (Patient) {other.tolist()} but "
                f"{files[0]} has {iop.tolist()}; a series must have one orientation"
            )
        if not np.allclose(_floats(ds, "PixelSpacing", 2, path), spacing, rtol=1e-4):
            raise ValueError(f"{name}: {path} has a different Pixel Spacing than {files[0]}")
        if [raw_value(ds, "Rows"), raw_value(ds, "Columns")] != stored_shape and (
            _int(ds, "Rows", path),
            _int(ds, "Columns", path),
        ) != (rows, cols):
            raise ValueError(
                f"{name}: {path} is {ds.Rows}x{ds.Columns} but {files[0]} is {rows}x{cols}"
            )
    return iop, spacing, rows, cols


def _direction_cosines(
    iop: NDArray[np.float64], name: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Unit row and column cosines of Image Orientation (Patient); refuses non-orthogonal ones."""
    row_cos = iop[:3] / np.linalg.norm(iop[:3])
    col_cos = iop[3:] / np.linalg.norm(iop[3:])
    if abs(float(row_cos @ col_cos)) > 1e-3:
        raise ValueError(
            f"{name}: Image Orientation (Patient) {iop.tolist()} is not orthogonal "
            f"(row·column = {float(row_cos @ col_cos):.4f})"
        )
    return row_cos, col_cos


def series_geometry(
    headers: Sequence[Any], files: Sequence[Path], *, name: str = "series"
) -> tuple[Geometry, list[int]]:
    """Geometry of a single-frame image series and the sorting order of its instances.

    Parameters
    ----------
    headers : sequence of pydicom.Dataset
        One per instance (pixel data not needed).
    files : sequence of Path
        Their paths, for error messages.
    name : str
        Names the series in error messages.

    Returns
    -------
    geometry : Geometry
    order : list of int
        Indices into ``headers`` in ascending position along the slice normal.

    Raises
    ------
    ValueError
        Mixed orientations/matrices/spacings, duplicate or irregular slice positions,
        gantry tilt, or multi-frame instances.
    """
    if not headers:
        raise ValueError(f"{name}: no image instances")
    _refuse_multi_frame(headers, files)
    iop, spacing, rows, cols = _common_plane(headers, files, name)
    row_cos, col_cos = _direction_cosines(iop, name)
    normal = np.cross(row_cos, col_cos)
    positions = np.array(
        [_floats(ds, "ImagePositionPatient", 3, p) for ds, p in zip(headers, files, strict=True)]
    )
    along = positions @ normal
    order = [int(i) for i in np.argsort(along, kind="stable")]
    along = along[order]
    positions = positions[order]
    if len(order) == 1:
        dz = _single_slice_thickness(headers[0], files[0], name)
    else:
        sorted_files = [files[i] for i in order]
        dz = _regular_spacing(along, positions, normal, float(spacing.min()), sorted_files, name)
    affine = np.eye(4)
    affine[:3, 0] = normal * dz
    affine[:3, 1] = col_cos * spacing[0]
    affine[:3, 2] = row_cos * spacing[1]
    affine[:3, 3] = positions[0]
    return Geometry(affine, (len(order), rows, cols)), order


def dicom_source(datasets: Sequence[Any], files: Sequence[Path] = ()) -> DicomSource:
    """Sort the headers of one single-frame image series into a :class:`DicomSource`.

    Parameters
    ----------
    datasets : sequence of pydicom.Dataset
        The instances of one series (pixel data not needed), in any order.
    files : sequence of Path, optional
        Their files, in the same order as ``datasets`` (names them in errors).

    Raises
    ------
    ValueError
        Several series or Frames of Reference, or no Frame of Reference UID.
    """
    datasets = list(datasets)
    paths = [Path(f) for f in files] or [Path(f"instance {n}") for n in range(len(datasets))]
    uids = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    frames = {str(ds.get("FrameOfReferenceUID", "")) for ds in datasets}
    if len(uids) != 1 or len(frames) != 1 or "" in frames:
        raise ValueError(
            f"reference images must be one series with one Frame of Reference UID; got "
            f"series {sorted(uids)} and frames {sorted(frames)} (first file {paths[0]})"
        )
    geometry, order = series_geometry(datasets, paths, name=f"reference series {uids.pop()}")
    return DicomSource(
        headers=tuple(datasets[i] for i in order),
        geometry=geometry,
        files=tuple(paths[i] for i in order) if files else (),
    )


def _rescale(ds: Any, path: Path, required: bool) -> tuple[float, float]:
    """Rescale Slope and Intercept of one instance (``required`` for PET and CT)."""
    if required or "RescaleSlope" in ds:
        slope = float(_floats(ds, "RescaleSlope", 1, path)[0])
        if slope == 0:
            raise DicomFileError(
                path, "RescaleSlope is 0, which would erase the image; fix the header"
            )
        intercept = float(_floats(ds, "RescaleIntercept", 1, path)[0])
        return slope, intercept
    return 1.0, 0.0


def _check_pixel_format(datasets: Sequence[Any], paths: Sequence[Path], name: str) -> None:
    """Every instance describes its pixels as the first does (bits, sign, samples).

    Compared by stored bytes; a value is converted only where the bytes differ.
    """
    stored = [raw_value(datasets[0], key) for key in PIXEL_FORMAT]
    first = [_value(datasets[0], key, paths[0]) for key in PIXEL_FORMAT]
    for ds, path in zip(datasets[1:], paths[1:], strict=True):
        for key, raw, expected in zip(PIXEL_FORMAT, stored, first, strict=True):
            if raw_value(ds, key) != raw and _value(ds, key, path) != expected:
                raise DicomFileError(
                    path,
                    f"{key} is {ds.get(key)!r} but {paths[0]} has {expected!r}; every slice of "
                    f"{name} must store its pixels the same way (a damaged or foreign file?)",
                )


#: Uncompressed little-endian transfer syntaxes (Implicit / Explicit VR Little Endian).
_NATIVE_LITTLE_ENDIAN = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")


def _native_dtype(ds: Any) -> np.dtype[Any] | None:
    """The stored pixel type of the plainest encoding, or None to leave decoding to pydicom.

    Only uncompressed little-endian single-frame MONOCHROME2 data whose stored bits fill
    the allocated ones (BitsStored == BitsAllocated, 8/16/32) is read by petseg, as a
    plain view of the bytes; pydicom's ``pixel_array`` gives the same array (a test checks
    it) at several times the cost per slice. Decided on the first slice: the others
    store their pixels the same way (:func:`_check_pixel_format`).
    """
    meta = getattr(ds, "file_meta", None)
    bits = ds.get("BitsAllocated")
    if (
        meta is None
        or str(meta.get("TransferSyntaxUID", "")) not in _NATIVE_LITTLE_ENDIAN
        or bits not in (8, 16, 32)
        or ds.get("BitsStored") != bits
        or ds.get("SamplesPerPixel") != 1
        or ds.get("PhotometricInterpretation") != "MONOCHROME2"
        or ds.get("PixelRepresentation") not in (0, 1)
        or int(ds.get("NumberOfFrames", 1) or 1) != 1
    ):
        return None
    return np.dtype(f"<{'iu'[ds.PixelRepresentation == 0]}{bits // 8}")


def _pixels(ds: Any, dtype: np.dtype[Any] | None, shape: tuple[int, ...]) -> NDArray[Any]:
    """The stored pixels of one instance: a view of its bytes when ``dtype``, else pydicom's."""
    meta = getattr(ds, "file_meta", None)
    data = raw_value(ds, "PixelData")
    size = int(np.prod(shape))
    if (
        dtype is not None
        and meta is not None
        and str(meta.get("TransferSyntaxUID", "")) in _NATIVE_LITTLE_ENDIAN
        and isinstance(data, bytes)
        and len(data) in (size * dtype.itemsize, size * dtype.itemsize + 1)  # even padding
    ):
        return np.frombuffer(data, dtype=dtype, count=size).reshape(shape)
    return np.asarray(ds.pixel_array)


def _decode(
    ds: Any, path: Path, out: NDArray[np.float32], dtype: np.dtype[Any] | None, required: bool
) -> None:
    """Write the rescaled pixels of one instance into ``out``; drop its Pixel Data.

    ``dtype``: the plain stored type (:func:`_native_dtype`) or None; ``required``:
    Rescale Slope and Intercept are mandatory (PET, CT).
    """
    slope, intercept = _rescale(ds, path, required)
    try:
        pixels = _pixels(ds, dtype, out.shape)
    except Exception as err:  # pydicom raises several types for undecodable data
        raise DicomFileError(path, f"cannot decode Pixel Data: {err}") from err
    if pixels.shape != out.shape:
        raise DicomFileError(
            path, f"Pixel Data has shape {pixels.shape}, expected {out.shape} (Rows, Columns)"
        )
    values = np.multiply(pixels, slope, dtype=np.float64)
    del pixels, ds.PixelData
    values += intercept
    out[...] = values


def read_series(
    series: Sequence[str | os.PathLike[str]] | DicomSeries,
    *,
    name: str | None = None,
    workers: int = 1,
) -> DicomVolume:
    """Read a single-frame image series into a ``(Z, Y, X)`` float32 volume.

    Parameters
    ----------
    series : DicomSeries, or sequence of paths
        The instances of one series, in any order. A series from
        :func:`scan_folder` is decoded from its datasets without opening a file; their
        Pixel Data is dropped once decoded, so pixels are never held twice.
    name : str, optional
        Names the series in error messages (default: its summary / first file).
    workers : int
        Threads that decode slices (1: in this thread).

    Returns
    -------
    DicomVolume
        Rescaled values (stored × RescaleSlope + RescaleIntercept, slice by slice).

    Raises
    ------
    DicomFileError
        A file cannot be read or decoded, or holds an unusable value (Rescale Slope 0,
        pixel format differing from the first slice, ...); the message names it.
    ValueError
        The slices do not form one regular grid (see :func:`series_geometry`).
    """
    import pydicom

    if isinstance(series, DicomSeries):
        name = name or series.summary()
        paths = list(series.files)
        datasets = list(series.datasets)
        if len(datasets) != len(paths) or not all("PixelData" in ds for ds in datasets):
            datasets = [_read_file(p, pixels=True) for p in paths]
            for ds, path in zip(datasets, paths, strict=True):
                if ds is None:
                    raise DicomFileError(path, "not a DICOM file")
    else:
        paths = [Path(f) for f in series]
        name = name or (f"series in {paths[0].parent}" if paths else "series")
        datasets = [pydicom.dcmread(p) for p in paths]
    geometry, order = series_geometry(datasets, paths, name=name)
    _check_pixel_format(datasets, paths, name)
    dtype = _native_dtype(datasets[0])
    rescaled = _value(datasets[0], "Modality", paths[0]) in RESCALED_MODALITIES
    volume = np.empty(geometry.shape, dtype=np.float32)
    jobs = [
        (datasets[index], paths[index], volume[k], dtype, rescaled) for k, index in enumerate(order)
    ]
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda job: _decode(*job), jobs))
    else:
        for job in jobs:
            _decode(*job)
    return DicomVolume(
        array=volume,
        geometry=geometry,
        files=[paths[i] for i in order],
        headers=[datasets[i] for i in order],
    )
