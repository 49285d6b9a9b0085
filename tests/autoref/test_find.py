"""Finding the liver without an organ map: real CT with TotalSegmentator labels, a real
DOTATATE SPECT with two liver lesions, the cropped sarcoma PETs, and phantom crops."""

import json

import numpy as np
import pytest
from scipy import ndimage

from petseg.autoref import NoReferenceError, place_reference
from petseg.autoref.find import NoOrganError, find_liver_ct, find_liver_pet
from petseg.autoref.place import place_in_organ
from petseg.phantom import generate_study
from petseg.reference import sphere_mask
from petseg.study import Geometry


def totalsegmentator_liver(real_data, ct_shape):
    """TotalSegmentator's liver (label 5 of the total task) on example_ct_sm, placed on a
    CT of ``ct_shape`` slices: the small CT is slices 82-111 of the full one."""
    from petseg.io.nifti import read_nifti

    names = json.loads((real_data / "ct-organs" / "example_seg_labels.json").read_text())
    assert names["5"] == "liver"
    seg, _ = read_nifti(real_data / "ct-organs" / "example_seg.nii.gz")
    liver = np.zeros(ct_shape, bool)
    liver[ct_shape[0] - seg.shape[0] :] = seg == 5
    return liver


@pytest.mark.parametrize("name", ["example_ct_sm", "example_ct"])
def test_ct_liver_lies_in_totalsegmentators_liver(real_data, name):
    from petseg.io.nifti import read_nifti

    ct, geometry = read_nifti(real_data / "ct-organs" / f"{name}.nii.gz")
    truth = totalsegmentator_liver(real_data, ct.shape)
    found = find_liver_ct(ct, geometry)
    depth = ndimage.distance_transform_edt(found.mask, sampling=geometry.spacing)
    deepest = np.unravel_index(int(np.argmax(depth)), depth.shape)
    assert truth[deepest]
    assert truth[found.mask].mean() > 0.55  # grown back into neighbouring soft tissue
    assert found.mask[truth].mean() > 0.9
    assert found.source == "CT" and found.details["chosen"]["failed"] == []
    # the sphere placed in it (on a PET of uniform uptake with ±10 % noise) is in the liver
    rng = np.random.default_rng(5)
    suv = (6.0 * (1 + 0.1 * rng.standard_normal(ct.shape))).astype(np.float32)
    placed = place_in_organ(suv, geometry, found.mask)
    assert truth[placed.centre_index]
    assert truth[sphere_mask(geometry, placed.centre_mm, placed.radius_mm)].mean() == 1.0


@pytest.fixture
def spect(shared_data):
    from petseg.io import load_study
    from petseg.io.rtstruct import read_rtstruct

    folder = shared_data / "lu177-dotatate-spect" / "SCAN_001"
    if not folder.is_dir():
        pytest.skip(f"the DOTATATE SPECT (CC BY-NC, not in the repository) is not at {folder}")
    study = load_study(folder / "spect")
    lesions = read_rtstruct(folder / "rtstruct.dcm", study.geometry)
    return study, lesions


def test_pet_only_voi_in_the_spect_keeps_10_mm_from_both_lesions(spect):
    study, lesions = spect
    assert study.ct is None
    auto = place_reference(study.pet, study.geometry)
    assert auto.source == "PET" and auto.organ == "liver" and auto.switch is None
    distance = np.inf
    for mask in lesions.values():
        outside = ndimage.distance_transform_edt(~mask, sampling=study.geometry.spacing)
        distance = min(distance, float(outside[auto.mask].min()))
    assert distance >= 10.0
    # on the patient's right, within the liver's reach of the right-lobe lesion
    right_lobe = lesions["lesion1 liver R lobe"]
    centroid = study.geometry.index_to_patient(np.argwhere(right_lobe).mean(axis=0))
    assert np.linalg.norm(np.asarray(auto.placement.centre_mm) - centroid) < 100.0
    assert auto.placement.centre_mm[0] < 0


def test_cropped_sarcoma_studies_are_refused(sts_study, sts_patient):
    from petseg.io import load_study

    study = load_study(sts_study(sts_patient))
    with pytest.raises(NoReferenceError, match=r"no plausible liver.*--ref-sphere"):
        place_reference(study.pet, study.geometry, ct=study.ct)


@pytest.fixture(scope="module")
def phantom():
    return generate_study(21, spacing=(4.0, 4.0, 4.0))


def crop(case, top: bool, depth_mm: float = 250.0):
    """The top (head and neck) or bottom (pelvis and thighs) ``depth_mm`` of a phantom."""
    geometry = case.study.geometry
    n = int(depth_mm / geometry.spacing[0])
    superior_last = geometry.affine[2, 0] > 0
    start = geometry.shape[0] - n if top == superior_last else 0
    part = slice(start, start + n)
    affine = geometry.affine.copy()
    affine[:3, 3] = geometry.index_to_patient((start, 0, 0))
    cropped = Geometry(affine, (n, *geometry.shape[1:]))
    return case.study.pet[part], case.study.ct[part], cropped


@pytest.mark.parametrize("top", [True, False], ids=["head-and-neck", "pelvis-and-thighs"])
def test_phantom_without_liver_is_refused_on_ct_and_pet(phantom, top):
    pet, ct, geometry = crop(phantom, top)
    with pytest.raises(NoOrganError, match="no plausible liver"):
        find_liver_ct(ct, geometry, pet)
    with pytest.raises(NoOrganError, match="no plausible liver"):
        find_liver_pet(pet, geometry)


def test_phantom_liver_found_on_ct_and_on_pet(phantom):
    liver = phantom.organs == 9
    for found in (
        find_liver_ct(phantom.study.ct, phantom.study.geometry, phantom.study.pet),
        find_liver_pet(phantom.study.pet, phantom.study.geometry),
    ):
        assert liver[found.mask].mean() > 0.8, found.source
        assert found.mask[liver].mean() > 0.7, found.source


def test_pet_finder_steps_in_when_the_ct_finder_refuses(phantom):
    air = np.full(phantom.study.geometry.shape, -1000.0, np.float32)  # a CT that shows no body
    auto = place_reference(phantom.study.pet, phantom.study.geometry, ct=air)
    assert auto.source == "PET"
    assert auto.detection is not None and "CT shows no body" in auto.detection["ct_refused"]
    assert (phantom.organs[auto.mask] == 9).all()  # 9: liver
