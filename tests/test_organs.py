"""Organ vocabulary, OrganMap and the physiological-uptake rule, on hand-made arrays."""

import numpy as np
import pytest

from petseg.organs import (
    MissingOrganError,
    OrganMap,
    expand_organ,
    organ_map_from_labels,
    organ_map_on_grid,
    remove_organ_uptake,
    remove_physiological_uptake,
    vocabulary_name,
)
from petseg.study import Geometry
from petseg.tracers import TracerChoice, get_tracer


def test_vocabulary_names_from_other_tools():
    assert vocabulary_name("Kidney Left") == "kidney_left"
    assert vocabulary_name("kidney-left") == "kidney_left"
    assert vocabulary_name("adrenals") == "adrenal_glands"  # petseg phantom
    assert vocabulary_name("bladder") == "urinary_bladder"
    assert vocabulary_name("lung_middle_lobe_right") == "lung_right"  # TotalSegmentator
    assert vocabulary_name("vertebrae_L1") is None
    assert {"parotid_gland_left", "submandibular_gland_right"} <= expand_organ("salivary_glands")
    with pytest.raises(ValueError, match="did you mean 'kidneys'"):
        expand_organ("kidnys")


def _line(values, dtype=np.int32):
    """A (1, 1, N) volume from a list: each test array is one row of voxels."""
    return np.array(values, dtype=dtype)[None, None, :]


def test_organ_map_masks_groups_and_sides():
    labels = _line([0, 1, 1, 2, 3, 3, 0], np.uint8)
    geometry = Geometry.from_spacing(labels.shape, (4.0, 4.0, 4.0))
    organ_map = OrganMap(labels, {1: "kidney_left", 2: "kidney_right", 3: "liver"}, geometry)
    assert organ_map.mask("kidneys")[0, 0].tolist() == [0, 1, 1, 1, 0, 0, 0]
    assert organ_map.mask("kidney_right", "liver")[0, 0].tolist() == [0, 0, 0, 1, 1, 1, 0]
    assert organ_map.voxel_counts() == {"kidney_left": 2, "kidney_right": 1, "liver": 2}
    assert organ_map.has("kidneys") and not organ_map.has("spleen")
    masks = organ_map.masks(["liver", "kidneys"])
    assert [int(m.sum()) for m in masks.values()] == [2, 3]
    with pytest.raises(MissingOrganError, match="has no spleen; it holds"):
        organ_map.masks(["liver", "spleen"])
    # a map that only knows "the kidneys" cannot give one side
    both = OrganMap((labels == 1).astype(np.uint8), {1: "kidneys"}, geometry)
    assert both.mask("kidneys").sum() == 2
    with pytest.raises(MissingOrganError, match="has no liver"):
        both.mask("liver")
    with pytest.raises(ValueError, match="unknown organ"):
        OrganMap(labels, {1: "kidney_lft"}, geometry)
    with pytest.raises(ValueError, match="more than one label"):
        OrganMap(labels, {1: "liver", 3: "liver"}, geometry)


def test_organ_map_from_labels_merges_maps_and_drops():
    # TotalSegmentator-like numbering: two lung lobes, a vertebra, an organ absent here
    labels = _line([0, 10, 11, 12, 27, 5, 5])
    geometry = Geometry.from_spacing(labels.shape, (3.0, 3.0, 3.0))
    names = {
        5: "liver",
        10: "lung_upper_lobe_left",
        11: "lung_lower_lobe_left",
        12: "lung_upper_lobe_right",
        27: "vertebrae_L5",
        1: "spleen",
    }
    organ_map = organ_map_from_labels(labels, geometry, names, source={"reader": "test"})
    assert organ_map.voxel_counts() == {"liver": 2, "lung_left": 2, "lung_right": 1}
    assert organ_map.source["unmapped_classes"] == ["vertebrae_L5"]
    assert organ_map.source["empty"] == ["spleen"]
    assert organ_map.mask("lungs").sum() == 3
    with pytest.raises(ValueError, match="whole numbers"):
        organ_map_from_labels(labels + 0.5, geometry, names)


def test_organ_map_on_a_coarser_grid_and_out_of_the_field():
    geometry = Geometry.from_spacing((1, 1, 8), (2.0, 2.0, 2.0))  # voxel centres x = 0..14
    organ_map = OrganMap(
        _line([1, 1, 1, 1, 0, 0, 2, 2], np.uint8), {1: "liver", 2: "spleen"}, geometry
    )
    coarse = Geometry.from_spacing((1, 1, 4), (4.0, 4.0, 4.0), origin=(1.0, 0.0, 0.0))
    # coarse centres x = 1, 5, 9, 13 → nearest fine voxels 0/1, 2/3, 4/5, 6/7
    on_grid = organ_map_on_grid(organ_map, coarse)
    assert on_grid.mask("liver")[0, 0].tolist() == [True, True, False, False]
    assert on_grid.mask("spleen")[0, 0].tolist() == [False, False, False, True]
    assert on_grid.source["resampled"]["method"].startswith("nearest neighbour")
    far = Geometry.from_spacing((1, 1, 4), (4.0, 4.0, 4.0), origin=(0.0, 0.0, 500.0))
    with pytest.raises(ValueError, match="does not overlap the PET"):
        organ_map_on_grid(organ_map, far)


