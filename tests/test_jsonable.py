import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from petseg.jsonable import to_jsonable


@dataclass
class _Point:
    x: float
    name: str


def test_numpy_paths_tuples_and_dataclasses_become_plain_json() -> None:
    value = {
        1: np.float32(0.5),
        "n": np.int64(7),
        "flag": np.bool_(True),
        "path": Path("/a/b"),
        "shape": (np.int32(2), 3),
        "array": np.array([1.0, np.inf]),
        "point": _Point(x=float("nan"), name="p"),
    }
    out = to_jsonable(value)
    assert out == {
        "1": 0.5,
        "n": 7,
        "flag": True,
        "path": "/a/b",
        "shape": [2, 3],
        "array": [1.0, None],
        "point": {"x": None, "name": "p"},
    }
    assert type(out["flag"]) is bool and type(out["n"]) is int
    json.dumps(out, allow_nan=False)  # must not raise


def test_unknown_objects_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot write a object to JSON"):
        to_jsonable(object())
