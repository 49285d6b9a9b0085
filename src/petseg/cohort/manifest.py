"""The completion manifest: which studies of a run are finished, verifiably.

Each finished study folder ``OUT/<id>/`` holds ``.petseg-done.json``, written inside the
folder *before* the folder appears by an atomic rename, so a study folder exists if and
only if it is complete. The record holds the sha256 of every input file, the hash of
the run's parameters, the petseg version, status and timings. A study is skipped on a
rerun only if its record's checksums and parameters hash equal the current ones (a
changed input file or parameter makes it run again; size and mtime are not trusted).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from petseg.cohort.discover import StudyInput

__all__ = [
    "DONE_RECORD",
    "clean_partial_outputs",
    "input_checksums",
    "parameters_hash",
    "read_done_record",
    "sha256_file",
    "skip_reason",
]

DONE_RECORD = ".petseg-done.json"
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes.

    Parameters
    ----------
    path : path
        Any file.

    Returns
    -------
    str
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def input_checksums(study: StudyInput) -> dict[str, str]:
    """``{name: sha256}`` of every input file of ``study``.

    Names are ``pet`` and ``ct`` for NIfTI files, ``dicom/<path in the folder>`` for a
    study folder's files and ``organs/<name>`` for an organ map's, so moving the cohort
    does not invalidate finished studies.

    Parameters
    ----------
    study : StudyInput
        One study of the cohort.

    Returns
    -------
    dict of str to str
    """
    organs = Path(study.organs) if study.organs not in (None, "totalsegmentator") else None
    sums = {}
    for path in study.input_files():
        if organs is not None and (path == organs or path.is_relative_to(organs)):
            key = "organs/" + (path.name if path == organs else path.relative_to(organs).as_posix())
        elif study.dicom is not None and path.is_relative_to(study.dicom):
            key = "dicom/" + path.relative_to(study.dicom).as_posix()
        else:
            key = "pet" if path == study.pet else "ct"
        sums[key] = sha256_file(path)
    return dict(sorted(sums.items()))


def parameters_hash(parameters: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``parameters`` (sorted keys, no whitespace).

    Parameters
    ----------
    parameters : mapping
        JSON-ready :meth:`Pipeline.parameters` of a run.

    Returns
    -------
    str
    """
    text = json.dumps(parameters, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_done_record(study_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The completion record of a study folder, or None if absent or unreadable.

    Parameters
    ----------
    study_dir : path
        ``OUT/<id>`` of a run.

    Returns
    -------
    dict or None
    """
    path = Path(study_dir) / DONE_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def skip_reason(
    record: Mapping[str, Any] | None, checksums: Mapping[str, str], params_hash: str
) -> str | None:
    """Why a finished study must run again, or None if it may be skipped.

    Parameters
    ----------
    record : mapping or None
        The study's completion record (None: never finished).
    checksums : mapping of str to str
        The current ``{path: sha256}`` of its inputs.
    params_hash : str
        The current run's :func:`parameters_hash`.

    Returns
    -------
    str or None
    """
    if record is None:
        return "not finished"
    if record.get("status") != "done":
        return f"previous status {record.get('status')!r}"
    if record.get("parameters_hash") != params_hash:
        return "parameters changed"
    if record.get("inputs") != dict(checksums):
        before, now = record.get("inputs") or {}, dict(checksums)
        changed = sorted(p for p in set(before) | set(now) if before.get(p) != now.get(p))
        return f"inputs changed: {', '.join(Path(p).name for p in changed[:3])}" + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        )
    return None


def clean_partial_outputs(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove what a killed run left half-written in ``out_dir``; return the removed paths.

    These are the temporary names of :mod:`petseg.io.atomic` (``.<name>.*.partial`` and
    ``.<name>.old-<pid>``), in ``out_dir`` and in ``out_dir/logs``. Complete study folders
    are never touched. Call it only while no other run writes to ``out_dir``.

    Parameters
    ----------
    out_dir : path
        The run folder.

    Returns
    -------
    list of Path
    """
    out = Path(out_dir)
    removed = []
    for folder in (out, out / "logs"):
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            name = entry.name
            if name.startswith(".") and (".partial" in name or ".old-" in name):
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed
