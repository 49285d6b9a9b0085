"""DICOM export of lesion maps: RT Structure Sets and Segmentations referencing the PET
series, for review in clinical viewers.

* :mod:`~petseg.io.export.common`: the reference series, patient and study identity,
  ROI names and colours, the lesion map file, :class:`ExportResult`;
* :mod:`~petseg.io.export.rtstruct`: the RT Structure Set writer;
* :mod:`~petseg.io.export.seg`: the DICOM SEG writer (highdicom);
* :mod:`~petseg.io.export.case`: both into a case folder, for a study read from DICOM.

Reading an RT Structure Set back onto a grid is :mod:`petseg.io.rtstruct`.
"""

from petseg.io.export.case import export_lesions_for_study
from petseg.io.export.common import (
    GENERATION_ALGORITHMS,
    EmptyLesionMapError,
    ExportResult,
    identity_problems,
    lesion_colors,
    lesion_roi_name,
    read_reference_series,
)
from petseg.io.export.rtstruct import (
    TOTAL_ROI_NAME,
    build_rtstruct,
    export_rtstruct,
    write_rtstruct,
)
from petseg.io.export.seg import ALGORITHM_FAMILIES, SEG_TYPES, build_seg, export_seg, write_seg

__all__ = [
    "ALGORITHM_FAMILIES",
    "GENERATION_ALGORITHMS",
    "SEG_TYPES",
    "TOTAL_ROI_NAME",
    "EmptyLesionMapError",
    "ExportResult",
    "build_rtstruct",
    "build_seg",
    "export_lesions_for_study",
    "export_rtstruct",
    "export_seg",
    "identity_problems",
    "lesion_colors",
    "lesion_roi_name",
    "read_reference_series",
    "write_rtstruct",
    "write_seg",
]
