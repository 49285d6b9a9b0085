"""Hand-computed cases for lesion labelling, minimum volume and quantification."""

import numpy as np
import pytest
from scipy import ndimage

from petseg.lesions import (
    as_label_map,
    label_components,
    min_voxels_for_volume,
    patient_stats,
    quantify_lesions,
    relabel_sequential,
    remove_labels,
    remove_small_components,
    suv_peak,
)
from petseg.study import Geometry


def corner_pair() -> np.ndarray:
    mask = np.zeros((3, 3, 3), bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True  # touch at a corner only
    return mask


@pytest.mark.parametrize(("connectivity", "expected"), [(6, 2), (18, 2), (26, 1)])
def test_corner_touching_voxels_depend_on_connectivity(connectivity, expected):
    assert label_components(corner_pair(), connectivity).max() == expected


@pytest.mark.parametrize(("connectivity", "expected"), [(6, 2), (18, 1), (26, 1)])
def test_edge_touching_voxels_depend_on_connectivity(connectivity, expected):
    mask = np.zeros((3, 3, 3), bool)
    mask[0, 0, 0] = mask[0, 1, 1] = True  # share an edge
    assert label_components(mask, connectivity).max() == expected


def test_bad_connectivity_names_choices():
    with pytest.raises(ValueError, match=r"\(6, 18, 26\)"):
        label_components(corner_pair(), 8)


def test_labels_match_scipy_count():
    rng = np.random.default_rng(0)
    mask = rng.random((20, 20, 20)) > 0.8
    ours = label_components(mask, 6)
    _, n = ndimage.label(mask)  # scipy's default structure is 6-connectivity
    assert ours.max() == n


def test_min_voxels_carlsen_grid():
    # Carlsen et al.: 2x2x3 mm voxels = 0.012 mL; 0.1 mL / 0.012 mL = 8.33 -> 9 voxels ("< 9 voxels")
    assert min_voxels_for_volume(0.1, 0.012) == 9
    # exact multiple: 0.1 mL of 4 mm^3 voxels = 0.064 mL each -> 1.5625 -> 2
    assert min_voxels_for_volume(0.1, 0.064) == 2
    assert min_voxels_for_volume(0.1, 0.05) == 2  # exactly 2 voxels reach 0.1 mL


def test_remove_small_components_keeps_exact_threshold():
    labels = np.zeros((1, 1, 20), np.int32)
    labels[0, 0, 0:2] = 1  # 2 voxels x 0.05 mL = 0.1 mL: kept (not < 0.1)
    labels[0, 0, 5:6] = 2  # 0.05 mL: removed
    labels[0, 0, 10:15] = 3
    out = remove_small_components(labels, voxel_volume_ml=0.05, min_volume_ml=0.1)
    assert out[0, 0, :2].tolist() == [1, 1]
    assert out[0, 0, 5] == 0
    assert out[0, 0, 10] == 2  # renumbered
    assert out.max() == 2


def test_remove_labels_and_unknown_label():
    labels = np.array([[[0, 1, 2, 3]]], np.int32)
    assert remove_labels(labels, [2]).tolist() == [[[0, 1, 0, 3]]]
    with pytest.raises(ValueError, match=r"\[7\] not in the lesion map"):
        remove_labels(labels, [7])


def test_relabel_sequential():
    labels = np.array([[[0, 4, 4, 9]]], np.int32)
    assert relabel_sequential(labels).tolist() == [[[0, 1, 1, 2]]]


def test_quantify_hand_computed():
    geometry = Geometry.from_spacing((2, 2, 4), (3.0, 2.0, 2.0), origin=(10.0, 20.0, 30.0))
    suv = np.zeros((2, 2, 4), np.float32)
    labels = np.zeros((2, 2, 4), np.int32)
    labels[0, 0, 0:2] = 1
    suv[0, 0, 0:2] = [2.0, 4.0]
    labels[1, 1, 3] = 2
    suv[1, 1, 3] = 10.0
    lesions = quantify_lesions(suv, labels, geometry)
    first, second = lesions
    # voxel = 3*2*2 mm^3 = 12 mm^3 = 0.012 mL
    assert first.voxels == 2 and first.volume_ml == pytest.approx(0.024)
    assert first.suv_max == 4.0 and first.suv_mean == pytest.approx(3.0)
    assert first.tlg_g == pytest.approx(3.0 * 0.024)
    # centroid index (0, 0, 0.5) -> x = 10 + 0.5*2, y = 20, z = 30
    assert (first.centroid_x_mm, first.centroid_y_mm, first.centroid_z_mm) == pytest.approx(
        (11.0, 20.0, 30.0)
    )
    # index (1, 1, 3) -> x = 10 + 6, y = 22, z = 33
    assert (second.centroid_x_mm, second.centroid_y_mm, second.centroid_z_mm) == pytest.approx(
        (16.0, 22.0, 33.0)
    )
    patient = patient_stats(lesions)
    assert patient.lesion_count == 2
    assert patient.total_tumour_volume_ml == pytest.approx(0.036)
    assert patient.lowest_lesion_suv_mean == pytest.approx(3.0)
    assert patient.highest_suv_max == 10.0
    assert patient.total_tlg_g == pytest.approx(0.072 + 0.12)


def test_patient_stats_without_lesions_reports_none():
    stats = patient_stats([])
    assert stats.lesion_count == 0
    assert stats.to_dict()["lowest_lesion_suv_mean"] is None


def test_suv_peak_uniform_region_equals_value():
    # In a uniform 8 SUV block much larger than the 1 mL sphere, SUVpeak = 8.
    suv = np.zeros((30, 30, 30), np.float32)
    suv[5:25, 5:25, 5:25] = 8.0
    labels = (suv > 0).astype(np.int32)
    peak = suv_peak(suv, labels, (2.0, 2.0, 2.0))
    assert peak[1] == pytest.approx(8.0)


def test_suv_peak_single_hot_voxel_is_diluted():
    # A single 100 SUV voxel in 0 background: the 1 mL sphere (radius 6.2 mm) at 2 mm voxels
    # holds N voxels, so the peak is 100/N; N counted independently here.
    suv = np.zeros((15, 15, 15), np.float32)
    suv[7, 7, 7] = 100.0
    labels = np.zeros_like(suv, dtype=np.int32)
    labels[7, 7, 7] = 1
    radius = (3 * 1000 / (4 * np.pi)) ** (1 / 3)
    g = np.arange(-3, 4) * 2.0
    n = int(
        ((g[:, None, None] ** 2 + g[None, :, None] ** 2 + g[None, None, :] ** 2) <= radius**2).sum()
    )
    assert suv_peak(suv, labels, (2.0, 2.0, 2.0))[1] == pytest.approx(100.0 / n, rel=1e-5)


def test_as_label_map_accepts_whole_numbers_and_refuses_the_rest():
    whole = np.array([[[0.0, 1.0, 2.0]]], dtype=np.float32)
    out = as_label_map(whole, "a.nii.gz")
    assert out.dtype == np.int32 and out.tolist() == [[[0, 1, 2]]]
    assert as_label_map(np.array([[[True, False]]]), "m").tolist() == [[[1, 0]]]
    for values, match in (
        (np.array([[[0.0, 0.5]]]), "non-integer values"),
        (np.array([[[0.0, np.nan]]]), "non-integer values"),
        (np.array([[[0, -1]]]), "labels from -1 to 0"),
        (np.array([[[0, 2**40]]], dtype=np.int64), r"2\*\*31 - 1"),
    ):
        with pytest.raises(ValueError, match=match) as info:
            as_label_map(values, "pred/case7.nii.gz")
        assert "pred/case7.nii.gz" in str(info.value)


@pytest.mark.parametrize("volume", [float("nan"), float("inf"), -0.1])
def test_min_voxels_refuses_volumes_that_would_switch_the_filter_off(volume):
    with pytest.raises(ValueError, match="finite volume >= 0 mL"):
        min_voxels_for_volume(volume, 0.064)
    assert min_voxels_for_volume(0.0, 0.064) == 0
