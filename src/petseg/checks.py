"""Checks of option values shared by the library and the CLI, with one "did you mean".

Every option string petseg takes (method, tracer, metric policy, budget…) is checked by
:func:`check_choice`, so a typo gets the same one-line error everywhere:
``method must be one of ('liver', 'spleen'), got 'livr' (did you mean 'liver'?)``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["check_choice", "did_you_mean"]


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices``, or ``""`` when none is close.

    Parameters
    ----------
    value : object
        What the user gave (compared as ``str(value)``).
    choices : iterable of str
        The values it may be close to.

    Returns
    -------
    str
        The suffix to append to an error message.
    """
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_choice(what: str, value: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise a ValueError.

    Parameters
    ----------
    what : str
        The option's name, as the user knows it (``"method"``, ``"--tracer"``).
    value : str
        The value received.
    choices : iterable of str
        The accepted values.

    Returns
    -------
    str
        ``value``, unchanged.

    Raises
    ------
    ValueError
        ``"{what} must be one of (...), got 'x' (did you mean 'y'?)"``.
    """
    options = tuple(choices)
    if value not in options:
        raise ValueError(
            f"{what} must be one of {options}, got {value!r}{did_you_mean(value, options)}"
        )
    return value
