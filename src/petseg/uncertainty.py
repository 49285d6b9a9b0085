"""Uncertainty of a fold ensemble: where, and on which lesions, the folds disagree.

The measure is the **mutual information** between a voxel's label and the fold that
predicts it (BALD, Houlsby et al. 2011; the ensemble form of Lakshminarayanan et al.
2017), in bits, for the binary lesion probability::

    H(p)  = -p log2 p - (1 - p) log2 (1 - p)
    MI    = H(mean_k p_k) - mean_k H(p_k)          0 ≤ MI ≤ 1 bit

Why this one and not the others:

* the **entropy of the mean** ``H(mean p)`` is also high where every fold agrees on
  p = 0.5, the blurred rim of every lesion; it measures how unsure the ensemble is, not
  whether its members disagree;
* the **fold SD** measures disagreement too, but has no natural scale (its maximum
  depends on the number of folds) and grows with |p_k - p_j| whether or not the folds sit on
  opposite sides of the decision;
* **MI** is zero wherever the folds agree, whatever their probability, and reaches 1 bit
  when half of the folds say 0 and half say 1: exactly "the folds disagree".

Per lesion (:func:`lesion_uncertainty`): mean and maximum MI over the lesion's voxels,
the number of folds that on their own (fold probability ≥ 0.5) touch the lesion, and
the ``review_first`` flag: **a lesion is flagged when fewer than all folds would have
segmented it on their own** (a single-fold prediction flags nothing).

Memory: :class:`FoldEnsemble` adds the folds one at a time; it holds two float32 maps
(sum of probabilities, sum of fold entropies) and one integer vote map with one bit per
fold, never the stack of fold maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "UNCERTAINTY_COLUMNS",
    "FoldEnsemble",
    "LesionUncertainty",
    "binary_entropy",
    "lesion_uncertainty",
    "mutual_information",
]

#: Fold probability at or above which a fold on its own segments a voxel.
FOLD_THRESHOLD = 0.5
#: Columns :func:`lesion_uncertainty` adds to ``lesions.csv``.
UNCERTAINTY_COLUMNS = (
    "uncertainty_mean",
    "uncertainty_max",
    "folds_segmenting",
    "folds",
    "review_first",
)


def binary_entropy(p: NDArray[np.floating]) -> NDArray[np.float32]:
    """Entropy in bits of a Bernoulli probability, elementwise (0 at p = 0 and p = 1).

    Parameters
    ----------
    p : ndarray of float
        Probabilities in [0, 1], any shape.

    Returns
    -------
    ndarray of float32, same shape, in bits, in [0, 1].
    """
    q = np.clip(np.asarray(p, dtype=np.float32), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(q * np.log2(q) + (1 - q) * np.log2(1 - q))
    return np.nan_to_num(h, nan=0.0).astype(np.float32)


def mutual_information(fold_probabilities: Sequence[NDArray[np.floating]]) -> NDArray[np.float32]:
    """Mutual information (bits) of a stack of fold lesion probabilities.

    Parameters
    ----------
    fold_probabilities : sequence of (Z, Y, X) float ndarray
        Each fold's lesion probability on the same grid.

    Returns
    -------
    (Z, Y, X) float32 ndarray, H(mean p) - mean H(p_k), clipped at 0.
    """
    ensemble = FoldEnsemble(np.shape(fold_probabilities[0]), range(len(fold_probabilities)))
    for k, p in enumerate(fold_probabilities):
        ensemble.add(k, p)
    return ensemble.mutual_information()


#: Rounding a probability map may leave it this far outside [0, 1] (float16 storage).
PROBABILITY_TOLERANCE = 1e-3


class FoldEnsemble:
    """Running mean, mutual information and per-fold votes of fold probabilities.

    Parameters
    ----------
    shape : (Z, Y, X) tuple of int
        Grid of the probability maps.
    folds : sequence of int
        The folds that will be added (at most 32), in any order.
    """

    def __init__(self, shape: Sequence[int], folds: Sequence[int]) -> None:
        self.folds = [int(f) for f in folds]
        if not self.folds or len(self.folds) > 32:
            raise ValueError(f"a fold ensemble needs 1 to 32 folds, got {len(self.folds)}")
        self.shape = tuple(int(s) for s in shape)
        self._sum = np.zeros(self.shape, np.float32)
        self._entropy = np.zeros(self.shape, np.float32)
        dtype = np.uint8 if len(self.folds) <= 8 else np.uint32
        self._votes = np.zeros(self.shape, dtype)
        self.added: list[int] = []

    def add(self, fold: int, probability: NDArray[np.floating]) -> None:
        """Add one fold's (Z, Y, X) lesion probability (each fold once)."""
        if fold not in self.folds or fold in self.added:
            raise ValueError(f"fold {fold} is not one of {self.folds} or was already added")
        p = np.asarray(probability, dtype=np.float32)
        if p.shape != self.shape:
            raise ValueError(f"fold {fold} probability has shape {p.shape}, expected {self.shape}")
        low, high = (float(v) for v in (np.min(p), np.max(p)))
        if not (low >= -PROBABILITY_TOLERANCE and high <= 1.0 + PROBABILITY_TOLERANCE):
            raise ValueError(
                f"fold {fold} probability must lie in [0, 1], got values from {low:g} to "
                f"{high:g}: pass softmax probabilities, not logits or a label map"
            )
        p = np.clip(p, 0.0, 1.0)
        self._sum += p
        self._entropy += binary_entropy(p)
        bit = self._votes.dtype.type(1 << self.folds.index(fold))
        self._votes[p >= FOLD_THRESHOLD] |= bit
        self.added.append(fold)

    def _check_complete(self) -> int:
        if sorted(self.added) != sorted(self.folds):
            missing = sorted(set(self.folds) - set(self.added))
            raise ValueError(f"folds {missing} were not added to the ensemble")
        return len(self.added)

    def mean(self) -> NDArray[np.float32]:
        """(Z, Y, X) float32 mean lesion probability of the folds (the ensemble)."""
        return self._sum / np.float32(self._check_complete())

    def mutual_information(self) -> NDArray[np.float32]:
        """(Z, Y, X) float32 mutual information in bits (module docstring)."""
        n = np.float32(self._check_complete())
        mi = binary_entropy(self._sum / n) - self._entropy / n
        return np.maximum(mi, 0.0, out=mi)

    def votes(self) -> NDArray[np.integer[Any]]:
        """(Z, Y, X) integer map, bit ``i`` set where ``folds[i]`` alone is ≥ 0.5."""
        self._check_complete()
        return self._votes


