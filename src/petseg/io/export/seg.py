"""Export a lesion map as a DICOM Segmentation (SEG) referencing the PET series.

Built with highdicom (:class:`highdicom.seg.Segmentation`), so the geometry, the
per-frame functional groups and the references to the source PET instances are
highdicom's.

* ``seg_type="binary"`` (default): one segment per lesion, labelled like the RTSTRUCT
  ROIs (``lesion_001``, ...). Segment numbers run 1..N in increasing label order (the
  standard requires consecutive numbers); the lesion label is kept as the segment
  label and as its Tracking ID. Empty frames are omitted.
* ``seg_type="labelmap"``: a LABELMAP SEG (one frame per slice, pixel value = segment
  number), the compact form for many lesions; needs a viewer that reads LABELMAP
  (Label Map Segmentation Storage, DICOM 2024, highdicom ≥ 0.23); highdicom adds a
  background segment 0. dciodvfy releases before 2024 do not know this IOD.
* Every segment: category *Morphologically Abnormal Structure* (SCT 49755003), type
  *Neoplasm* (SCT 108369006), algorithm type AUTOMATIC (or SEMIAUTOMATIC after review
  edits) with Algorithm Identification naming petseg and its version; display colour
  as in the RTSTRUCT.
* Patient and study identity come from the PET headers; values invalid for their VR
  are blanked first (:func:`petseg.io.export.common.identity_cleaned`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.checks import check_choice
from petseg.io.export.common import (
    GENERATION_ALGORITHMS,
    EmptyLesionMapError,
    ExportResult,
    align_to_reference,
    export_lesion_map,
    identity_cleaned,
    identity_problems,
    lesion_colors,
    lesion_names,
    write_dataset,
)
from petseg.study import DicomSource, Geometry

__all__ = ["ALGORITHM_FAMILIES", "SEG_TYPES", "build_seg", "export_seg", "write_seg"]

SEG_TYPES = ("binary", "labelmap")
#: Algorithm family (CID 7162) by short name.
ALGORITHM_FAMILIES = ("ai", "threshold", "manual")


def _family_code(name: str) -> Any:
    from pydicom.sr.codedict import codes

    return {
        "ai": codes.cid7162.ArtificialIntelligence,
        "threshold": codes.cid7162.HistogramAnalysis,
        "manual": codes.cid7162.ManualProcessing,
    }[name]


def build_seg(
    labels: NDArray[np.integer],
    geometry: Geometry,
    reference: DicomSource | Sequence[Any],
    *,
    seg_type: str = "binary",
    segment_labels: Mapping[int, str] | None = None,
    algorithm_type: str = "AUTOMATIC",
    algorithm_family: str = "ai",
    series_description: str = "petseg lesions",
    series_number: int = 902,
    source: str = "",
) -> Any:
    """Build a DICOM SEG with one segment per lesion of ``labels``.

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        Lesion map: 0 = background, one positive label per lesion.
    geometry : Geometry
        Grid of ``labels``: the reference grid up to axis order and direction.
    reference : DicomSource or sequence of pydicom.Dataset
        The PET series headers (pixel data not needed).
    seg_type : {"binary", "labelmap"}
        One binary segment per lesion, or one label-map frame per slice.
    segment_labels : mapping label → str, optional
        Segment labels (default ``lesion_001``, ...; at most 64 characters).
    algorithm_type : {"AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"}
        Segment Algorithm Type (SEMIAUTOMATIC after manual review edits).
    algorithm_family : {"ai", "threshold", "manual"}
        Coded as CID 7162 Artificial Intelligence, Histogram Analysis (thresholds on
        SUV) or Manual Processing.
    series_description, series_number : str, int
        Series Description and Series Number of the new series.
    source : str
        Where the lesion map came from, recorded in the Algorithm Parameters.

    Returns
    -------
    highdicom.seg.Segmentation
        A pydicom Dataset; save with ``save_as(path)``.

    Raises
    ------
    EmptyLesionMapError
        No lesion in ``labels``.
    """
    check_choice("seg_type", seg_type, SEG_TYPES)
    check_choice("algorithm_type", algorithm_type, GENERATION_ALGORITHMS)
    check_choice("algorithm_family", algorithm_family, ALGORITHM_FAMILIES)
    aligned, reference = align_to_reference(labels, geometry, reference)
    present = [int(v) for v in np.unique(aligned[aligned > 0])]  # labelled voxels only: fast
    if not present:
        raise EmptyLesionMapError()
    names = lesion_names(present, segment_labels)
    descriptions = _segment_descriptions(names, algorithm_type, algorithm_family, seg_type, source)
    pixels = _segment_numbers(aligned, present)
    return _segmentation(
        reference, pixels, descriptions, seg_type, series_description, series_number
    )


def _segmentation(
    reference: DicomSource,
    pixels: NDArray[np.integer],
    descriptions: Sequence[Any],
    seg_type: str,
    series_description: str,
    series_number: int,
) -> Any:
    """The highdicom Segmentation of ``pixels`` (segment numbers) on the PET series."""
    import highdicom as hd
    from pydicom.uid import generate_uid

    from petseg import __version__

    with warnings.catch_warnings():
        # highdicom warns when a copied Patient's Name has one component ("STS_004", as
        # in the sarcoma data); the reference's name is kept as it is.
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person")
        return hd.seg.Segmentation(
            source_images=identity_cleaned(reference.headers),
            pixel_array=pixels,
            segmentation_type=seg_type.upper(),
            segment_descriptions=descriptions,
            series_instance_uid=generate_uid(),
            series_number=int(series_number),
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer="petseg",
            manufacturer_model_name="petseg",
            software_versions=__version__,
            device_serial_number="none",
            content_label="LESIONS",
            series_description=series_description[:64],
            content_description=f"petseg {__version__} lesion map, {len(descriptions)} lesion(s)",
        )


def _segment_descriptions(
    names: Mapping[int, str], algorithm_type: str, family: str, seg_type: str, source: str
) -> list[Any]:
    """One Segment Description per lesion, numbered 1..N in increasing label order, with
    petseg's Algorithm Identification (its parameters: the SEG type and the source)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    from petseg import __version__

    parameters = {"seg_type": seg_type, **({"source": source[:50]} if source else {})}
    algorithm = hd.AlgorithmIdentificationSequence(
        name="petseg", family=_family_code(family), version=__version__, parameters=parameters
    )
    colors = lesion_colors(list(names))
    return [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=names[label][:64],
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Neoplasm,
            algorithm_type=algorithm_type,
            algorithm_identification=algorithm,
            tracking_uid=generate_uid(),
            tracking_id=names[label][:64],
            display_color=hd.color.CIELabColor.from_rgb(*colors[label]),
        )
        for number, label in enumerate(sorted(names), start=1)
    ]


