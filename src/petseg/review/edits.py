"""Edits of a lesion map as voxel differences, and the regions they change.

Edits are kept as voxel differences (flat indices into the C-ordered ``(Z, Y, X)``
array with the values before and after), so undo/redo costs memory proportional to the
edited voxels, not to the image. The functions here work on arrays; the session
(:mod:`petseg.review.session`) applies their results and keeps the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petseg.edit import add_lesion_by_seed
from petseg.review.errors import BadRequestError, UnprocessableError
from petseg.study import Geometry

__all__ = ["Change", "EditStep", "check_seed", "grow_region", "removed_box", "voxel_change"]

Box = tuple[slice, ...]


@dataclass(frozen=True)
class Change:
    """One edit as a voxel difference on the flattened ``(Z, Y, X)`` label map.

    Attributes
    ----------
    index : (N,) int64 ndarray
        Flat indices of the changed voxels.
    before : (N,) int32 ndarray
        Their labels before the edit.
    after : (N,) int32 ndarray
        Their labels after it.
    """

    index: NDArray[np.int64]
    before: NDArray[np.int32]
    after: NDArray[np.int32]


@dataclass
class EditStep:
    """One edit in a session's history: its record (as saved in ``report.json``) and change.

    Attributes
    ----------
    record : dict
        ``op`` (remove, add, restore), its arguments and the UTC time.
    change : Change
        The voxels it changed.
    """

    record: dict[str, Any]
    change: Change


def check_seed(seed: Any, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Validate a ``(k, j, i)`` voxel index (422 when outside the volume).

    Parameters
    ----------
    seed : any
        What the request sent; must be three integers.
    shape : (Z, Y, X) tuple of int
        Shape of the volume.

    Returns
    -------
    (k, j, i) tuple of int
    """
    if (
        not isinstance(seed, list | tuple)
        or len(seed) != 3
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seed)
    ):
        raise BadRequestError(f"seed must be three integer voxel indices [k, j, i], got {seed!r}")
    if any(not 0 <= s < n for s, n in zip(seed, shape, strict=True)):
        raise UnprocessableError(
            f"seed {list(seed)} lies outside the volume of shape (Z, Y, X) = {shape}"
        )
    return (seed[0], seed[1], seed[2])


def voxel_change(
    shape: tuple[int, ...], box: Box, old: NDArray[np.int32], new: NDArray[np.int32]
) -> Change:
    """The voxels of box ``box`` where ``new`` differs from ``old``, as a :class:`Change`.

    Parameters
    ----------
    shape : (Z, Y, X) tuple of int
        Shape of the whole label map.
    box : tuple of slice
        The region of the map that ``old`` and ``new`` cover.
    old, new : int32 ndarray
        Labels in ``box`` before and after the edit.

    Returns
    -------
    Change
        Flat indices into the whole map.
    """
    local = np.nonzero(old != new)
    index = np.ravel_multi_index(tuple(a + b.start for a, b in zip(local, box, strict=True)), shape)
    return Change(index=index.astype(np.int64), before=old[local], after=new[local])


def grow_region(
    labels: NDArray[np.int32],
    suv: NDArray[np.float32],
    geometry: Geometry,
    seed: tuple[int, int, int],
    *,
    method: str,
    value: float | None,
    reference: dict[str, Any] | None,
    connectivity: int,
) -> tuple[Box, NDArray[np.bool_]]:
    """The lesion :func:`petseg.edit.add_lesion_by_seed` grows from ``seed``, on a box.

    The library function runs on a box around the seed (±32 voxels, doubled until the
    grown region does not touch a cut face of the box, at most the whole image), which
    gives the same region as on the whole image.

    Parameters
    ----------
    labels : (Z, Y, X) int32 ndarray
        Current lesion map.
    suv : (Z, Y, X) float32 ndarray
        PET in SUVbw (g/mL).
    geometry : Geometry
        Grid of both (spacing in mm).
    seed : (k, j, i) tuple of int
        Voxel index of the seed.
    method : str
        One of :data:`petseg.edit.SEED_METHODS`.
    value : float or None
        The method's value (SUV in g/mL, or a fraction of SUVmax), None for its default.
    reference : dict or None
        The report's reference VOI statistics.
    connectivity : int
        6, 18 or 26.

    Returns
    -------
    box : tuple of slice
        The box the region was grown in.
    region : bool ndarray
        The new lesion's voxels within ``box``.
    """
    shape = labels.shape
    half = 32
    while True:
        box = tuple(
            slice(max(s - half, 0), min(s + half + 1, n)) for s, n in zip(seed, shape, strict=True)
        )
        old = labels[box]
        k, j, i = (s - b.start for s, b in zip(seed, box, strict=True))
        affine = geometry.affine.copy()
        affine[:3, 3] = geometry.index_to_patient(np.asarray([b.start for b in box], dtype=float))
        try:
            new, local_label = add_lesion_by_seed(
                old,
                suv[box],
                Geometry(affine, old.shape),
                (k, j, i),
                method=method,
                value=value,
                reference=reference,
                connectivity=connectivity,
            )
        except ValueError as err:
            raise UnprocessableError(str(err)) from err
        region = new == local_label
        cut = [(b.start > 0, b.stop < n) for b, n in zip(box, shape, strict=True)]
        touches = any(
            (low and region.take(0, axis=a).any()) or (high and region.take(-1, axis=a).any())
            for a, (low, high) in enumerate(cut)
        )
        if not touches or all(not low and not high for low, high in cut):
            return box, region
        half *= 2


def removed_box(removed: NDArray[np.int32], label: int) -> Box:
    """Bounding box of component ``label`` of ``removed.nii.gz`` (422 when absent).

    Parameters
    ----------
    removed : (Z, Y, X) int32 ndarray
        Components removed as physiological uptake, one label each.
    label : int
        Component label.

    Returns
    -------
    tuple of slice
    """
    boxes = ndimage.find_objects(removed, max_label=label)
    box = boxes[label - 1] if len(boxes) >= label else None
    if box is None:
        raise UnprocessableError(f"removed component {label} is not in removed.nii.gz")
    return box
