"""Atomic, marked outputs: what petseg writes, and the only things ``--force`` replaces.

Every output is

* **atomic**: built under a temporary name beside the target and renamed at the end, so a
  crash leaves either the old state or the complete new one;
* **marked**: a folder carries ``.petseg-output.json`` (petseg version, time, the entries
  it wrote, its inputs); a single file gets a hidden ``.NAME.petseg-output.json`` beside
  it, unless it lies inside a marked folder;
* **checked against its inputs**: an output path that equals an input, or a folder that
  holds one (after resolving symbolic links), is refused, with or without ``force``.

An existing output is replaced only with ``force=True``, and then only if petseg marked
it (or it is an empty folder); a marked folder holding entries petseg did not write is
refused too. Entries named in
``keep`` (e.g. a case folder's ``review/``) are carried over into the replacement.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "MARKER",
    "ForeignOutputError",
    "InputOverlapError",
    "OutputExistsError",
    "atomic_dir",
    "atomic_file",
    "check_inputs",
    "check_writable_target",
    "claim_dir",
    "is_petseg_output",
    "write_json_atomic",
]

#: Name of the marker a petseg output folder carries.
MARKER = ".petseg-output.json"

PathLike = str | os.PathLike[str]


class OutputExistsError(FileExistsError):
    """An output exists and ``--force`` was not given, or ``--force`` may not replace it."""


class ForeignOutputError(OutputExistsError):
    """``--force`` was given for a path petseg did not write."""


class InputOverlapError(ValueError):
    """An output path equals an input or holds one."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}{MARKER}")