def _segment_numbers(aligned: NDArray[np.integer], present: Sequence[int]) -> NDArray[np.integer]:
    """(frames, rows, cols) segment numbers: segment s is label ``present[s - 1]``.

    One array serves both SEG types (highdicom splits it into one binary plane per
    segment for BINARY), without an N-fold copy.
    """
    lookup = np.zeros(int(max(present)) + 1, dtype=np.uint16)
    lookup[list(present)] = np.arange(1, len(present) + 1)
    return lookup[aligned].astype(np.uint8 if len(present) < 256 else np.uint16)


def write_seg(
    path: str | os.PathLike[str],
    labels: NDArray[np.integer],
    geometry: Geometry,
    reference: DicomSource | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    force: bool = False,
    **options: Any,
) -> ExportResult:
    """Build (:func:`build_seg`) and write a DICOM SEG atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.dcm``); never replaced unless ``force``.
    labels : (Z, Y, X) int ndarray
        Lesion map, one segment per positive label.
    geometry : Geometry
        Grid of ``labels`` (the PET grid up to axis order and direction).
    reference : DicomSource, path or sequence of paths
        The PET series (its folder or files are read when not a DicomSource).
    force : bool
        Replace an existing file.
    **options : Any
        Passed to :func:`build_seg`.

    Returns
    -------
    ExportResult
        The file, its segment count, and identity values not copied.
    """
    path, seg, source = write_dataset(
        path, build_seg, labels, geometry, reference, force=force, **options
    )
    return ExportResult(
        path=path,
        n_rois=sum(int(item.SegmentNumber) > 0 for item in seg.SegmentSequence),
        n_contours=0,
        notes=identity_problems(source.first),
    )


def export_seg(
    lesions: str | os.PathLike[str],
    reference: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    seg_type: str = "binary",
    algorithm_type: str = "AUTOMATIC",
    algorithm_family: str = "ai",
    force: bool = False,
) -> ExportResult:
    """``petseg export seg``: a lesion-map NIfTI file → DICOM SEG file.

    Parameters
    ----------
    lesions : str or os.PathLike
        Lesion map NIfTI, integer labels, on the PET grid (any axis order/direction).
    reference : str, os.PathLike or sequence of them
        The PET DICOM series folder or files.
    out : str or os.PathLike
        Output ``.dcm``.
    seg_type : {"binary", "labelmap"}
        See :func:`build_seg`.
    algorithm_type : {"AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"}
        Segment Algorithm Type.
    algorithm_family : {"ai", "threshold", "manual"}
        Algorithm family (CID 7162).
    force : bool
        Replace an existing output.

    Returns
    -------
    ExportResult
    """
    return export_lesion_map(
        write_seg,
        lesions,
        reference,
        out,
        force=force,
        seg_type=seg_type,
        algorithm_type=algorithm_type,
        algorithm_family=algorithm_family,
    )
