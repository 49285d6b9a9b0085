"""Training data: dataset cases, resampling, normalisation, patch sampling, augmentation.

A dataset follows ``docs/dataset-layout.md``: case folders with ``pet.nii.gz`` (SUV g/mL),
``ct.nii.gz`` (HU on the PET grid) and ``lesions.nii.gz`` (labels, 0 background). Files
are read through :mod:`petseg.io.nifti`; everything else here works on arrays.

Sampling follows nnU-Net: a share of the patches (``FOREGROUND_OVERSAMPLING``, at least
one per batch) is centred on a lesion, the rest anywhere in the image; a patch larger
than the image is zero-padded (after normalisation, so 0 is the dataset mean). The
lesion is chosen in one of two ways (``FOREGROUND_SAMPLING``): ``"voxel"``, a random
lesion voxel (nnU-Net's; a lesion is drawn in proportion to its volume, so a 0.5 mL
lesion next to a 50 mL one is almost never centred), or ``"lesion"``, a random connected
lesion first and then a random voxel of it (every lesion equally often, whatever its
size). Random draws come from a generator seeded by ``(seed, fold, epoch, iteration)``,
so an interrupted and resumed training draws exactly the same patches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.io.dataset import CT_FILES, LESIONS_FILE, PET_FILES
from petseg.nn.plan import Plan, normalise
from petseg.study import Geometry

__all__ = [
    "FOREGROUND_OVERSAMPLING",
    "FOREGROUND_SAMPLING",
    "Case",
    "augmentation",
    "label_lesions",
    "preprocess",
    "read_case",
    "resample",
    "sample_batch",
    "sample_patch",
    "validation_patches",
]

#: nnU-Net's ``oversample_foreground_percent``.
FOREGROUND_OVERSAMPLING = 0.33
#: How a foreground patch picks its lesion (see the module docstring).
FOREGROUND_SAMPLING = ("voxel", "lesion")
CHANNEL_FILES = {"pet": PET_FILES[0], "ct": CT_FILES[0]}


@dataclass
class Case:
    """One training case on its own grid.

    Attributes
    ----------
    case_id : str
        The case folder's name in the dataset.
    image : float32 ndarray
        (C, Z, Y, X) channels in physical units: PET in SUVbw g/mL, CT in HU (on the PET
        grid).
    label : uint8 ndarray
        (Z, Y, X) lesion mask on the same grid: 1 for lesion voxels, 0 elsewhere (all 0
        for a case read without labels).
    geometry : Geometry
        The PET grid of ``image`` and ``label`` (shape, spacing in mm, affine).
    """

    case_id: str
    image: NDArray[np.float32]
    label: NDArray[np.uint8]
    geometry: Geometry

    @property
    def negative(self) -> bool:
        """True for a negative control (no lesion voxel)."""
        return not bool(self.label.any())


def read_case(
    dataset: str | Path, case_id: str, channels: Sequence[str], *, labelled: bool = True
) -> Case:
    """Read one case's channels (and lesion labels) from a dataset folder.

    Parameters
    ----------
    dataset : str or Path
        The dataset folder (``docs/dataset-layout.md``).
    case_id : str
        The case folder's name.
    channels : sequence of str
        Channels to stack, in this order: ``"pet"`` (``pet.nii.gz``, SUVbw in g/mL) and
        ``"ct"`` (``ct.nii.gz``, HU on the PET grid).
    labelled : bool
        Read ``lesions.nii.gz`` (voxels > 0 become 1); False gives an all-zero label.

    Returns
    -------
    Case
        The case on its own (PET) grid.
    """
    from petseg.io.nifti import read_nifti

    folder = Path(dataset) / case_id
    arrays = []
    geometry: Geometry | None = None
    for name in channels:
        path = folder / CHANNEL_FILES[name]
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; the network plan needs {list(channels)}")
        array, grid = read_nifti(path)
        if geometry is None:
            geometry = grid
        elif not geometry.same_grid(grid):
            raise ValueError(f"{path} is not on the PET grid of {folder / 'pet.nii.gz'}")
        arrays.append(np.asarray(array, dtype=np.float32))
    assert geometry is not None
    if labelled:
        label, grid = read_nifti(folder / LESIONS_FILE)
        if not geometry.same_grid(grid):
            raise ValueError(f"{folder / LESIONS_FILE} is not on the PET grid")
        mask = (np.asarray(label) > 0).astype(np.uint8)
    else:
        mask = np.zeros(geometry.shape, dtype=np.uint8)
    return Case(case_id, np.stack(arrays), mask, geometry)


def target_shape(
    shape: Sequence[int], spacing: Sequence[float], target_spacing: Sequence[float]
) -> tuple[int, int, int]:
    """Shape covering the same extent (mm) at ``target_spacing``."""
    return tuple(  # type: ignore[return-value]
        max(round(n * s / t), 1) for n, s, t in zip(shape, spacing, target_spacing, strict=True)
    )


def resample(array: NDArray[np.floating], shape: Sequence[int]) -> NDArray[np.float32]:
    """Trilinear resampling of a (C, Z, Y, X) array to (C, *shape) (voxel centres aligned).

    Used in both directions (to the plan's spacing and back), so a probability map
    returns to the original grid with the same interpolation.

    Parameters
    ----------
    array : floating ndarray
        (C, Z, Y, X) image or probability map.
    shape : sequence of int
        (Z, Y, X) target shape, in voxels.

    Returns
    -------
    float32 ndarray
        (C, *shape) resampled array (``array`` itself, as float32, when the shape matches).
    """
    import torch

    shape = tuple(int(s) for s in shape)
    if tuple(array.shape[1:]) == shape:
        return np.asarray(array, dtype=np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    out = torch.nn.functional.interpolate(tensor, size=shape, mode="trilinear", align_corners=False)
    return out[0].numpy()


def preprocess(
    image: NDArray[np.floating],
    spacing: Sequence[float],
    plan: Plan,
    label: NDArray[np.integer] | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.uint8] | None]:
    """Resample a (C, Z, Y, X) image (and its label) to the plan's spacing and normalise it.

    Labels are resampled as a float mask and thresholded at 0.5.

    Parameters
    ----------
    image : floating ndarray
        (C, Z, Y, X) image in physical units (PET SUVbw in g/mL, CT in HU), channels in
        the order of ``plan.channels``.
    spacing : sequence of float
        (dz, dy, dx) voxel size of ``image``, in mm.
    plan : Plan
        Gives the target spacing (mm) and the per-channel normalisation.
    label : integer ndarray or None
        (Z, Y, X) binary lesion mask (0/1) on the grid of ``image``; None for no label.

    Returns
    -------
    tuple of (float32 ndarray, uint8 ndarray or None)
        The (C, z, y, x) normalised image at the target spacing and the (z, y, x) 0/1
        label on that grid (None when ``label`` is None).
    """
    shape = target_shape(image.shape[1:], spacing, plan.target_spacing)
    out = normalise(resample(image, shape), plan)
    lab = None
    if label is not None:
        lab = (resample(label[None].astype(np.float32), shape)[0] >= 0.5).astype(np.uint8)
    return out, lab


def _crop(array: NDArray[Any], start: Sequence[int], size: Sequence[int]) -> NDArray[Any]:
    """Crop ``size`` from the last three axes at ``start`` (may be negative/out of range), zero-padded."""
    spatial = array.shape[-3:]
    out = np.zeros((*array.shape[:-3], *size), dtype=array.dtype)
    src = []
    dst = []
    for st, sz, n in zip(start, size, spatial, strict=True):
        lo, hi = max(st, 0), min(st + sz, n)
        src.append(slice(lo, hi))
        dst.append(slice(lo - st, hi - st))
    out[(Ellipsis, *dst)] = array[(Ellipsis, *src)]  # type: ignore[index,arg-type]
    return out


def label_lesions(label: NDArray[np.integer]) -> NDArray[np.int32]:
    """Connected lesions (26-connectivity) of a (Z, Y, X) label, numbered 1..N, 0 background.

    Training keeps labels in this form so that :func:`sample_patch` can draw a lesion
    rather than a voxel; ``> 0`` gives the binary label back.

    Parameters
    ----------
    label : (Z, Y, X) integer ndarray
        Lesion voxels > 0.
    """
    from petseg.lesions import label_components

    return label_components(np.asarray(label) > 0)


def _lesion_centre(
    lesions: NDArray[np.integer], rng: np.random.Generator, how: str
) -> NDArray[np.int64]:
    """A lesion voxel: uniform over voxels (``"voxel"``) or over lesions, then voxels."""
    if how == "lesion":
        n = int(lesions.max())
        lesions = lesions == int(rng.integers(1, n + 1))
    voxels = np.argwhere(lesions > 0)
    return voxels[int(rng.integers(len(voxels)))]


def sample_patch(
    image: NDArray[np.float32],
    lesions: NDArray[np.integer],
    patch_size: Sequence[int],
    rng: np.random.Generator,
    *,
    foreground: bool,
    sampling: str = "voxel",
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """One (C, *patch) image patch and its binary (*patch) label.

    Parameters
    ----------
    image : (C, Z, Y, X) float32 ndarray, normalised
    lesions : (Z, Y, X) integer ndarray, lesions numbered 1..N (:func:`label_lesions`);
        with ``sampling="voxel"`` a binary label works as well
    patch_size : (z, y, x) in voxels
    rng : the generator of every draw
    foreground : centre the patch on a lesion (when the case has one); otherwise its
        position is uniform over the image
    sampling : ``"voxel"`` or ``"lesion"`` (``FOREGROUND_SAMPLING``, module docstring)
    """
    if sampling not in FOREGROUND_SAMPLING:
        raise ValueError(f"sampling must be one of {FOREGROUND_SAMPLING}, got {sampling!r}")
    spatial = lesions.shape
    if foreground and lesions.any():
        centre = _lesion_centre(lesions, rng, sampling)
        start = [int(c) - p // 2 for c, p in zip(centre, patch_size, strict=True)]
    else:
        start = [
            int(rng.integers(min(0, n - p), max(0, n - p) + 1))
            for n, p in zip(spatial, patch_size, strict=True)
        ]
    label = (_crop(lesions, start, patch_size) > 0).astype(np.uint8)
    return _crop(image, start, patch_size), label


def augmentation() -> Any:
    """nnU-Net-like spatial and intensity augmentation as a MONAI Compose on {image, label}.

    Rotation ±30° and scaling 0.7–1.4 (p 0.2), Gaussian noise (p 0.1), Gaussian blur
    (p 0.2), brightness ×0.75–1.25 (p 0.15), gamma 0.7–1.5 (p 0.3), mirroring per axis
    (p 0.5). Seed it per batch with ``set_random_state`` for reproducibility.
    """
    from monai import transforms as mt

    keys = ["image", "label"]
    return mt.Compose(
        [
            mt.RandAffined(
                keys,
                prob=0.2,
                rotate_range=(np.pi / 6,) * 3,
                scale_range=((-0.3, 0.4),) * 3,
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
            ),
            mt.RandGaussianNoised("image", prob=0.1, std=0.1),
            mt.RandGaussianSmoothd(
                "image", prob=0.2, sigma_x=(0.5, 1.0), sigma_y=(0.5, 1.0), sigma_z=(0.5, 1.0)
            ),
            mt.RandScaleIntensityd("image", factors=0.25, prob=0.15),
            mt.RandAdjustContrastd("image", prob=0.3, gamma=(0.7, 1.5)),
            mt.RandFlipd(keys, prob=0.5, spatial_axis=0),
            mt.RandFlipd(keys, prob=0.5, spatial_axis=1),
            mt.RandFlipd(keys, prob=0.5, spatial_axis=2),
        ]
    )


def sample_batch(
    cases: Sequence[tuple[NDArray[np.float32], NDArray[np.integer]]],
    plan: Plan,
    seed: Sequence[int],
    *,
    augment: Any | None = None,
    foreground: float = FOREGROUND_OVERSAMPLING,
    sampling: str = "voxel",
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """A training batch: (B, C, *patch) images and (B, 1, *patch) labels.

    Parameters
    ----------
    cases : preprocessed (image, lesions) pairs (:func:`label_lesions` or binary labels)
    plan : gives the patch size and batch size B
    seed : e.g. (seed, fold, epoch, iteration); fixes every draw
    augment : a MONAI transform on {image, label} (:func:`augmentation`), or None
    foreground : share of lesion-centred samples; the last ``round(B × foreground)``
        (at least one) are, as in nnU-Net
    sampling : how a lesion-centred sample picks its lesion (``FOREGROUND_SAMPLING``)
    """
    rng = np.random.default_rng(list(seed))
    batch = plan.batch_size
    n_fg = max(1, round(batch * foreground))
    images = []
    labels = []
    for b in range(batch):
        image, lesions = cases[int(rng.integers(len(cases)))]
        img, lab = sample_patch(
            image, lesions, plan.patch_size, rng, foreground=b >= batch - n_fg, sampling=sampling
        )
        if augment is not None:
            augment.set_random_state(seed=int(rng.integers(2**31)))
            out = augment({"image": img, "label": lab[None].astype(np.float32)})
            img = np.asarray(out["image"], dtype=np.float32)
            lab = (np.asarray(out["label"])[0] > 0.5).astype(np.uint8)
        images.append(img)
        labels.append(lab[None])
    return np.stack(images), np.stack(labels)


def validation_patches(
    cases: Sequence[tuple[NDArray[np.float32], NDArray[np.integer]]],
    plan: Plan,
    n_patches: int,
    seed: int,
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """A fixed set of validation patches (half lesion-centred), for the per-epoch Dice.

    Lesion-centred patches pick their lesion with ``sampling="lesion"`` when ``cases``
    hold numbered lesions, so small lesions count in the validation Dice too.

    Parameters
    ----------
    cases : sequence of tuple of (float32 ndarray, integer ndarray)
        Preprocessed validation cases: a (C, Z, Y, X) normalised image and its (Z, Y, X)
        lesions numbered 1..N (:func:`label_lesions`) or binary label; patch n comes from
        case ``n % len(cases)``.
    plan : Plan
        Gives the (z, y, x) patch size, in voxels.
    n_patches : int
        Number of patches N; patches 0, 2, 4, … are lesion-centred (when the case has a
        lesion).
    seed : int
        Seed of every draw (the generator is ``default_rng([seed, 999])``).

    Returns
    -------
    tuple of (float32 ndarray, uint8 ndarray)
        (N, C, *patch) image patches and (N, 1, *patch) 0/1 labels.
    """
    rng = np.random.default_rng([seed, 999])
    images = []
    labels = []
    for n in range(n_patches):
        image, label = cases[n % len(cases)]
        img, lab = sample_patch(
            image, label, plan.patch_size, rng, foreground=n % 2 == 0, sampling="lesion"
        )
        images.append(img)
        labels.append(lab[None])
    return np.stack(images), np.stack(labels)
