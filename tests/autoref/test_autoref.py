"""place_reference: organ source, spleen fallback and refusals, on hand-made organs."""

import json

import numpy as np
import pytest

from petseg.autoref import AutoReference, NoReferenceError, place_reference
from petseg.jsonable import to_jsonable
from petseg.reference import reference_stats
from petseg.study import Geometry


def checker(shape, amplitude):
    z, y, x = np.indices(shape)
    return ((z + y + x) % 2 * 2 - 1).astype(np.float32) * amplitude


def two_organs(liver_involved: bool):
    """A 4 mm grid with a liver block (SUV 6 ± 1) and a spleen block (SUV 20 ± 2); an
    involved liver has a lesion (SUV 30) every 16 mm, so no 20 mm sphere fits between them."""
    shape = (40, 40, 60)
    geometry = Geometry.from_spacing(shape, (4.0, 4.0, 4.0))
    suv = np.ones(shape, np.float32)
    liver = np.zeros(shape, bool)
    liver[2:38, 4:36, 2:30] = True
    spleen = np.zeros(shape, bool)
    spleen[8:32, 10:30, 36:56] = True
    suv[liver] = 6.0 + checker(shape, 1.0)[liver]
    suv[spleen] = 20.0 + checker(shape, 2.0)[spleen]
    if liver_involved:
        for k in range(2, 38, 4):
            for j in range(4, 36, 4):
                for i in range(2, 30, 4):
                    suv[k : k + 2, j : j + 2, i : i + 2] = 30.0
    return geometry, suv, {"liver": liver, "spleen": spleen}


def test_organ_map_liver():
    geometry, suv, organs = two_organs(liver_involved=False)
    auto = place_reference(suv, geometry, organ_masks=organs)
    assert isinstance(auto, AutoReference)
    assert (auto.organ, auto.source, auto.switch) == ("liver", "organ map", None)
    assert organs["liver"][auto.mask].all()
    stats = reference_stats(suv, auto.mask, geometry)
    assert auto.placement.threshold_suv == pytest.approx(1.5 * stats.mean + 2 * stats.sd)
    record = auto.to_dict()
    assert record["method"] == "automatic" and record["source"] == "organ map"
    assert record["radius_mm"] == 15.0 and len(record["centre_mm"]) == 3
    json.dumps(to_jsonable(record), allow_nan=False)


def test_involved_liver_switches_to_the_spleen_with_its_formula():
    geometry, suv, organs = two_organs(liver_involved=True)
    auto = place_reference(suv, geometry, organ_masks=organs)
    assert auto.organ == "spleen"
    assert organs["spleen"][auto.mask].all()
    assert auto.switch is not None and auto.switch["from"] == "liver"
    assert "no 30 mm sphere in the liver is homogeneous enough" in auto.switch["reason"]
    assert "switched from the liver" in auto.describe()
    stats = reference_stats(suv, auto.mask, geometry)
    assert auto.placement.threshold_suv == pytest.approx(0.67 * stats.mean + 2 * stats.sd)


def test_involved_liver_without_spleen_is_refused():
    geometry, suv, organs = two_organs(liver_involved=True)
    with pytest.raises(
        NoReferenceError, match=r"homogeneous.*no organ map with a spleen.*--ref-sphere"
    ):
        place_reference(suv, geometry, organ_masks={"liver": organs["liver"]})
    with pytest.raises(NoReferenceError, match="no lesion-free reference VOI"):
        place_reference(suv, geometry, organ_masks=organs, spleen_fallback=False)


def test_organ_map_without_the_organ_is_one_clear_line():
    geometry, suv, organs = two_organs(liver_involved=False)
    with pytest.raises(NoReferenceError) as caught:
        place_reference(suv, geometry, organ_masks={"spleen": organs["spleen"]})
    message = str(caught.value)
    assert "the organ map has no liver (it holds ['spleen'])" in message
    assert "--ref-sphere" in message and "\n" not in message


def test_spleen_asked_for_directly():
    geometry, suv, organs = two_organs(liver_involved=False)
    auto = place_reference(suv, geometry, organ="spleen", organ_masks=organs)
    assert auto.organ == "spleen" and auto.switch is None
    with pytest.raises(NoReferenceError, match="finding the spleen needs an organ map"):
        place_reference(suv, geometry, organ="spleen")


def test_bad_arguments():
    geometry, suv, organs = two_organs(liver_involved=False)
    with pytest.raises(ValueError, match="did you mean 'liver'"):
        place_reference(suv, geometry, organ="livr", organ_masks=organs)
    with pytest.raises(ValueError, match="organ mask 'liver' has shape"):
        place_reference(suv, geometry, organ_masks={"liver": organs["liver"][:-1]})
    with pytest.raises(ValueError, match="must share one shape"):
        place_reference(suv, geometry, ct=np.zeros((2, 2, 2)))


def test_no_liver_on_a_toy_pet_is_refused(toy_study):
    study, _ = toy_study  # a 112 mm wide cylinder: no trunk
    with pytest.raises(NoReferenceError, match=r"no plausible liver.*on the PET \(no CT\)"):
        place_reference(study.pet, study.geometry)
