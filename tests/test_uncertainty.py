"""Mutual information of fold probabilities and the per-lesion table, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy

from petseg.uncertainty import (
    FoldEnsemble,
    binary_entropy,
    lesion_uncertainty,
    mutual_information,
)


def bits(p: float) -> float:
    """Bernoulli entropy in bits, by scipy (an independent implementation)."""
    return float(entropy([p, 1 - p], base=2))


def test_binary_entropy_matches_scipy_and_is_zero_at_certainty():
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0], np.float32)
    expected = [0.0, bits(0.1), 1.0, bits(0.9), 0.0]
    np.testing.assert_allclose(binary_entropy(p), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("folds", "expected"),
    [
        ([0.9, 0.1], 1.0 - bits(0.9)),  # mean 0.5: H = 1 bit, each fold 0.469 bit -> 0.531
        ([0.8, 0.8], 0.0),  # agreement, whatever the probability
        ([0.5, 0.5], 0.0),  # both unsure, but agreeing: no disagreement
        ([1.0, 0.0], 1.0),  # the largest disagreement of two folds
        ([1.0, 1.0, 0.0], bits(2 / 3)),  # 0.918 bit: certain folds, split 2:1
    ],
)
def test_mutual_information_of_hand_computed_voxels(folds, expected):
    maps = [np.full((1, 1, 1), p, np.float32) for p in folds]
    assert mutual_information(maps)[0, 0, 0] == pytest.approx(expected, abs=1e-6)


def test_ensemble_adds_folds_one_at_a_time_in_any_order():
    a = np.array([[[0.9, 0.2, 0.6]]], np.float32)
    b = np.array([[[0.1, 0.2, 0.4]]], np.float32)
    ensemble = FoldEnsemble(a.shape, folds=[3, 1])
    ensemble.add(1, b)
    ensemble.add(3, a)
    np.testing.assert_allclose(ensemble.mean(), [[[0.5, 0.2, 0.5]]], atol=1e-7)
    # fold 3 is bit 0, fold 1 bit 1 (the order of ``folds``)
    np.testing.assert_array_equal(ensemble.votes(), [[[0b01, 0b00, 0b01]]])
    with pytest.raises(ValueError, match="already added"):
        ensemble.add(3, a)


def test_an_incomplete_ensemble_is_refused():
    ensemble = FoldEnsemble((1, 1, 2), folds=[0, 1])
    ensemble.add(0, np.zeros((1, 1, 2)))
    with pytest.raises(ValueError, match=r"folds \[1\] were not added"):
        ensemble.mean()


@pytest.mark.parametrize("bad", [np.nan, -0.5, 3.2], ids=["NaN", "negative", "logit"])
def test_a_fold_map_that_is_no_probability_is_refused(bad):
    ensemble = FoldEnsemble((1, 1, 2), folds=[0])
    with pytest.raises(ValueError, match=r"fold 0 probability must lie in \[0, 1\]"):
        ensemble.add(0, np.array([[[0.2, bad]]]))
    assert ensemble.added == []


def test_a_fold_map_rounded_just_past_one_is_clipped():
    ensemble = FoldEnsemble((1, 1, 2), folds=[0])
    ensemble.add(0, np.array([[[1.0005, 0.0]]], np.float32))  # float16 storage rounding
    assert ensemble.mean().max() == 1.0


def test_lesion_table_of_a_hand_made_map():
    labels = np.array([[[1, 1, 0, 2, 2, 0]]])
    uncertainty = np.array([[[0.2, 0.6, 0.9, 0.0, 0.1, 0.0]]], np.float32)
    # bit k: fold k alone ≥ 0.5. Lesion 1 is touched by folds 0 and 1, lesion 2 by all three;
    # the background voxel's fold-2 vote counts for no lesion.
    votes = np.array([[[0b011, 0b001, 0b100, 0b111, 0b111, 0]]], np.uint8)
    first, second = lesion_uncertainty(labels, uncertainty, votes, n_folds=3)
    assert first.label == 1 and second.label == 2
    assert first.uncertainty_mean == pytest.approx(0.4)
    assert first.uncertainty_max == pytest.approx(0.6)
    assert (first.folds_segmenting, first.folds, first.review_first) == (2, 3, True)
    assert second.uncertainty_mean == pytest.approx(0.05)
    assert second.uncertainty_max == pytest.approx(0.1)
    assert (second.folds_segmenting, second.review_first) == (3, False)


def test_no_lesions_gives_an_empty_table():
    empty = np.zeros((2, 2, 2), np.int32)
    assert lesion_uncertainty(empty, np.zeros((2, 2, 2)), np.zeros((2, 2, 2), np.uint8), 5) == []
