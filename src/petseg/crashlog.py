"""Where the traceback of an unexpected error goes: a log file, named in one line to the user.

Used by the ``petseg`` command (:func:`petseg.cli.run_command`) and the review server, so a
user never sees a raw traceback and a developer still gets the whole of it.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from petseg import __version__

__all__ = ["log_dir", "write_crash_log"]


def log_dir() -> Path:
    """``$PETSEG_LOG_DIR``, else ``$XDG_STATE_HOME/petseg/logs`` (default
    ``~/.local/state/petseg/logs``)."""
    if os.environ.get("PETSEG_LOG_DIR"):
        return Path(os.environ["PETSEG_LOG_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "petseg" / "logs"


def write_crash_log(context: Sequence[str], error: BaseException | None = None) -> Path:
    """Write an exception's traceback, with ``context`` lines above it; return the file.

    Parameters
    ----------
    context : sequence of str
        What was running (the command line, the request).
    error : BaseException, optional
        The exception; default the one being handled in this thread.

    The file is ``petseg-error-<local time>-<pid>-<n>.log`` in :func:`log_dir`, or in the
    temporary folder when that cannot be written.
    """
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = "\n".join(
        [
            f"petseg {__version__}, Python {platform.python_version()} on {platform.platform()}",
            *context,
            "",
            traceback.format_exc() if error is None else "".join(traceback.format_exception(error)),
        ]
    )
    last: OSError | None = None
    for folder in (log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(
                prefix=f"petseg-error-{stamp}-{os.getpid()}-", suffix=".log", dir=folder
            )
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            return Path(name)
        except OSError as err:
            last = err
    raise OSError(f"no folder to write the error log to: {last}")
