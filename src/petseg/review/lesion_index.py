"""The lesion table of a lesion map under review, kept up to date edit by edit.

Edits touch one lesion, so the table is kept per label and only the labels an edit
changes are measured again, with :func:`petseg.lesions.quantify_lesions` on a crop around
the lesion (padded so SUVpeak's 1 mL sphere sees the same voxels as on the whole image).
Whole-image passes (``np.unique`` over 34 M voxels) would cost seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petseg.lesions import LesionStats, quantify_lesions
from petseg.review.edits import Box, Change
from petseg.study import Geometry

__all__ = ["LesionIndex"]


@dataclass
class LesionIndex:
    """label -> (bounding box, :class:`~petseg.lesions.LesionStats`, SUVmax voxel) of a map.

    Parameters
    ----------
    suv : (Z, Y, X) float32 ndarray
        PET in SUVbw (g/mL).
    geometry : Geometry
        Grid of the PET and of the lesion maps indexed (spacing in mm).
    entries : dict
        label -> (bounding box, LesionStats, SUVmax voxel (k, j, i)); filled by :meth:`rebuild`.
    """

    suv: NDArray[np.float32]
    geometry: Geometry
    entries: dict[int, tuple[Box, LesionStats, tuple[int, int, int]]] = field(default_factory=dict)

    def rebuild(self, labels: NDArray[np.int32]) -> None:
        """Measure every lesion of ``labels`` ((Z, Y, X) int32, one label per lesion).

        Parameters
        ----------
        labels : (Z, Y, X) int32 ndarray
            The whole map.
        """
        self.entries = {}
        for label, box in enumerate(ndimage.find_objects(labels), start=1):
            if box is not None:
                self.measure(labels, label, box)

    def measure(self, labels: NDArray[np.int32], label: int, box: Box) -> None:
        """Measure lesion ``label`` of ``labels``, whose voxels all lie in ``box``.

        Parameters
        ----------
        labels : (Z, Y, X) int32 ndarray
            The current map.
        label : int
            The lesion.
        box : tuple of slice
            Its bounding box.
        """
        spacing = self.geometry.spacing
        margin = [int(np.ceil(7.0 / d)) + 1 for d in spacing]  # > SUVpeak radius 6.2 mm
        padded = tuple(
            slice(max(b.start - m, 0), min(b.stop + m, n))
            for b, m, n in zip(box, margin, labels.shape, strict=True)
        )
        start = [b.start for b in padded]
        sub_labels = np.where(labels[padded] == label, label, 0).astype(np.int32)
        sub_suv = self.suv[padded]
        affine = self.geometry.affine.copy()
        affine[:3, 3] = self.geometry.index_to_patient(np.asarray(start, dtype=float))
        sub_geometry = Geometry(affine, sub_labels.shape)
        (stats,) = quantify_lesions(sub_suv, sub_labels, sub_geometry)
        peak = ndimage.maximum_position(sub_suv, sub_labels, label)
        peak_kji = (int(peak[0] + start[0]), int(peak[1] + start[1]), int(peak[2] + start[2]))
        self.entries[label] = (box, stats, peak_kji)

    def update(self, labels: NDArray[np.int32], change: Change) -> None:
        """Measure again the lesions ``change`` (already applied to ``labels``) touched.

        Parameters
        ----------
        labels : (Z, Y, X) int32 ndarray
            The map after the edit.
        change : Change
            The edit.
        """
        touched = set(np.unique(change.before).tolist()) | set(np.unique(change.after).tolist())
        for label in sorted(touched - {0}):
            voxels = change.index[change.after == label]
            if voxels.size == 0:
                self.entries.pop(label, None)  # edits remove or add whole lesions
                continue
            kji = np.unravel_index(voxels, labels.shape)
            box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in kji)
            if label in self.entries:  # grown into an existing label: union of boxes
                old = self.entries[label][0]
                box = tuple(
                    slice(min(a.start, b.start), max(a.stop, b.stop))
                    for a, b in zip(old, box, strict=True)
                )
            self.measure(labels, label, box)

    def box(self, label: int) -> Box:
        """Bounding box of lesion ``label`` (it holds all of the lesion's voxels).

        Parameters
        ----------
        label : int
            A lesion of the map.

        Returns
        -------
        tuple of slice
        """
        return self.entries[label][0]

    def next_label(self) -> int:
        """The label a new lesion gets: ``max + 1`` over the whole map."""
        return max(self.entries, default=0) + 1

    def stats(self) -> list[LesionStats]:
        """The lesions' statistics in label order."""
        return [entry[1] for _, entry in sorted(self.entries.items())]

    def rows(self) -> list[dict[str, Any]]:
        """Per-lesion table: :class:`~petseg.lesions.LesionStats`' fields (volume mL, SUV
        g/mL, centroid LPS mm) and ``max_voxel_kji``, the voxel of the lesion's SUVmax."""
        return [
            {**stats.to_dict(), "max_voxel_kji": list(peak)}
            for _, (_, stats, peak) in sorted(self.entries.items())
        ]