def _read_marker(path: Path) -> dict[str, Any] | None:
    """The marker's content, or None when ``path`` is missing or not a petseg marker."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("written_by") == "petseg" else None


def _marker(entries: Sequence[str] | None, inputs: Sequence[Path], kind: str | None) -> str:
    from petseg import __version__

    data = {
        "written_by": "petseg",
        "petseg_version": __version__,
        "created_utc": _now(),
        "kind": kind,
        "entries": None if entries is None else sorted(entries),
        "inputs": [str(p) for p in inputs],
    }
    return json.dumps(data, indent=2) + "\n"


def _write_text_atomic(path: Path, text: str) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    _chmod_like_umask(Path(name), 0o666)
    os.replace(name, path)


def _marked_ancestor(path: Path) -> tuple[Path, dict[str, Any]] | None:
    """The nearest folder above ``path`` that carries a marker, with the marker."""
    for parent in Path(os.path.abspath(path)).parents:
        marker = _read_marker(parent / MARKER)
        if marker is not None:
            return parent, marker
    return None


def _inside_marked_folder(path: Path) -> bool:
    found = _marked_ancestor(path)
    if found is None:
        return False
    folder, marker = found
    entries = marker.get("entries")
    first = Path(os.path.abspath(path)).relative_to(folder).parts[0]
    return entries is None or first in entries


def is_petseg_output(path: PathLike) -> bool:
    """True when petseg marked ``path``: a folder with its own marker, or a file with a
    marker beside it or inside a marked folder that lists it (or does not list entries).

    Symbolic links are never petseg outputs.

    Parameters
    ----------
    path : str or os.PathLike
        A file or folder.

    Returns
    -------
    bool
    """
    target = Path(path)
    if target.is_symlink():
        return False
    if target.is_dir():
        return _read_marker(target / MARKER) is not None
    return _read_marker(_sidecar(target)) is not None or _inside_marked_folder(target)


def _resolved(paths: Iterable[PathLike | None]) -> list[Path]:
    return [Path(p).resolve() for p in paths if p is not None and str(p) != ""]


def check_inputs(output: PathLike, inputs: Iterable[PathLike | None]) -> None:
    """Refuse an output path that equals an input or holds one (symbolic links resolved).

    Parameters
    ----------
    output : str or os.PathLike
        The output file or folder (it need not exist).
    inputs : iterable of str or os.PathLike
        The inputs (None entries are ignored). An output *inside* an input folder is
        allowed: writing it removes nothing of the input.

    Raises
    ------
    InputOverlapError
        Naming the output and the input.
    """
    target = Path(output)
    out = target.resolve()
    for source in _resolved(inputs):
        same = out == source or (out.exists() and source.exists() and os.path.samefile(out, source))
        if same:
            raise InputOverlapError(
                f"output {target} is the input {source}; choose another output path"
            )
        if out in source.parents:
            raise InputOverlapError(
                f"output {target} holds the input {source}; choose an output path outside "
                "the inputs"
            )


def _foreign_entries(folder: Path, keep: Sequence[str]) -> list[str]:
    marker = _read_marker(folder / MARKER) or {}
    written = marker.get("entries")
    if written is None:
        return []
    allowed = {MARKER, *written, *keep}
    return sorted(p.name for p in folder.iterdir() if p.name not in allowed)


def check_writable_target(
    path: PathLike,
    force: bool,
    *,
    inputs: Iterable[PathLike | None] = (),
    keep: Sequence[str] = (),
) -> None:
    """Refuse to write ``path`` unless it is free or a petseg output ``force`` may replace.

    Parameters
    ----------
    path : str or os.PathLike
        The output (file or folder).
    force : bool
        Replace an existing output, if petseg marked it.
    inputs : iterable of str or os.PathLike
        Files and folders the output is made from; ``path`` may neither be one nor hold one.
    keep : sequence of str
        Entries of an existing output folder that the replacement carries over.

    Raises
    ------
    InputOverlapError
        ``path`` equals or holds an input.
    OutputExistsError
        ``path`` exists and ``force`` is false.
    ForeignOutputError
        ``force`` is true but petseg did not write ``path`` (or everything inside it).
    """
    target = Path(path)
    check_inputs(target, inputs)
    if not (target.exists() or target.is_symlink()):
        return
    if not force:
        raise OutputExistsError(
            f"{target} already exists; choose another output or pass --force to replace it"
        )
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        return  # an empty folder: nothing to lose
    if not is_petseg_output(target):
        where = (
            f"it has no {MARKER}" if target.is_dir() and not target.is_symlink() else "no marker"
        )
        raise ForeignOutputError(
            f"{target} was not written by petseg ({where}); --force replaces only petseg "
            "outputs: remove it yourself or choose another output"
        )
    if target.is_dir():
        foreign = _foreign_entries(target, keep)
        if foreign:
            raise ForeignOutputError(
                f"{target} holds entries petseg did not write there ({', '.join(foreign)}); "
                "move them away or choose another output"
            )


def _chmod_like_umask(path: Path, mode: int) -> None:
    """mkdtemp/mkstemp create private (0700/0600) entries; give the final output the
    permissions an ordinary ``mkdir``/``open`` would (``mode`` minus the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


@contextlib.contextmanager
def atomic_dir(
    path: PathLike,
    force: bool = False,
    *,
    inputs: Iterable[PathLike | None] = (),
    keep: Sequence[str] = (),
) -> Iterator[Path]:
    """Yield a temporary folder that becomes the marked output folder ``path`` on success.

    Parameters
    ----------
    path : str or os.PathLike
        The output folder.
    force : bool
        Replace an existing petseg output folder (see :func:`check_writable_target`).
    inputs : iterable of str or os.PathLike
        What the output is made from: never replaced, never inside ``path``; recorded in
        the marker.
    keep : sequence of str
        Entries of the folder being replaced that move into the new one (they must not be
        written by the block), e.g. ``("review",)``.

    Yields
    ------
    Path
        The temporary folder to write into; on error it is removed and ``path`` is
        untouched.
    """
    target = Path(path)
    sources = _resolved(inputs)
    check_writable_target(target, force, inputs=sources, keep=keep)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    _chmod_like_umask(tmp, 0o777)
    moved: list[str] = []
    try:
        # marked from the start: what the block writes inside is a petseg output
        (tmp / MARKER).write_text(_marker(None, sources, None), encoding="utf-8")
        yield tmp
        check_writable_target(target, force, inputs=sources, keep=keep)  # changed meanwhile?
        if target.is_dir():
            for name in keep:
                if (target / name).exists():
                    if (tmp / name).exists():
                        raise ValueError(
                            f"{tmp / name} was written although {name!r} is carried over "
                            f"from {target}"
                        )
                    os.replace(target / name, tmp / name)
                    moved.append(name)
        entries = [p.name for p in tmp.iterdir() if p.name != MARKER]
        _write_text_atomic(tmp / MARKER, _marker(entries, sources, None))
        if target.exists() or target.is_symlink():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        for name in moved:  # the old folder gets back what was carried over
            with contextlib.suppress(OSError):
                os.replace(tmp / name, target / name)
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(
    path: PathLike, force: bool = False, *, inputs: Iterable[PathLike | None] = ()
) -> Iterator[Path]:
    """Yield a temporary file path (same folder, same suffixes) renamed to ``path`` on success.

    Parameters
    ----------
    path : str or os.PathLike
        The output file.
    force : bool
        Replace an existing petseg output (see :func:`check_writable_target`).
    inputs : iterable of str or os.PathLike
        What the output is made from; ``path`` must not be one of them.

    Yields
    ------
    Path
        The temporary file to write. Outside a marked folder the file gets its marker
        ``.NAME.petseg-output.json`` beside it.
    """
    target = Path(path)
    sources = _resolved(inputs)
    check_writable_target(target, force, inputs=sources)
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
        if not _inside_marked_folder(target):
            _write_text_atomic(_sidecar(target), _marker([target.name], sources, None))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(
    path: PathLike,
    data: Any,
    force: bool = False,
    *,
    inputs: Iterable[PathLike | None] = (),
) -> None:
    """Write JSON (indented, UTF-8) atomically (see :func:`atomic_file`).

    Parameters
    ----------
    path : str or os.PathLike
        The JSON file.
    data : Any
        Plain JSON values (:func:`petseg.jsonable.to_jsonable`); NaN is refused.
    force : bool
        Replace an existing petseg output.
    inputs : iterable of str or os.PathLike
        What the file is made from; ``path`` must not be one of them.
    """
    with atomic_file(path, force=force, inputs=inputs) as tmp:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def claim_dir(
    path: PathLike,
    *,
    kind: str,
    inputs: Iterable[PathLike | None] = (),
    recognise: Sequence[str] = (),
) -> Path:
    """Create, or take up again, a folder that petseg fills step by step (a cohort run, a
    model); return it.

    Parameters
    ----------
    path : str or os.PathLike
        The folder.
    kind : str
        What the folder is (``"cohort run"``, ``"model"``); an existing marked folder of
        another kind is refused.
    inputs : iterable of str or os.PathLike
        What the folder is made from; ``path`` must neither be one nor hold one.
    recognise : sequence of str
        Relative paths that, all present, identify an unmarked folder of this kind written
        by an earlier petseg; it is marked and taken up.

    Returns
    -------
    Path
        The folder. An existing folder without a marker is taken up only when empty or
        recognised.
    """
    target = Path(path)
    sources = _resolved(inputs)
    check_inputs(target, sources)
    if target.exists() and not target.is_dir():
        raise OutputExistsError(f"{target} is a file, not a {kind} folder; choose another output")
    if target.is_dir():
        marker = _read_marker(target / MARKER)
        if marker is not None:
            if marker.get("kind") != kind:
                what = marker.get("kind") or "single output"
                raise ForeignOutputError(
                    f"{target} is a petseg {what} folder, not a {kind} folder; choose another "
                    "output"
                )
            return target
        known = bool(recognise) and all((target / rel).exists() for rel in recognise)
        if any(target.iterdir()) and not known:
            raise ForeignOutputError(
                f"{target} exists and was not written by petseg (no {MARKER}); choose another "
                f"output or an empty folder for the {kind}"
            )
    target.mkdir(parents=True, exist_ok=True)
    _write_text_atomic(target / MARKER, _marker(None, sources, kind))
    return target
