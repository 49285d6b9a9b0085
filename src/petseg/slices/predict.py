"""Apply trained slice networks to new slices or, slice by slice, to a 3D study.

With the models of several folds, the folds are averaged: the U-Net outputs are
averaged, and so are the thresholds (each fold's constant threshold for method 1, each
fold's predicted threshold for methods 2 and 3, the latter computed on that fold's own
U-Net output).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.slices.build import SLICE_SIZE, block_mean, crop_window, extract_box, scale_unit

__all__ = ["PREDICT_METHODS", "predict_slices", "predict_volume"]

PREDICT_METHODS = ("method1", "method2", "method3")


def predict_slices(
    models: list[dict[str, Any]],
    images: NDArray[np.floating],
    method: str = "method2",
    *,
    unet_loss: str = "clipped_bce",
    precision: str = "bf16",
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Binary masks of ``(N, 64, 64)`` slices scaled to [0, 1].

    Parameters
    ----------
    models : list of dict
        One trained fold each (:func:`petseg.slices.store.load_models`): "unet",
        "cnn_pet", "cnn_unet" and "constant_threshold".
    images : (N, 64, 64) float ndarray
        Slices scaled to [0, 1].
    method : {"method1", "method2", "method3"}
        U-Net with the constant threshold; threshold CNN on the PET; threshold CNN on
        the U-Net output.
    unet_loss, precision : str
        The U-Net's training loss and the forward pass's arithmetic
        (:func:`petseg.slices.training.predict_unet`).

    Returns
    -------
    masks : (N, 64, 64) bool ndarray
    thresholds : (N,) float64 ndarray
        The threshold applied to each slice.
    """
    from petseg.slices.training import predict_thresholds, predict_unet

    if method not in PREDICT_METHODS:
        raise ValueError(f"method must be one of {PREDICT_METHODS}, got {method!r}")
    if not models:
        raise ValueError("no trained models given")
    images = np.asarray(images, dtype=np.float32)
    if method == "method2":
        thr = np.mean([predict_thresholds(m["cnn_pet"], images, precision) for m in models], axis=0)
        return images > thr[:, None, None], thr
    outputs = [predict_unet(m["unet"], images, unet_loss, precision) for m in models]
    if method == "method1":
        thr = np.full(len(images), np.mean([m["constant_threshold"] for m in models]))
    else:
        thr = np.mean(
            [
                predict_thresholds(m["cnn_unet"], o, precision)
                for m, o in zip(models, outputs, strict=True)
            ],
            axis=0,
        )
    return np.mean(outputs, axis=0) > thr[:, None, None], thr


def predict_volume(
    pet: NDArray[np.floating],
    models: list[dict[str, Any]],
    *,
    crop: str,
    size: int = SLICE_SIZE,
    method: str = "method2",
    slice_indices: NDArray[np.int64] | None = None,
    unet_loss: str = "clipped_bce",
    precision: str = "bf16",
) -> NDArray[np.bool_]:
    """Segment a ``(Z, Y, X)`` PET slice by slice; return a bool mask on the study grid.

    Parameters
    ----------
    pet : (Z, Y, X) float ndarray
        SUV in g/mL.
    models : list of dict
        Trained folds (:func:`petseg.slices.store.load_models`).
    crop : str
        ``rainio``, ``fixed:…`` or ``centre:…`` (``bbox`` needs a truth mask); the box is
        cut from every slice, downscaled to ``size`` and scaled to [0, 1].
    size : int
        Side of the networks' input in pixels; the box side must be a multiple of it.
    method : {"method1", "method2", "method3"}
        See :func:`predict_slices`.
    slice_indices : (n,) int ndarray, optional
        Slices to segment (default: all). The paper's networks only ever saw tumour
        slices; on slices without tumour they will still mark the hottest pixels.
    unet_loss, precision : str
        As for :func:`predict_slices`.

    Returns
    -------
    (Z, Y, X) bool ndarray
        Each predicted pixel of the ``size`` grid covers its ``factor × factor`` block of
        the box, clipped to the image.
    """
    pet = np.asarray(pet, dtype=np.float32)
    if pet.ndim != 3:
        raise ValueError(f"PET must be a (Z, Y, X) volume, got {pet.ndim}D")
    if crop.startswith("bbox"):
        raise ValueError("crop 'bbox:SIZE' needs the tumour; give 'centre:Y:X:SIZE' or 'fixed:…'")
    window = crop_window((pet.shape[1], pet.shape[2]), crop)
    side = window[1] - window[0]
    if side % size:
        raise ValueError(f"crop box side {side} px is not a multiple of the output size {size}")
    factor = side // size
    ks = np.arange(pet.shape[0]) if slice_indices is None else np.asarray(slice_indices, np.int64)
    small = block_mean(extract_box(pet[ks], window, 0.0), factor)
    images = np.stack([scale_unit(s) for s in small])
    masks, _ = predict_slices(models, images, method, unet_loss=unet_loss, precision=precision)
    big = np.repeat(np.repeat(masks, factor, axis=1), factor, axis=2)
    out = np.zeros(pet.shape, dtype=bool)
    y0, y1, x0, x1 = window
    h, w = pet.shape[1:]
    sy0, sy1, sx0, sx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    out[ks, sy0:sy1, sx0:sx1] = big[:, sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0]
    return out
