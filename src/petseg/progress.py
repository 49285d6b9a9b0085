"""Progress display for every long-running step (one way to do it).

Library code wraps its loops in :func:`progress`; it draws a tqdm bar on stderr. The
``petseg`` CLI's ``--quiet`` runs a command inside :func:`quiet`, which turns every bar
off for that call only (a context variable, not a process-wide setting), so library
functions need no ``progress=`` parameter.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

__all__ = ["enabled", "progress", "quiet"]

T = TypeVar("T")

_ENABLED: ContextVar[bool] = ContextVar("petseg_progress_enabled", default=True)


def enabled() -> bool:
    """True unless the caller runs inside :func:`quiet`."""
    return _ENABLED.get()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Turn progress display off for the code run inside this block."""
    token = _ENABLED.set(False)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    leave: bool = False,
    **kwargs: Any,
) -> Any:
    """A tqdm bar on stderr over ``iterable`` (or a manual bar with ``total``).

    Parameters
    ----------
    iterable : the items to iterate over, or None for a bar updated by hand
        (``bar.update(n)``, ``bar.set_postfix(...)``)
    total : number of items when ``iterable`` has no length
    desc : what is running, shown before the bar (``"fold 2/5"``)
    unit : what one item is (``"case"``, ``"epoch"``)
    leave : keep the finished bar on screen
    kwargs : further ``tqdm`` options

    Returns
    -------
    tqdm.tqdm
        Iterate over it, or use it as a context manager; disabled inside :func:`quiet`.
        A bar appears only once its step has run for 1 s (10 s when stderr is not a
        terminal, e.g. a log file, where it then refreshes at most every 10 s), so quick
        steps and one-line error messages are not cluttered by bars.
    """
    from tqdm import tqdm

    interactive = sys.stderr.isatty()
    kwargs.setdefault("mininterval", 0.2 if interactive else 10.0)
    kwargs.setdefault("delay", 1.0 if interactive else 10.0)
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        leave=leave,
        file=sys.stderr,
        dynamic_ncols=interactive,
        disable=not enabled(),
        **kwargs,
    )
