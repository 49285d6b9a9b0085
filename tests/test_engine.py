"""The engines' shared ensemble: mean, decision, post-processing and uncertainty."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy

from petseg.engine import ENGINES, PostProcessing, ensemble_prediction, get_engine
from petseg.study import Geometry, Study

SHAPE = (24, 32, 32)


def bits(p: float) -> float:
    return float(entropy([p, 1 - p], base=2))


def planted_study() -> Study:
    geometry = Geometry.from_spacing(SHAPE, (4.0, 4.0, 4.0))  # 0.064 mL voxels
    pet = np.zeros(SHAPE, np.float32)
    pet[4:20, 8:24, 8:24] = 1.0  # body
    return Study(pet, geometry, patient_id="planted")


def fold_maps() -> dict[int, np.ndarray]:
    """Two folds: lesion A (27 voxels) both at 0.9; lesion B (27 voxels) fold 0 at 1.0 and
    fold 1 at 0.2; a voxel where only fold 1 says 0.7 (mean 0.35, not segmented)."""
    a = np.zeros(SHAPE, np.float32)
    b = np.zeros(SHAPE, np.float32)
    a[12:15, 16:19, 16:19] = b[12:15, 16:19, 16:19] = 0.9
    a[5:8, 10:13, 10:13], b[5:8, 10:13, 10:13] = 1.0, 0.2
    b[17, 20, 20] = 0.7
    return {0: a, 1: b}


def test_ensemble_of_hand_computed_folds():
    maps = fold_maps()
    prediction = ensemble_prediction(
        planted_study(), iter(maps.items()), [0, 1], {"engine": "test"}, keep_folds=True
    )
    result = prediction.result
    assert result.patient.lesion_count == 2
    assert prediction.probability[6, 11, 11] == pytest.approx(0.6)
    assert prediction.probability[17, 20, 20] == pytest.approx(0.35)
    by_label = {u.label: u for u in result.lesion_uncertainty or []}
    agreed = by_label[int(result.labels[13, 17, 17])]
    split = by_label[int(result.labels[6, 11, 11])]
    # A: both folds 0.9 -> mutual information 0, both folds segment it
    assert agreed.uncertainty_max == pytest.approx(0.0, abs=1e-6)
    assert (agreed.folds_segmenting, agreed.review_first) == (2, False)
    # B: H(0.6) - (H(1.0) + H(0.2)) / 2 = 0.971 - 0.361 = 0.610 bit at every voxel
    expected = bits(0.6) - (0.0 + bits(0.2)) / 2
    assert split.uncertainty_mean == pytest.approx(expected, abs=1e-5)
    assert split.uncertainty_max == pytest.approx(expected, abs=1e-5)
    assert (split.folds_segmenting, split.folds, split.review_first) == (1, 2, True)
    # the lone voxel: mean 0.35, H(0.35) - H(0.7) / 2
    assert prediction.uncertainty is not None
    lone = bits(0.35) - bits(0.7) / 2
    assert prediction.uncertainty[17, 20, 20] == pytest.approx(lone, abs=1e-5)
    np.testing.assert_array_equal(prediction.fold_probabilities[1], maps[1])
    assert result.parameters["members"] == 2 and result.extra["model"] == {"engine": "test"}


def test_folds_are_not_kept_unless_asked_and_one_fold_has_no_uncertainty():
    maps = fold_maps()
    two = ensemble_prediction(planted_study(), iter(maps.items()), [0, 1], {})
    assert two.fold_probabilities == {}
    one = ensemble_prediction(planted_study(), iter([(0, maps[0])]), [0], {})
    assert one.uncertainty is None and one.result.lesion_uncertainty is None
    assert one.result.patient.lesion_count == 2


def test_post_processing_settings_apply():
    maps = fold_maps()
    post = PostProcessing(min_volume_ml=2.0)  # both lesions are 27 × 0.064 = 1.728 mL
    prediction = ensemble_prediction(planted_study(), iter(maps.items()), [0, 1], {}, post=post)
    assert prediction.result.patient.lesion_count == 0
    assert prediction.result.lesion_uncertainty == []


def test_engine_names_are_checked():
    assert ENGINES == ("builtin", "nnunet")
    with pytest.raises(ValueError, match="nnunet"):
        get_engine("nnunett")
    with pytest.raises(ValueError, match="takes no options"):
        get_engine("builtin", use_mirroring=False)
