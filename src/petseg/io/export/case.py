"""The DICOM objects of a case folder: ``rtstruct.dcm`` (and ``seg.dcm``) beside a
segmentation of a study read from DICOM."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from petseg.io.export.rtstruct import write_rtstruct
from petseg.io.export.seg import write_seg
from petseg.study import Study

__all__ = ["export_lesions_for_study"]


def export_lesions_for_study(
    out_dir: str | os.PathLike[str],
    labels: NDArray[np.integer],
    study: Study,
    *,
    rtstruct: bool = True,
    seg: bool = False,
    force: bool = False,
) -> list[Path]:
    """Write ``rtstruct.dcm`` (and ``seg.dcm``) into ``out_dir`` for a study read from DICOM.

    Nothing is written when the study did not come from DICOM (``study.dicom`` is
    None) or when the lesion map is empty (an RTSTRUCT needs
    at least one ROI); the caller's report states the lesion count.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Output folder (created if needed).
    labels : (Z, Y, X) int ndarray
        Lesion map on ``study.geometry``.
    study : Study
        Read from DICOM: its ``dicom`` source holds the PET headers to reference (no
        file is read again).
    rtstruct, seg : bool
        Which objects to write.
    force : bool
        Replace existing files.

    Returns
    -------
    list of Path
        The files written.
    """
    reference = study.dicom
    if reference is None or not (rtstruct or seg) or not np.any(labels):
        return []
    out_dir = Path(out_dir)
    written = []
    if rtstruct:
        written.append(
            write_rtstruct(
                out_dir / "rtstruct.dcm", labels, study.geometry, reference, force=force
            ).path
        )
    if seg:
        written.append(
            write_seg(out_dir / "seg.dcm", labels, study.geometry, reference, force=force).path
        )
    return written
