"""One JSON sanitiser for every file petseg writes.

``to_jsonable`` turns the values petseg's results hold (NumPy scalars and arrays, tuples,
paths, non-finite floats) into plain JSON values, so ``json.dumps(..., allow_nan=False)``
never fails and a NaN (for example the lowest lesion SUVmean of a study without lesions)
is written as ``null``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

__all__ = ["to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Return ``value`` as nested dicts, lists, str, int, float, bool and None.

    * mapping keys become ``str``; tuples, lists and arrays become lists;
    * NumPy scalars become Python scalars; ``bool`` stays ``bool``;
    * NaN and ±inf become ``None`` (JSON has no such numbers);
    * paths become ``str``; dataclass instances become dicts of their fields.

    Parameters
    ----------
    value : Any
        A result to write: mapping, sequence, array, scalar, path or dataclass.

    Returns
    -------
    Any
        The same value in plain JSON types.

    Raises
    ------
    TypeError
        For a value with no JSON form (an object petseg does not write).

    Examples
    --------
    >>> to_jsonable({"a": np.float32(1.5), 2: (np.int64(3), float("nan"))})
    {'a': 1.5, '2': [3, None]}
    """
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    raise TypeError(f"cannot write a {type(value).__name__} to JSON: {value!r}")
