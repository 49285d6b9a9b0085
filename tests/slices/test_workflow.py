"""The slice methods' file-to-file steps (petseg.slices.workflow): what they refuse before
reading or writing anything. The steps themselves run in test_experiment.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from petseg.slices.workflow import predict_to_file


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ({}, "give either a slice set"),
        ({"slices": "s.npz", "study": "case"}, "give either a slice set"),
        ({"slices": "s.npz", "method": "method4"}, "method must be one of"),
    ],
)
def test_predict_needs_one_input_and_a_known_method(
    tmp_path: Path, inputs: dict[str, str], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        predict_to_file(tmp_path / "models", tmp_path / "out.npz", **inputs)
    assert not (tmp_path / "out.npz").exists()