@dataclass(frozen=True)
class LesionUncertainty:
    """Ensemble disagreement on one lesion (columns of ``lesions.csv``).

    Attributes
    ----------
    label : int
        The lesion's label.
    uncertainty_mean : float
        Mean mutual information over its voxels, bits.
    uncertainty_max : float
        Largest mutual information in it, bits.
    folds_segmenting : int
        How many folds would segment part of it on their own (probability ≥ 0.5).
    folds : int
        Folds in the ensemble.
    review_first : bool
        ``folds_segmenting < folds``: the ensemble's decision is not unanimous.
    """

    label: int
    uncertainty_mean: float
    uncertainty_max: float
    folds_segmenting: int
    folds: int
    review_first: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lesion_uncertainty(
    labels: NDArray[np.integer[Any]],
    uncertainty: NDArray[np.floating],
    votes: NDArray[np.integer[Any]],
    n_folds: int,
) -> list[LesionUncertainty]:
    """Per-lesion uncertainty, fold count and review flag (module docstring).

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        Lesion map, 0 = background, lesions 1..N.
    uncertainty : (Z, Y, X) float ndarray
        Voxel mutual information in bits.
    votes : (Z, Y, X) int ndarray
        Bit ``i`` set where fold ``i`` alone has probability ≥ 0.5
        (:meth:`FoldEnsemble.votes`).
    n_folds : int
        Number of folds in the ensemble.

    Returns
    -------
    list of LesionUncertainty, one per label 1..max(labels), in label order.
    """
    if labels.shape != uncertainty.shape or labels.shape != votes.shape:
        raise ValueError(
            f"labels {labels.shape}, uncertainty {uncertainty.shape} and votes {votes.shape} "
            "must share the grid"
        )
    n = int(labels.max(initial=0))
    inside = labels > 0
    lab = labels[inside].astype(np.int64)
    values = np.asarray(uncertainty, dtype=np.float64)[inside]
    count = np.bincount(lab, minlength=n + 1)
    mean = np.bincount(lab, weights=values, minlength=n + 1) / np.maximum(count, 1)
    peak = np.zeros(n + 1)
    np.maximum.at(peak, lab, values)
    voted = votes[inside]
    segmenting = np.zeros(n + 1, dtype=np.int64)
    for bit in range(n_folds):
        hit = np.bincount(lab[(voted >> bit) & 1 == 1], minlength=n + 1) > 0
        segmenting += hit
    return [
        LesionUncertainty(
            label=k,
            uncertainty_mean=float(mean[k]),
            uncertainty_max=float(peak[k]),
            folds_segmenting=int(segmenting[k]),
            folds=n_folds,
            review_first=bool(segmenting[k] < n_folds),
        )
        for k in range(1, n + 1)
    ]
