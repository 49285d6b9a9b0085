"""Atomic outputs: write to a temporary name beside the target, then rename.

Nothing is half-written: a crash leaves either the old state or the complete new one.
Existing outputs are never replaced unless ``force=True``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["OutputExistsError", "atomic_dir", "atomic_file", "write_json_atomic"]


class OutputExistsError(FileExistsError):
    """An output exists and ``--force`` was not given."""


def check_writable_target(path: Path, force: bool) -> None:
    """Raise OutputExistsError if ``path`` exists and ``force`` is false."""
    if path.exists() and not force:
        raise OutputExistsError(
            f"{path} already exists; choose another output or pass --force to replace it"
        )


def _chmod_like_umask(path: Path, mode: int) -> None:
    """mkdtemp/mkstemp create private (0700/0600) entries; give the final output the
    permissions an ordinary ``mkdir``/``open`` would (``mode`` minus the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``path`` when the block succeeds.

    On error the temporary folder is removed and ``path`` is untouched.
    """
    target = Path(path)
    check_writable_target(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    _chmod_like_umask(tmp, 0o777)
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary file path (same folder, same suffixes) renamed to ``path`` on success."""
    target = Path(path)
    check_writable_target(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(target.suffixes)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".partial{suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(name)
    _chmod_like_umask(tmp, 0o666)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike[str], data: Any, force: bool = False) -> None:
    """Write JSON (indented, UTF-8) atomically."""
    with atomic_file(path, force=force) as tmp:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
