"""Dataset fingerprint and network plan (nnU-Net's planning rules, scaled to a compute budget).

The *fingerprint* summarises a training set: voxel spacings (mm), shapes and the
intensities of foreground (lesion) voxels per channel. The *plan* derives from it

- the target spacing: the median spacing per axis, never finer than the budget's
  ``min_spacing_mm`` (nnU-Net uses the median; CPUs need coarser grids);
- the patch size: the median case shape at the target spacing, shrunk along its longest
  axis (in mm) until it holds at most ``max_patch_voxels`` voxels;
- the network topology (nnU-Net's rule): an axis is pooled at a stage only while its
  feature map stays at least 4 voxels and its spacing is at most twice the finest one;
  3×3×3 kernels, 1 along an axis that is still more than twice as coarse; filters start at
  ``base_filters`` and double per stage up to ``max_filters``;
- per-channel normalisation: CT clipped to the 0.5–99.5 percentiles of the foreground
  voxels of the whole dataset and z-scored with their mean and SD (nnU-Net's CT scheme).
  PET (``PET_NORMALISATION``) is kept linear in SUV with *dataset-level* constants:
  clipped to [0, foreground 99.5 percentile] and divided by the dataset's mean lesion
  SUV, so lesions sit near 1 and background near 0.1–0.3. Not nnU-Net's default
  per-image z-score: SUV is a calibrated unit like HU, and a per-image z-score makes the
  scale of one patient depend on that patient's own tumour burden and body uptake (the
  argument of nnU-Net issue 2985). Not the CT rule either: clipping PET at the 0.5
  percentile of lesion SUV would flatten all normal tissue (liver, spleen) to one value,
  and the threshold-based ground truth is defined relative to liver uptake. The choice is
  written into every plan.

Plans are plain dataclasses, saved as JSON in the model folder (``plan.json``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.checks import did_you_mean

__all__ = [
    "BUDGETS",
    "PET_NORMALISATION",
    "PET_SCHEMES",
    "Budget",
    "ChannelNorm",
    "Fingerprint",
    "Plan",
    "fingerprint_cases",
    "make_plan",
    "normalise",
]

#: Foreground percentiles used for clipping (nnU-Net's CT normalisation).
CLIP_PERCENTILES = (0.5, 99.5)
#: Smallest feature map edge (voxels) at the bottom of the U-Net (nnU-Net's rule).
MIN_FEATURE_MAP = 4
#: Axes whose spacing exceeds this multiple of the finest one are not pooled yet.
ANISOTROPY_RATIO = 2.0
#: Foreground voxels sampled per case for the intensity statistics.
VOXELS_PER_CASE = 100_000

PET_NORMALISATION = "suv_over_dataset_lesion_mean"
"""PET scheme: clip SUV to [0, the dataset's foreground 99.5 percentile], divide by the
dataset's mean foreground SUV. See the module docstring for why."""
IMAGE_ZSCORE = "image_zscore"
"""nnU-Net's default scheme, kept for comparison (docs/network.md measures both): each
image z-scored with its own mean and SD."""
PET_SCHEMES = (PET_NORMALISATION, IMAGE_ZSCORE)


@dataclass(frozen=True)
class Budget:
    """Compute budget that bounds the plan.

    Attributes
    ----------
    name : str
        The budget's key in ``BUDGETS``, recorded as the plan's ``budget``.
    min_spacing_mm : float
        Finest target spacing allowed, in mm (0: the data's median spacing).
    max_patch_voxels : int
        Largest training patch, in voxels.
    base_filters, max_filters : int
        Filters of the first and of the widest stage.
    max_stages : int
        Number of resolution stages (pooling operations + 1).
    batch_size : int
        Training batch size (patches per iteration).
    max_inference_voxels : int
        Largest sliding window at inference, in voxels; the network is fully
        convolutional, so a window larger than the training patch covers a whole-body
        study with fewer overlapping windows (a 4–8× saving on CPU). 0 (or a cap below
        the patch) keeps the training patch.
    """

    name: str
    min_spacing_mm: float
    max_patch_voxels: int
    base_filters: int
    max_filters: int
    max_stages: int
    batch_size: int = 2
    max_inference_voxels: int = 0


#: ``cpu-small``: the shipped demo model (5-fold inference of a 4 mm whole body in < 60 s
#: on 2 cores); ``cpu``: a larger CPU net; ``nnunet``: nnU-Net 3d_fullres-like sizes for
#: a GPU (32–320 filters, up to 6 stages, 128³-class patches, data's own spacing).
BUDGETS: dict[str, Budget] = {
    "cpu-small": Budget("cpu-small", 4.0, 64**3, 8, 64, 4, 2, 144 * 112 * 112),
    "cpu": Budget("cpu", 4.0, 96**3, 16, 128, 5, 2, 144 * 112 * 112),
    "nnunet": Budget("nnunet", 0.0, 128 * 128 * 128, 32, 320, 6, 2, 0),
}


def get_budget(name: str) -> Budget:
    """Return the named budget, or raise a ValueError listing the choices."""
    if name not in BUDGETS:
        raise ValueError(
            f"unknown budget {name!r}{did_you_mean(name, BUDGETS)}; choose one of {sorted(BUDGETS)}"
        )
    return BUDGETS[name]


@dataclass(frozen=True)
class ChannelNorm:
    """Normalisation of one input channel: ``(clip(x, low, high) - mean) / std``.

    Attributes
    ----------
    channel : str
        The channel's name (``"pet"`` or ``"ct"``).
    scheme : str
        ``"ct_zscore_clipped"``, ``PET_NORMALISATION`` or ``IMAGE_ZSCORE`` (which takes
        the mean and SD of each clipped image instead of ``mean`` and ``std``).
    clip_low, clip_high : float
        Clipping bounds in the channel's unit (SUVbw g/mL for PET, HU for CT).
    mean : float
        Subtracted after clipping, in the channel's unit (0 for PET).
    std : float
        Divisor after subtracting ``mean``, in the channel's unit (for PET the dataset's
        mean lesion SUV, g/mL).
    """

    channel: str
    scheme: str
    clip_low: float
    clip_high: float
    mean: float
    std: float


@dataclass(frozen=True)
class Fingerprint:
    """Summary of a training set.

    Attributes
    ----------
    case_ids : tuple of str
        The cases, in the order of ``spacings`` and ``shapes``.
    spacings : tuple of tuple of float
        Per case, the (dz, dy, dx) voxel size in mm.
    shapes : tuple of tuple of int
        Per case, the (Z, Y, X) shape in voxels.
    channels : tuple of str
        The C channel names, in image order.
    intensity : dict of str to dict of str to float
        Channel name → statistics of its sampled foreground (lesion) voxels in the
        channel's unit (SUVbw g/mL, HU): ``mean``, ``std``, ``percentile_00_5``,
        ``percentile_99_5``, ``min``, ``max``.
    foreground_voxels : int
        Lesion voxels over all cases.
    negative_cases : int
        Cases without a lesion voxel.
    """

    case_ids: tuple[str, ...]
    spacings: tuple[tuple[float, float, float], ...]
    shapes: tuple[tuple[int, int, int], ...]
    channels: tuple[str, ...]
    intensity: dict[str, dict[str, float]]
    foreground_voxels: int
    negative_cases: int


def fingerprint_cases(
    case_ids: Sequence[str],
    images: Sequence[NDArray[np.floating]],
    labels: Sequence[NDArray[np.integer]],
    spacings: Sequence[tuple[float, float, float]],
    channels: Sequence[str],
    *,
    seed: int = 1234,
) -> Fingerprint:
    """Fingerprint a dataset from its arrays.

    Parameters
    ----------
    case_ids : sequence of str
        One id per case, named in errors.
    images : sequence of floating ndarray
        Per case, the (C, Z, Y, X) image: PET in SUVbw g/mL, CT in HU.
    labels : sequence of integer ndarray
        Per case, the (Z, Y, X) label on the image's grid; > 0 is foreground (lesion).
    spacings : sequence of tuple of float
        Per case, the (dz, dy, dx) voxel size in mm.
    channels : sequence of str
        The C channel names, e.g. ``("pet", "ct")``.
    seed : int
        Seed of the foreground voxel subsampling (at most ``VOXELS_PER_CASE`` voxels per
        case and channel), so the fingerprint is deterministic.

    Returns
    -------
    Fingerprint
        The dataset's summary.

    Raises
    ------
    ValueError
        If the dataset has no foreground voxel at all (nothing to learn).
    """
    rng = np.random.default_rng(seed)
    samples: list[list[NDArray[np.float64]]] = [[] for _ in channels]
    n_fg = 0
    n_neg = 0
    for case_id, image, label in zip(case_ids, images, labels, strict=True):
        if image.shape[0] != len(channels) or image.shape[1:] != label.shape:
            raise ValueError(
                f"case {case_id!r}: image shape {image.shape} does not match "
                f"{len(channels)} channels and label shape {label.shape}"
            )
        fg = label > 0
        count = int(fg.sum())
        n_fg += count
        if count == 0:
            n_neg += 1
            continue
        for c in range(len(channels)):
            values = image[c][fg].astype(np.float64)
            if values.size > VOXELS_PER_CASE:
                values = rng.choice(values, VOXELS_PER_CASE, replace=False)
            samples[c].append(values)
    if n_fg == 0:
        raise ValueError(
            "the training set has no lesion voxel (every lesions.nii.gz is empty); "
            "a network cannot be planned or trained without positive cases"
        )
    intensity = {}
    for name, parts in zip(channels, samples, strict=True):
        values = np.concatenate(parts)
        low, high = np.percentile(values, CLIP_PERCENTILES)
        intensity[name] = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "percentile_00_5": float(low),
            "percentile_99_5": float(high),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return Fingerprint(
        case_ids=tuple(case_ids),
        spacings=tuple(tuple(float(s) for s in sp) for sp in spacings),  # type: ignore[misc]
        shapes=tuple(tuple(int(s) for s in lb.shape) for lb in labels),  # type: ignore[misc]
        channels=tuple(channels),
        intensity=intensity,
        foreground_voxels=n_fg,
        negative_cases=n_neg,
    )


@dataclass(frozen=True)
class Plan:
    """Everything needed to build, train and apply the network; saved as ``plan.json``.

    Attributes
    ----------
    channels : tuple of str
        Input channel names, in order (e.g. ``("pet", "ct")``).
    target_spacing : tuple of float
        (dz, dy, dx) voxel size the network works at, in mm.
    patch_size : tuple of int
        (z, y, x) training patch at ``target_spacing``, in voxels (a multiple of the
        total stride).
    inference_patch_size : tuple of int
        (z, y, x) sliding window at inference, in voxels; at least ``patch_size``.
    kernel_sizes : tuple of tuple of int
        Per stage, the (z, y, x) convolution kernel (3, or 1 along an axis still more
        than twice as coarse as the finest).
    strides : tuple of tuple of int
        Per stage, the (z, y, x) downsampling stride: (1, 1, 1) first, then 2 along the
        pooled axes.
    filters : tuple of int
        Feature channels per stage.
    normalisation : tuple of ChannelNorm
        One per channel, in the order of ``channels``.
    batch_size : int
        Patches per training iteration.
    budget : str
        Name of the :class:`Budget` the plan was made with.
    median_shape : tuple of int
        (Z, Y, X) median case extent at ``target_spacing``, in voxels.
    fingerprint : dict of str to Any
        Summary of the dataset planned from: ``cases``, ``negative_cases``,
        ``foreground_voxels``, ``median_spacing_mm`` and ``intensity``.
    """

    channels: tuple[str, ...]
    target_spacing: tuple[float, float, float]
    patch_size: tuple[int, int, int]
    inference_patch_size: tuple[int, int, int]
    kernel_sizes: tuple[tuple[int, int, int], ...]
    strides: tuple[tuple[int, int, int], ...]
    filters: tuple[int, ...]
    normalisation: tuple[ChannelNorm, ...]
    batch_size: int
    budget: str
    median_shape: tuple[int, int, int]
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        """Rebuild a plan from ``to_dict`` output (e.g. read from plan.json)."""
        try:
            return cls(
                channels=tuple(data["channels"]),
                target_spacing=tuple(float(s) for s in data["target_spacing"]),  # type: ignore[arg-type]
                patch_size=tuple(int(s) for s in data["patch_size"]),  # type: ignore[arg-type]
                inference_patch_size=tuple(int(s) for s in data["inference_patch_size"]),  # type: ignore[arg-type]
                kernel_sizes=tuple(tuple(int(k) for k in ks) for ks in data["kernel_sizes"]),  # type: ignore[misc]
                strides=tuple(tuple(int(s) for s in st) for st in data["strides"]),  # type: ignore[misc]
                filters=tuple(int(f) for f in data["filters"]),
                normalisation=tuple(ChannelNorm(**n) for n in data["normalisation"]),
                batch_size=int(data["batch_size"]),
                budget=str(data["budget"]),
                median_shape=tuple(int(s) for s in data["median_shape"]),  # type: ignore[arg-type]
                fingerprint=dict(data.get("fingerprint", {})),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a petseg network plan (missing or bad field: {err})") from err


def _topology(
    patch: list[int], spacing: list[float], max_stages: int
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """nnU-Net-style pooling and kernel sizes for a patch; returns (kernels, strides)."""
    size = [float(p) for p in patch]
    current = list(spacing)
    kernels = []
    strides = [(1, 1, 1)]
    for _stage in range(max_stages):
        finest = min(current)
        kernels.append(tuple(3 if s <= ANISOTROPY_RATIO * finest else 1 for s in current))
        if len(strides) == max_stages:
            break
        pool = [
            size[a] / 2 >= MIN_FEATURE_MAP and current[a] <= ANISOTROPY_RATIO * finest
            for a in range(3)
        ]
        if not any(pool):
            break
        strides.append(tuple(2 if p else 1 for p in pool))  # type: ignore[arg-type]
        size = [s / 2 if p else s for s, p in zip(size, pool, strict=True)]
        current = [c * 2 if p else c for c, p in zip(current, pool, strict=True)]
    return kernels, strides  # type: ignore[return-value]


def make_plan(
    fingerprint: Fingerprint,
    budget: str | Budget = "cpu-small",
    *,
    pet_normalisation: str = PET_NORMALISATION,
) -> Plan:
    """Plan the network for a fingerprinted dataset within a compute budget.

    Deterministic: the same fingerprint and budget always give the same plan.

    Parameters
    ----------
    fingerprint : the dataset's :class:`Fingerprint`
    budget : a ``BUDGETS`` name or a :class:`Budget`
    pet_normalisation : ``PET_SCHEMES``: the dataset-level SUV scaling (default) or
        nnU-Net's per-image z-score
    """
    if pet_normalisation not in PET_SCHEMES:
        raise ValueError(
            f"pet_normalisation must be one of {PET_SCHEMES}, got {pet_normalisation!r}"
        )
    bud = get_budget(budget) if isinstance(budget, str) else budget
    spacings = np.asarray(fingerprint.spacings, dtype=np.float64)
    shapes = np.asarray(fingerprint.shapes, dtype=np.float64)
    median_spacing = np.median(spacings, axis=0)
    target = np.maximum(median_spacing, bud.min_spacing_mm)
    # Median extent in mm over the cases, expressed at the target spacing.
    median_shape = np.median(shapes * spacings, axis=0) / target
    patch = [max(round(s), 1) for s in median_shape]
    while math.prod(patch) > bud.max_patch_voxels:
        extents = [p * t for p, t in zip(patch, target, strict=True)]
        axis = int(np.argmax(extents))
        patch[axis] = max(int(patch[axis] * 0.9), 1)
    kernels, strides = _topology(patch, list(target), bud.max_stages)
    total = np.prod(np.asarray(strides), axis=0)
    patch = [max(int(p // f) * int(f), int(f)) for p, f in zip(patch, total, strict=True)]
    window = list(patch)
    if bud.max_inference_voxels > math.prod(patch):
        # The median case rounded up to the network's stride, shrunk along z to the cap.
        window = [int(math.ceil(s / f) * f) for s, f in zip(median_shape, total, strict=True)]
        window = [max(w, p) for w, p in zip(window, patch, strict=True)]
        while math.prod(window) > bud.max_inference_voxels:
            axis = int(np.argmax(window))
            step = int(total[axis])
            if window[axis] - step < patch[axis]:
                window = list(patch)
                break
            window[axis] -= step
    filters = tuple(min(bud.base_filters * 2**i, bud.max_filters) for i in range(len(strides)))
    norms = []
    for name in fingerprint.channels:
        stats = fingerprint.intensity[name]
        if name == "ct":
            norm = ChannelNorm(
                channel=name,
                scheme="ct_zscore_clipped",
                clip_low=stats["percentile_00_5"],
                clip_high=stats["percentile_99_5"],
                mean=stats["mean"],
                std=max(stats["std"], 1e-8),
            )
        else:
            norm = ChannelNorm(
                channel=name,
                scheme=pet_normalisation,
                clip_low=0.0,
                clip_high=stats["percentile_99_5"],
                mean=0.0,
                std=max(stats["mean"], 1e-8),
            )
        norms.append(norm)
    return Plan(
        channels=fingerprint.channels,
        target_spacing=tuple(float(t) for t in target),  # type: ignore[arg-type]
        patch_size=tuple(patch),
        inference_patch_size=tuple(window),
        kernel_sizes=tuple(kernels),
        strides=tuple(strides),
        filters=filters,
        normalisation=tuple(norms),
        batch_size=bud.batch_size,
        budget=bud.name,
        median_shape=tuple(round(s) for s in median_shape),
        fingerprint={
            "cases": len(fingerprint.case_ids),
            "negative_cases": fingerprint.negative_cases,
            "foreground_voxels": fingerprint.foreground_voxels,
            "median_spacing_mm": [float(s) for s in median_spacing],
            "intensity": fingerprint.intensity,
        },
    )


def normalise(image: NDArray[np.floating], plan: Plan) -> NDArray[np.float32]:
    """Apply the plan's per-channel normalisation to a (C, Z, Y, X) array (SUV, HU).

    ``(clip(x, low, high) - mean) / std`` with the plan's constants, or with the clipped
    image's own mean and SD for the ``IMAGE_ZSCORE`` scheme.

    Parameters
    ----------
    image : floating ndarray
        (C, Z, Y, X) image in physical units (PET SUVbw in g/mL, CT in HU), channels in
        the order of ``plan.channels``.
    plan : Plan
        Gives one :class:`ChannelNorm` per channel.

    Returns
    -------
    float32 ndarray
        (C, Z, Y, X) normalised image.
    """
    if image.shape[0] != len(plan.normalisation):
        raise ValueError(
            f"image has {image.shape[0]} channels, the plan expects {list(plan.channels)}"
        )
    out = np.empty(image.shape, dtype=np.float32)
    for c, norm in enumerate(plan.normalisation):
        clipped = np.clip(image[c], norm.clip_low, norm.clip_high)
        if norm.scheme == IMAGE_ZSCORE:
            out[c] = (clipped - clipped.mean()) / max(float(clipped.std()), 1e-8)
        else:
            out[c] = (clipped - norm.mean) / norm.std
    return out
