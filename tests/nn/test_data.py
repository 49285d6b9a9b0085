"""Patch sampling: lesion-centred draws per voxel and per lesion."""

from __future__ import annotations

import numpy as np
import pytest

from petseg.nn.data import label_lesions, sample_patch


def _two_lesions() -> np.ndarray:
    """A 27-voxel lesion and a 1-voxel lesion in a 20³ label."""
    label = np.zeros((20, 20, 20), dtype=np.uint8)
    label[2:5, 2:5, 2:5] = 1
    label[15, 15, 15] = 1
    return label


def _small_lesion_share(sampling: str, draws: int = 400) -> float:
    lesions = label_lesions(_two_lesions())
    image = np.zeros((1, 20, 20, 20), dtype=np.float32)
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(draws):
        _, patch = sample_patch(image, lesions, (3, 3, 3), rng, foreground=True, sampling=sampling)
        hits += int(patch[1, 1, 1] == 1 and patch.sum() == 1)  # centred on the 1-voxel lesion
    return hits / draws


def test_label_lesions_numbers_connected_lesions():
    lesions = label_lesions(_two_lesions())
    assert lesions.max() == 2 and np.bincount(lesions.ravel())[1:].tolist() == [27, 1]


def test_voxel_sampling_centres_small_lesions_by_volume_lesion_sampling_equally():
    # Per voxel: the 1-voxel lesion is centred 1/28 of the time; per lesion: 1/2.
    assert _small_lesion_share("voxel") == pytest.approx(1 / 28, abs=0.03)
    assert _small_lesion_share("lesion") == pytest.approx(1 / 2, abs=0.07)


def test_sampled_label_is_binary_and_sampling_is_checked():
    lesions = label_lesions(_two_lesions())
    image = np.zeros((1, 20, 20, 20), dtype=np.float32)
    _, patch = sample_patch(
        image, lesions, (20, 20, 20), np.random.default_rng(1), foreground=False
    )
    assert patch.dtype == np.uint8 and set(np.unique(patch)) == {0, 1} and patch.sum() == 28
    with pytest.raises(ValueError, match="sampling"):
        sample_patch(
            image, lesions, (3, 3, 3), np.random.default_rng(1), foreground=True, sampling="size"
        )