def test_components_inside_an_organ_are_removed_and_those_touching_it_are_cut():
    #                  label 1 (3/4 in)  label 2 (2/5 in)    label 3 (outside)
    labels = _line([1, 1, 1, 1, 0, 2, 2, 2, 2, 2, 0, 3, 3])
    kidney = _line([1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    result = remove_physiological_uptake(labels, {"kidneys": kidney})
    assert result.labels[0, 0].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 2, 2]
    assert result.removed[0, 0].tolist() == [1, 1, 1, 1, 0, 2, 2, 0, 0, 0, 0, 0, 0]
    assert [(c.label, c.organ, c.rule) for c in result.components] == [
        (1, "kidneys", "inside"),
        (2, "kidneys", "cut"),
    ]
    assert [c.fraction_in_organs for c in result.components] == [0.75, 0.4]
    # exactly the fraction: removed whole (the rule is "at least")
    half = remove_physiological_uptake(labels, {"kidneys": kidney}, fraction=0.4)
    assert half.labels[0, 0].tolist() == [0] * 11 + [1, 1]
    # what is left of a cut component below the minimum volume goes with the cut;
    # a component the organs do not touch keeps its size whatever it is
    small = remove_physiological_uptake(labels, {"kidneys": kidney}, min_voxels=4)
    assert small.labels[0, 0].tolist() == [0] * 11 + [1, 1]
    assert small.removed[0, 0].tolist() == [1, 1, 1, 1, 0, 2, 2, 2, 2, 2, 0, 0, 0]


def test_a_cut_that_splits_a_lesion_leaves_two_lesions_and_the_first_organ_names_overlaps():
    labels = _line([1, 1, 1, 1, 1, 1, 1])
    spleen = _line([0, 0, 1, 1, 0, 0, 0], bool)
    kidney = _line([0, 0, 0, 1, 1, 0, 0], bool)  # overlaps the spleen at voxel 3
    result = remove_physiological_uptake(labels, {"spleen": spleen, "kidneys": kidney})
    assert result.labels[0, 0].tolist() == [1, 1, 0, 0, 0, 2, 2]
    [component] = result.components
    assert (component.organ, component.rule) == ("spleen", "cut")  # 2 voxels spleen, 1 kidney
    assert component.fraction_in_organs == pytest.approx(3 / 7)


def test_no_organ_no_component_and_bad_masks():
    labels = _line([0, 1, 1, 0])
    nothing = remove_physiological_uptake(labels, {})
    assert nothing.labels[0, 0].tolist() == [0, 1, 1, 0] and nothing.components == []
    empty = remove_physiological_uptake(np.zeros((1, 1, 4), np.int32), {"spleen": labels > 0})
    assert not empty.labels.any() and not empty.removed.any()
    with pytest.raises(ValueError, match="organ mask 'spleen' has shape"):
        remove_physiological_uptake(labels, {"spleen": np.zeros((1, 1, 3), bool)})
    with pytest.raises(ValueError, match="fraction must be in"):
        remove_physiological_uptake(labels, {}, fraction=0.0)


def test_tracer_profile_keeps_liver_lesions_and_records_what_it_removed():
    # a liver metastasis (label 1) and kidney uptake (label 2), DOTATATE
    labels = _line([1, 1, 1, 0, 2, 2, 2, 2])
    organs = _line([1, 1, 1, 1, 2, 2, 2, 2], np.uint8)
    geometry = Geometry.from_spacing(labels.shape, (10.0, 10.0, 10.0))  # 1 mL voxels
    organ_map = OrganMap(organs, {1: "liver", 2: "kidney_right"}, geometry, {"reader": "test"})
    suv = _line([8, 9, 10, 5, 20, 22, 24, 26], np.float32)
    tracer = TracerChoice(get_tracer("dotatate"), "--tracer", None)
    removal, record = remove_organ_uptake(labels, organ_map, tracer, suv=suv)
    assert removal.labels[0, 0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    [row] = record["removed"]
    assert row["organ"] == "kidneys" and row["rule"] == "inside"
    assert (row["voxels"], row["suv_max"], row["suv_mean"]) == (4, 26, 23)
    assert row["volume_ml"] == pytest.approx(4.0)
    assert record["organs_used"] == ["kidneys"]
    assert record["organs_missing_from_map"] == [
        "spleen",
        "adrenal_glands",
        "urinary_bladder",
        "pituitary_gland",
    ]
    assert record["tracer"]["name"] == "dotatate" and record["organ_map"]["reader"] == "test"
    with pytest.raises(ValueError, match="put it on the PET grid first"):
        remove_organ_uptake(labels[..., :4], organ_map, tracer, suv=suv[..., :4])
