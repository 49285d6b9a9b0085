"""Transaxial tumour slices for the 2D methods: select, crop, downscale, scale.

Rainio et al. 2023: keep the transaxial slices whose mask has tumour, crop the fixed
square ``[184:312, 148:276]`` of the 512×512 slice, downscale 128×128 → 64×64 (PET:
mean of each 2×2 block; mask: positive if *any* of the four pixels is), then scale each
PET slice to [0, 1] on its own.

Crop specifications (strings, so the CLI and the library share them):

``rainio``
    The paper's preset, rows 184:312 and columns 148:276 (needs 512×512 slices).
``fixed:Y0:Y1:X0:X1``
    Any fixed box, in pixel indices (half-open, like Python slices).
``bbox:SIZE``
    A SIZE×SIZE box centred on the centre of the tumour's in-plane bounding box
    (taken over all the study's tumour slices, so every slice of a study uses the
    same box). Parts of the box outside the image are padded with 0.
``centre:Y:X:SIZE``
    A SIZE×SIZE box centred on pixel (Y, X); padded with 0 outside the image.

The box side must be a whole multiple of the output ``size``; the ratio is the
block size of the downscaling (1 = no downscaling).

Arrays follow petseg's convention: volumes are ``(Z, Y, X)``, a slice is ``(Y, X)``,
stacks of slices are ``(N, size, size)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CROP_PRESETS",
    "RAINIO_BOX",
    "SLICE_SIZE",
    "SliceSet",
    "block_any",
    "block_mean",
    "build_slice_set",
    "crop_window",
    "extract_box",
    "scale_unit",
    "slices_from_volume",
    "tumour_slice_indices",
]

#: The paper's crop of a 512×512 slice: rows 184:312, columns 148:276.
RAINIO_BOX = (184, 312, 148, 276)
CROP_PRESETS = ("rainio", "fixed:Y0:Y1:X0:X1", "bbox:SIZE", "centre:Y:X:SIZE")
#: Side of the output slices in pixels (the paper's 64 × 64).
SLICE_SIZE = 64


@dataclass
class SliceSet:
    """Tumour slices of many patients, ready for the 2D networks.

    Attributes
    ----------
    images : (N, S, S) float32 ndarray
        PET slices scaled to [0, 1] one by one.
    masks : (N, S, S) bool ndarray
        Ground truth.
    patient_ids : (N,) str ndarray
        Patient of each slice.
    slice_index : (N,) int ndarray
        Index ``k`` of each slice in its study's ``(Z, Y, X)`` volume.
    windows : (N, 4) int ndarray
        Crop box ``(y0, y1, x0, x1)`` of each slice in its study's pixel grid.
    suv_range : (N, 2) float32 ndarray
        Minimum and maximum of each downscaled slice before scaling (SUV g/mL when the
        input was SUV), so a [0, 1] threshold can be mapped back to SUV.
    meta : dict
        JSON-ready description (crop, size, source dataset, petseg version).
    """

    images: NDArray[np.float32]
    masks: NDArray[np.bool_]
    patient_ids: NDArray[np.str_]
    slice_index: NDArray[np.int64]
    windows: NDArray[np.int64]
    suv_range: NDArray[np.float32]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 3 or self.images.shape[1] != self.images.shape[2]:
            raise ValueError(f"images must be (N, S, S), got shape {self.images.shape}")
        if self.masks.shape != self.images.shape:
            raise ValueError(
                f"masks shape {self.masks.shape} differs from images {self.images.shape}"
            )
        for name in ("patient_ids", "slice_index", "windows", "suv_range"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, expected {n}")

    @property
    def patients(self) -> list[str]:
        """Patient ids in order of first appearance."""
        return list(dict.fromkeys(self.patient_ids.tolist()))

    def subset(self, index: NDArray[np.int64] | NDArray[np.bool_]) -> SliceSet:
        """The slices selected by an integer or boolean index (same meta).

        Parameters
        ----------
        index : (m,) int64 ndarray or (n,) bool ndarray
            Rows to keep.

        Returns
        -------
        SliceSet
        """
        return SliceSet(
            self.images[index],
            self.masks[index],
            self.patient_ids[index],
            self.slice_index[index],
            self.windows[index],
            self.suv_range[index],
            dict(self.meta),
        )


def scale_unit(image: NDArray[np.floating]) -> NDArray[np.float32]:
    """Scale one image to [0, 1].

    ``(x - min) / (max - min)``. A flat image (max == min) has no contrast to scale and
    becomes all zeros, so no threshold in [0, 1) marks any pixel.

    Parameters
    ----------
    image : ndarray
        Any shape; SUV in g/mL for a PET slice.

    Returns
    -------
    float32 ndarray
        Same shape, values in [0, 1].
    """
    x = np.asarray(image, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 0 or not np.isfinite(hi - lo):
        return np.zeros(x.shape, dtype=np.float32)
    return ((x - lo) / (hi - lo)).astype(np.float32)


def _blocks(x: NDArray, factor: int) -> NDArray:
    """View of ``(..., Y, X)`` as ``(..., Y/f, f, X/f, f)``: reduce over axes -3 and -1."""
    if factor < 1:
        raise ValueError(f"downscaling factor must be a positive integer, got {factor}")
    if x.shape[-1] % factor or x.shape[-2] % factor:
        raise ValueError(f"image shape {x.shape} is not divisible by the block size {factor}")
    h, w = x.shape[-2] // factor, x.shape[-1] // factor
    return x.reshape(*x.shape[:-2], h, factor, w, factor)


def block_mean(image: NDArray[np.floating], factor: int = 2) -> NDArray[np.float32]:
    """Downscale the last two axes by the mean of each ``factor × factor`` block.

    Parameters
    ----------
    image : (..., Y, X) float ndarray
        Y and X divisible by ``factor``.
    factor : int
        Block side in pixels.

    Returns
    -------
    (..., Y / factor, X / factor) float32 ndarray
    """
    blocks = _blocks(np.asarray(image, dtype=np.float32), factor)
    return blocks.mean(axis=(-3, -1), dtype=np.float64).astype(np.float32)


def block_any(mask: NDArray[np.bool_], factor: int = 2) -> NDArray[np.bool_]:
    """Downscale the last two axes: a block is positive if any of its pixels is.

    Parameters
    ----------
    mask : (..., Y, X) bool ndarray
        Y and X multiples of ``factor``.
    factor : int
        Side of the blocks (pixels).

    Returns
    -------
    (..., Y / factor, X / factor) bool ndarray
    """
    return np.asarray(_blocks(np.asarray(mask, dtype=bool), factor).any(axis=(-3, -1)))


def tumour_slice_indices(mask: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Indices ``k`` of the transaxial slices of a ``(Z, Y, X)`` mask that hold tumour.

    Parameters
    ----------
    mask : (Z, Y, X) bool ndarray
        Tumour voxels.

    Returns
    -------
    (n,) int64 ndarray
        Increasing slice indices.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"mask must be a (Z, Y, X) volume, got {mask.ndim}D")
    return np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)).astype(np.int64)


def _parse_ints(spec: str, parts: list[str], count: int) -> list[int]:
    if len(parts) != count:
        raise ValueError(f"crop {spec!r}: expected {count} integers after the name")
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"crop {spec!r}: every field after the name must be an integer") from None


def crop_window(
    shape_yx: tuple[int, int], crop: str, mask: NDArray[np.bool_] | None = None
) -> tuple[int, int, int, int]:
    """Resolve a crop specification to a box ``(y0, y1, x0, x1)`` in pixel indices.

    Parameters
    ----------
    shape_yx : (Y, X)
        In-plane size of the study.
    crop : str
        One of :data:`CROP_PRESETS` (see the module docstring).
    mask : (Z, Y, X) bool ndarray, optional
        Needed by ``bbox:SIZE``.

    Returns
    -------
    (4,) tuple of int
        ``(y0, y1, x0, x1)``. The box may extend past the image (``bbox``/``centre``);
        :func:`extract_box` pads.
    """
    name, *parts = crop.strip().split(":")
    if name == "rainio":
        _parse_ints(crop, parts, 0)
        box = RAINIO_BOX
        if shape_yx != (512, 512):
            raise ValueError(
                f"crop 'rainio' is the paper's box of a 512x512 slice; this study's slices "
                f"are {shape_yx[0]}x{shape_yx[1]}: use 'bbox:SIZE' or 'fixed:Y0:Y1:X0:X1'"
            )
        return box
    if name == "fixed":
        y0, y1, x0, x1 = _parse_ints(crop, parts, 4)
        if not (0 <= y0 < y1 <= shape_yx[0] and 0 <= x0 < x1 <= shape_yx[1]):
            raise ValueError(f"crop {crop!r} does not fit inside slices of size {shape_yx}")
        if y1 - y0 != x1 - x0:
            raise ValueError(f"crop {crop!r} must be square, got {y1 - y0}x{x1 - x0}")
        return (y0, y1, x0, x1)
    if name in ("bbox", "centre"):
        if name == "bbox":
            (side,) = _parse_ints(crop, parts, 1)
            if mask is None or not np.any(mask):
                raise ValueError(f"crop {crop!r} centres on the tumour but the mask is empty")
            ys = np.flatnonzero(np.any(mask, axis=(0, 2)))
            xs = np.flatnonzero(np.any(mask, axis=(0, 1)))
            cy, cx = (ys[0] + ys[-1] + 1) / 2.0, (xs[0] + xs[-1] + 1) / 2.0
        else:
            py, px, side = _parse_ints(crop, parts, 3)
            cy, cx = py + 0.5, px + 0.5
        if side < 1:
            raise ValueError(f"crop {crop!r}: SIZE must be positive")
        y0 = int(np.floor(cy - side / 2.0))
        x0 = int(np.floor(cx - side / 2.0))
        return (y0, y0 + side, x0, x0 + side)
    raise ValueError(f"unknown crop {crop!r}; choose one of {', '.join(CROP_PRESETS)}")


def extract_box(
    volume: NDArray, window: tuple[int, int, int, int], pad_value: float = 0
) -> NDArray:
    """Cut ``[..., y0:y1, x0:x1]`` out of the last two axes, padding outside the image.

    Parameters
    ----------
    volume : (..., Y, X) ndarray
        Image or mask.
    window : (4,) tuple of int
        ``(y0, y1, x0, x1)`` pixel indices; may extend past the image.
    pad_value : float
        Value of the pixels outside the image.

    Returns
    -------
    (..., y1 - y0, x1 - x0) ndarray
        Of ``volume``'s dtype.
    """
    y0, y1, x0, x1 = window
    h, w = volume.shape[-2:]
    out = np.full((*volume.shape[:-2], y1 - y0, x1 - x0), pad_value, dtype=volume.dtype)
    sy0, sy1, sx0, sx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if sy0 < sy1 and sx0 < sx1:
        out[..., sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = volume[..., sy0:sy1, sx0:sx1]
    return out


def slices_from_volume(
    pet: NDArray[np.floating],
    mask: NDArray[np.bool_],
    *,
    crop: str,
    size: int = SLICE_SIZE,
) -> tuple[
    NDArray[np.float32],
    NDArray[np.bool_],
    NDArray[np.int64],
    tuple[int, int, int, int],
    NDArray[np.float32],
]:
    """Tumour slices of one study, cropped, downscaled and scaled.

    Parameters
    ----------
    pet : (Z, Y, X) float ndarray
        PET (SUV g/mL, or any unit: each slice is rescaled to [0, 1]).
    mask : (Z, Y, X) bool ndarray
        Ground-truth tumour.
    crop : str
        Crop specification (module docstring).
    size : int
        Output side in pixels; the crop side must be a multiple of it.

    Returns
    -------
    images : (n, size, size) float32 ndarray
        The slices, each scaled to [0, 1].
    masks : (n, size, size) bool ndarray
    slice_index : (n,) int64 ndarray
        The ``k`` of each slice.
    window : (4,) tuple of int
        ``(y0, y1, x0, x1)``: the crop box in the study's pixels.
    suv_range : (n, 2) float32 ndarray
        Minimum and maximum of each downscaled slice before scaling.
    """
    pet = np.asarray(pet, dtype=np.float32)
    mask = np.asarray(mask).astype(bool, copy=False)
    if pet.shape != mask.shape or pet.ndim != 3:
        raise ValueError(
            f"PET and mask must be (Z, Y, X) volumes of one shape, got {pet.shape} and {mask.shape}"
        )
    window = crop_window((pet.shape[1], pet.shape[2]), crop, mask)
    side = window[1] - window[0]
    if side % size:
        raise ValueError(
            f"crop box side {side} px is not a multiple of the output size {size}; "
            "choose a box of size*factor pixels"
        )
    factor = side // size
    ks = tumour_slice_indices(mask)
    lost = int(mask.sum()) - int(extract_box(mask[ks], window, False).sum())
    if lost:
        raise ValueError(
            f"crop {crop!r} (box {window}) leaves {lost} tumour voxels outside; use a larger box"
        )
    small_pet = block_mean(extract_box(pet[ks], window, 0.0), factor)
    small_mask = block_any(extract_box(mask[ks], window, False), factor)
    ranges = np.stack([small_pet.min(axis=(1, 2)), small_pet.max(axis=(1, 2))], axis=1)
    images = np.stack([scale_unit(s) for s in small_pet]) if len(ks) else small_pet
    return images.astype(np.float32), small_mask, ks, window, ranges.astype(np.float32)


def build_slice_set(
    cases: Iterable[tuple[str, NDArray[np.floating], NDArray[np.bool_]]],
    *,
    crop: str,
    size: int = SLICE_SIZE,
    meta: dict[str, Any] | None = None,
) -> SliceSet:
    """Tumour slices of many studies, in the order given, patient id kept per slice.

    Parameters
    ----------
    cases : iterable of (str, (Z, Y, X) float ndarray, (Z, Y, X) bool ndarray)
        ``(patient_id, pet, mask)`` per study; PET in SUV (g/mL).
    crop : str
        Crop specification (:func:`crop_window`).
    size : int
        Side of the square slices in pixels (:func:`slices_from_volume`).
    meta : dict, optional
        Extra JSON-ready description stored in ``SliceSet.meta``.

    Returns
    -------
    SliceSet
        The tumour slices of every study, in the order given.
    """
    if not re.fullmatch(r"[a-z]+(:-?\d+)*", crop.strip()):
        raise ValueError(f"unknown crop {crop!r}; choose one of {', '.join(CROP_PRESETS)}")
    parts: list[tuple] = []
    for pid, pet, mask in cases:
        try:
            parts.append((pid, *slices_from_volume(pet, mask, crop=crop, size=size)))
        except ValueError as err:
            raise ValueError(f"patient {pid}: {err}") from None
    if not parts or sum(len(p[3]) for p in parts) == 0:
        raise ValueError("no tumour slices: every mask given is empty")
    from petseg import __version__

    return SliceSet(
        images=np.concatenate([p[1] for p in parts]),
        masks=np.concatenate([p[2] for p in parts]),
        patient_ids=np.concatenate([np.full(len(p[3]), p[0]) for p in parts]).astype(str),
        slice_index=np.concatenate([p[3] for p in parts]).astype(np.int64),
        windows=np.concatenate([np.tile(p[4], (len(p[3]), 1)) for p in parts]).astype(np.int64),
        suv_range=np.concatenate([p[5] for p in parts]),
        meta={"crop": crop, "size": size, "petseg_version": __version__, **(meta or {})},
    )
