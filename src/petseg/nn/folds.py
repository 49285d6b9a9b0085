"""Patient-level k-fold splits, deterministic, with negative controls spread over folds.

All studies of one patient fall into the same fold (no patient is in both the training
and the validation part of a fold). Patients with lesions and negative-control patients
are shuffled separately and dealt round-robin, so every fold gets its share of each.
The split is a plain JSON-ready dict (saved as ``folds.json`` in the model folder) that
other engines (e.g. the 2D slice methods or nnU-Net's ``splits_final.json``) can reuse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["FOLDS_FORMAT", "fold_of_case", "make_folds", "validate_folds"]

FOLDS_FORMAT = "petseg-folds-1"


def make_folds(
    case_ids: Sequence[str],
    n_folds: int = 5,
    *,
    seed: int = 12345,
    patient_of: Mapping[str, str] | None = None,
    negatives: Sequence[str] = (),
) -> dict[str, Any]:
    """Split cases into ``n_folds`` folds by patient.

    Parameters
    ----------
    case_ids : the dataset's case ids
    n_folds : number of folds (≥ 2)
    seed : shuffling seed (12345 is nnU-Net's)
    patient_of : case id → patient id; cases not listed are their own patient
    negatives : case ids without lesions (negative controls)

    Returns
    -------
    dict with ``format``, ``n_folds``, ``seed`` and ``folds``: a list of
    ``{"fold": k, "train": [case ids], "val": [case ids]}``, case ids sorted.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    ids = sorted(set(case_ids))
    if len(ids) != len(case_ids):
        raise ValueError("case ids must be unique")
    patient_of = dict(patient_of or {})
    unknown = sorted(set(patient_of) - set(ids))
    if unknown:
        raise ValueError(f"patient_of names cases not in the dataset: {unknown[:5]}")
    patients: dict[str, list[str]] = {}
    for case in ids:
        patients.setdefault(patient_of.get(case, case), []).append(case)
    if len(patients) < n_folds:
        raise ValueError(
            f"{len(patients)} patients cannot be split into {n_folds} folds; use --folds "
            f"{max(len(patients), 2)} or fewer"
        )
    neg = set(negatives)
    negative_patients = sorted(p for p, cases in patients.items() if all(c in neg for c in cases))
    positive_patients = sorted(set(patients) - set(negative_patients))
    rng = np.random.default_rng(seed)
    assignment: dict[str, int] = {}
    counter = 0
    for group in (positive_patients, negative_patients):
        order = [group[i] for i in rng.permutation(len(group))]
        for patient in order:
            assignment[patient] = counter % n_folds
            counter += 1
    folds = []
    for k in range(n_folds):
        val = sorted(c for p, cases in patients.items() if assignment[p] == k for c in cases)
        train = sorted(set(ids) - set(val))
        folds.append({"fold": k, "train": train, "val": val})
    return {
        "format": FOLDS_FORMAT,
        "n_folds": n_folds,
        "seed": seed,
        "negatives": sorted(neg & set(ids)),
        "patient_of": {c: patient_of.get(c, c) for c in ids},
        "folds": folds,
    }


def validate_folds(split: Mapping[str, Any], case_ids: Sequence[str]) -> None:
    """Check that a saved split covers exactly ``case_ids``, each once as validation.

    Parameters
    ----------
    split : mapping of str to Any
        A split as :func:`make_folds` returns it (read from ``folds.json``).
    case_ids : sequence of str
        The dataset's case ids.

    Raises
    ------
    ValueError
        Not a petseg split, a fold with a case in both parts, or validation parts that
        miss a case or name an unknown one.
    """
    if split.get("format") != FOLDS_FORMAT:
        raise ValueError(f"not a petseg folds file (format {split.get('format')!r})")
    seen: list[str] = []
    for fold in split["folds"]:
        if set(fold["train"]) & set(fold["val"]):
            raise ValueError(f"fold {fold['fold']} has cases in both train and val")
        seen.extend(fold["val"])
    if sorted(seen) != sorted(case_ids):
        missing = sorted(set(case_ids) - set(seen))
        extra = sorted(set(seen) - set(case_ids))
        raise ValueError(
            f"folds do not match the dataset: missing {missing[:5]}, unknown {extra[:5]}; "
            "delete folds.json to make a new split"
        )


def fold_of_case(split: Mapping[str, Any], case_id: str) -> int:
    """The fold whose validation part holds ``case_id`` (the fold that did not train on it).

    Parameters
    ----------
    split : mapping of str to Any
        A split as :func:`make_folds` returns it (read from ``folds.json``).
    case_id : str
        The case to look up.

    Returns
    -------
    int
        The fold number k.

    Raises
    ------
    ValueError
        If no fold holds ``case_id``.
    """
    for fold in split["folds"]:
        if case_id in fold["val"]:
            return int(fold["fold"])
    raise ValueError(f"case {case_id!r} is not in any fold of this split")
