"""Run a pipeline over a cohort on Dask: parallel, resumable, loss-free, deterministic.

Layout of a run folder ``OUT``::

    OUT/<id>/               one complete case folder per finished study (lesions.nii.gz,
                            lesions.csv, report.json, mip.png, rtstruct.dcm for DICOM)
                            and its completion record .petseg-done.json; review/ holds
                            the physician's saved versions (petseg review), kept on reruns
    OUT/logs/<id>.log       the log of the study's last attempt (traceback if it failed)
    OUT/logs/run.log        one line per study and run: done / skipped / failed
    OUT/cohort.csv          the cohort table (see petseg.cohort.table)
    OUT/cohort.json         the table with the run's parameters, inputs and petseg version
    OUT/.petseg/run.json    the parameters the folder was made with; OUT/.petseg/lock

Each study is one task: the worker hashes the study's inputs, skips it if its completion
record matches (same checksums, same parameters), else runs the pipeline into a
temporary folder that is renamed to ``OUT/<id>`` at the end (petseg.io.atomic). A
failure becomes a row with its error; it never stops the other studies. Killing the run
at any moment leaves only complete study folders and temporary ones, which the next run
removes before it starts.

A study that is redone first loses its earlier result (the folder keeps only ``review/``
and a note of why, :data:`REDO_RECORD`), so a redo that fails or dies leaves no stale
result for ``cohort.csv`` or ``petseg evaluate`` to pick up. Reviews are never deleted:
they move into the new result's folder, where the review page marks them as made on an
older result.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import logging
import os
import socket
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from petseg import __version__
from petseg.cohort.discover import StudyInput, discover_studies
from petseg.cohort.manifest import (
    DONE_RECORD,
    clean_partial_outputs,
    input_checksums,
    parameters_hash,
    read_done_record,
    sha256_file,
    skip_reason,
)
from petseg.cohort.table import MEASURES, sort_rows, write_cohort_csv
from petseg.io.atomic import (
    MARKER,
    OutputExistsError,
    atomic_dir,
    atomic_file,
    claim_dir,
    write_json_atomic,
)
from petseg.jsonable import to_jsonable
from petseg.report import KEPT_ON_RERUN

__all__ = [
    "REDO_RECORD",
    "CohortRun",
    "Pipeline",
    "PredictPipeline",
    "SegmentPipeline",
    "default_workers",
    "process_study",
    "run_cohort",
]

_MEMORY_PER_WORKER_BYTES = 4 * 1024**3
#: Names in OUT that belong to the run, not to a study.
_RESERVED = ("logs", "evaluation", "cohort.csv", "cohort.json")
#: What a study folder holds while its result is being redone (or after the redo failed).
REDO_RECORD = ".petseg-redo.json"
#: What ``OUT``'s marker calls a run folder (petseg.io.atomic.claim_dir).
RUN_KIND = "cohort run"


class Pipeline(Protocol):
    """What a cohort run applies to each study (must be picklable: it travels to workers)."""

    def parameters(self) -> dict[str, Any]:
        """JSON-ready description of everything that changes the results (it is hashed)."""
        ...

    def run(self, study: StudyInput, out_dir: Path) -> Any:
        """Process one study, write its outputs into the existing folder ``out_dir`` and
        return its :class:`petseg.lesions.PatientStats` (or an object with its fields).

        Parameters
        ----------
        study : StudyInput
            The study's input files.
        out_dir : Path
            The (temporary) study folder to write into.
        """
        ...


def _load_study(study: StudyInput) -> Any:
    from petseg.io import load_study

    loaded = (
        load_study(study.dicom)
        if study.dicom is not None
        else load_study(pet=study.pet, ct=study.ct)
    )
    if not loaded.study_id:
        loaded.study_id = study.id
    return loaded


@dataclass(frozen=True)
class SegmentPipeline:
    """The threshold pipeline of ``petseg segment`` (:func:`petseg.workflows.segment_to_folder`).

    A study's own ``ref_sphere`` (CSV manifest) replaces ``params.ref_sphere`` (mm units)
    for the methods that use a reference VOI; its own ``organs`` (manifest) replaces
    ``organs`` (``"totalsegmentator"`` or None). ``tracer`` applies to every study with an
    organ map (default: from its DICOM headers).

    Attributes
    ----------
    params : SegmentParams
        The threshold method and its options.
    rtstruct : bool
        Write ``rtstruct.dcm`` for DICOM studies.
    organs : str or None
        ``"totalsegmentator"`` for every study, or None (the manifest's per study).
    tracer : str or None
        Tracer profile for the organ maps (default: from each study's DICOM).
    """

    params: Any  # petseg.pipeline.SegmentParams
    rtstruct: bool = True
    organs: str | None = None
    tracer: str | None = None

    def parameters(self) -> dict[str, Any]:
        """The method, its options, the organ map source and tracer (:meth:`Pipeline.parameters`)."""
        return {
            "pipeline": "segment",
            "rtstruct": self.rtstruct,
            **self.params.to_dict(),
            "organs": self.organs,
            "tracer": self.tracer,
        }

    def run(self, study: StudyInput, out_dir: Path) -> Any:
        """Segment ``study`` into ``out_dir`` as ``petseg segment`` does (:meth:`Pipeline.run`)."""
        from petseg.workflows import segment_to_folder

        params = self.params
        if study.ref_sphere is not None and params.uses_reference:
            params = replace(params, ref_sphere=study.ref_sphere, ref_units="mm")
        organs = study.organs if study.organs is not None else self.organs
        result = segment_to_folder(
            _load_study(study),
            params,
            out_dir,
            force=True,
            rtstruct=self.rtstruct,
            organs=organs,
            tracer=self.tracer if organs is not None else None,
            # the finished folder of an earlier run, whose TotalSegmentator output is reused
            previous=Path(out_dir).parent / study.id,
        )
        return result.patient


#: Models loaded in this process, by (model folder, folds, device): each Dask worker
#: process loads a model once and keeps it for all its studies.
_MODELS: dict[tuple[str, str, str, str], Any] = {}


def _worker_device(device: str) -> str:
    """``cuda`` on a worker named N becomes ``cuda:<N mod GPU count>``: one GPU per worker."""
    if device != "cuda":
        return device
    import torch

    count = torch.cuda.device_count()
    try:
        from distributed import get_worker

        name = get_worker().name
    except ValueError:  # not inside a Dask worker
        return device
    return f"cuda:{int(name) % count}" if count and str(name).isdigit() else device


@dataclass(frozen=True)
class PredictPipeline:
    """A trained network, as ``petseg predict`` runs it (:func:`petseg.engine.predict_to_folder`
    with the ``engine`` named, "builtin" or "nnunet"), loaded once per worker process.

    ``model_sha256`` (filled by :meth:`with_checksum`) identifies the weights in the
    parameters hash; the device does not enter it.

    Attributes
    ----------
    model : str or None
        Model folder of ``petseg train`` (None: the shipped demonstration model).
    folds : str
        ``"all"`` or e.g. ``"0,1,2"``.
    engine : str
        ``"builtin"`` or ``"nnunet"`` (:func:`petseg.engine.get_engine`).
    device : str
        ``"cpu"`` or ``"cuda"``.
    rtstruct : bool
        Write ``rtstruct.dcm`` for DICOM studies.
    save_probabilities : bool
        Also write ``probabilities.nii.gz``.
    model_sha256 : str
        Checksum over the model folder's files.
    """

    model: str | None = None
    folds: str = "all"
    engine: str = "builtin"
    device: str = "cpu"
    rtstruct: bool = True
    save_probabilities: bool = False
    model_sha256: str = ""

    def with_checksum(self) -> PredictPipeline:
        """Return a copy with ``model_sha256`` over the model folder's files."""
        from petseg.nn.infer import DEMO_MODEL

        if self.model is None and self.engine != "builtin":
            raise ValueError(f"--engine {self.engine} needs --model (only builtin ships a model)")
        root = Path(self.model) if self.model is not None else Path(DEMO_MODEL)
        if not root.is_dir():
            raise FileNotFoundError(f"model folder {root} does not exist (--model)")
        digest = hashlib.sha256()
        files = (p for p in root.rglob("*") if p.is_file() and not p.name.endswith(MARKER))
        for path in sorted(files):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(sha256_file(path).encode())
        return replace(self, model_sha256=digest.hexdigest())

    def parameters(self) -> dict[str, Any]:
        """Model, folds, outputs and weights checksum; not the device (:meth:`Pipeline.parameters`)."""
        params = {k: v for k, v in self.__dict__.items() if k != "device"}
        return {"pipeline": "predict", **params}

    def run(self, study: StudyInput, out_dir: Path) -> Any:
        """Predict ``study`` into ``out_dir`` as ``petseg predict`` does (:meth:`Pipeline.run`)."""
        from petseg.engine import get_engine, predict_to_folder

        engine = get_engine(self.engine)
        device = _worker_device(self.device)
        key = (self.engine, str(self.model), self.folds, device)
        if key not in _MODELS:
            model = None if self.model is None else Path(self.model)
            _MODELS[key] = engine.load(model, self.folds, device=device)
        prediction = predict_to_folder(
            engine,
            _load_study(study),
            _MODELS[key],
            out_dir,
            force=True,
            save_probabilities=self.save_probabilities,
            rtstruct=self.rtstruct,
        )
        return prediction.result.patient


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _measures(patient: Any) -> dict[str, Any]:
    return {m: getattr(patient, m) for m in MEASURES}


@contextlib.contextmanager
def _captured_log() -> Iterator[io.StringIO]:
    """Collect the petseg log records and warnings raised while a study runs."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("petseg")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield buffer
            finally:
                _write_warnings(buffer, caught)
    finally:
        logger.removeHandler(handler)


def _write_warnings(buffer: io.StringIO, caught: list[warnings.WarningMessage]) -> None:
    """Each distinct warning once, with its count."""
    seen: dict[str, int] = {}
    for w in caught:
        text = f"warning: {w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
        seen[text] = seen.get(text, 0) + 1
    for text, count in seen.items():
        buffer.write(text + (f" [x{count}]" if count > 1 else "") + "\n")


def _limit_threads() -> None:
    """One thread per worker: set torch's pool to 1 if torch is loaded (BLAS/OpenMP pools
    are limited through the workers' environment)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _retire_result(target: Path, study: StudyInput, reason: str) -> None:
    """Replace the earlier result in ``target`` by a note of the redo, keeping its reviews
    and its TotalSegmentator output (which the redo may reuse, petseg.workflows)."""
    from petseg.io.organs import TOTALSEGMENTATOR_CACHE

    note = {
        "study_id": study.id,
        "reason": reason,
        "since_utc": _now(),
        "petseg_version": __version__,
    }
    with atomic_dir(target, force=True, keep=(*KEPT_ON_RERUN, TOTALSEGMENTATOR_CACHE)) as tmp:
        write_json_atomic(tmp / REDO_RECORD, note)


def process_study(
    study: StudyInput, out_dir: str, pipeline: Pipeline, params_hash: str
) -> dict[str, Any]:
    """Process one study unless its completion record says it is finished; return its row.

    Never raises for a failing study: the row has ``status`` "failed" and ``error``.
    The study folder ``out_dir/<id>`` appears only complete (atomic rename); the log of
    the attempt goes to ``out_dir/logs/<id>.log``.

    Parameters
    ----------
    study : StudyInput
        The study.
    out_dir : str
        The run folder (a string: it travels to Dask workers).
    pipeline : Pipeline
        What to run.
    params_hash : str
        :func:`~petseg.cohort.manifest.parameters_hash` of the pipeline's parameters.

    Returns
    -------
    dict
        The study's row of ``cohort.csv``.
    """
    _limit_threads()
    out = Path(out_dir)
    target = out / study.id
    start = time.perf_counter()
    started = _now()
    row: dict[str, Any] = {"id": study.id, "input": study.kind, "error": ""}
    lines = [f"{started} petseg {__version__} study {study.id} on {socket.gethostname()}"]
    with _captured_log() as captured:
        try:
            checksums = input_checksums(study)
            record = read_done_record(target)
            reason = skip_reason(record, checksums, params_hash)
            if reason is None and record is not None:
                row.update(status="skipped", seconds=record.get("seconds"), **record["patient"])
                return row
            lines.append(f"running: {reason}; {len(checksums)} input file(s)")
            if target.exists() or target.is_symlink():
                _retire_result(target, study, str(reason))
            inputs = [study.pet, study.ct, study.dicom]
            with atomic_dir(target, force=True, inputs=inputs, keep=KEPT_ON_RERUN) as tmp:
                patient = pipeline.run(study, tmp)
                seconds = round(time.perf_counter() - start, 3)
                measures = _measures(patient)
                done = {
                    "study_id": study.id,
                    "status": "done",
                    "petseg_version": __version__,
                    "parameters_hash": params_hash,
                    "parameters": pipeline.parameters(),
                    "inputs": checksums,
                    "patient": measures,
                    "started_utc": started,
                    "finished_utc": _now(),
                    "seconds": seconds,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                }
                write_json_atomic(tmp / DONE_RECORD, to_jsonable(done), force=True)
            row.update(status="done", seconds=seconds, **measures)
        except Exception as err:
            row.update(status="failed", seconds=round(time.perf_counter() - start, 3))
            row["error"] = f"{type(err).__name__}: {err}"
            lines.append(traceback.format_exc().rstrip())
    lines.append(captured.getvalue().rstrip())
    lines.append(f"{row['status']} in {row['seconds']} s")
    with contextlib.suppress(OSError):
        with atomic_file(out / "logs" / f"{study.id}.log", force=True) as tmp_log:
            tmp_log.write_text("\n".join(x for x in lines if x) + "\n", encoding="utf-8")
    return row


def default_workers(n_studies: int, *, gpu: bool = False) -> int:
    """Local workers: one per CPU core available to this process, at most one per 4 GiB of
    memory and one per study; with ``gpu``, one per visible CUDA GPU (one model per GPU).
    At least 1.

    Parameters
    ----------
    n_studies : int
        Studies to process.
    gpu : bool
        Workers run a network on CUDA.

    Returns
    -------
    int
    """
    import psutil

    if gpu:
        import torch

        return max(1, min(torch.cuda.device_count(), n_studies))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    by_memory = int(psutil.virtual_memory().total // _MEMORY_PER_WORKER_BYTES)
    return max(1, min(cores or 1, by_memory, n_studies))


@dataclass
class CohortRun:
    """What :func:`run_cohort` did. ``rows`` are sorted by study id.

    Attributes
    ----------
    out_dir : Path
        The run folder.
    rows : list of dict
        One row per study (``cohort.csv``).
    workers : int or str
        Worker processes used, the scheduler address, or ``"in-process"``.
    seconds : float
        Wall time of the run in s.
    evaluation : dict or None
        ``summary.json`` of the evaluation against ``truth``.
    counts : dict of str to int
        Studies done, skipped and failed.
    """

    out_dir: Path
    rows: list[dict[str, Any]]
    workers: int | str
    seconds: float
    evaluation: dict[str, Any] | None = None
    counts: dict[str, int] = field(default_factory=dict)


@contextlib.contextmanager
def _run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` (released by the OS even on SIGKILL)."""
    import fcntl

    state = out / ".petseg"
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputExistsError(
                f"another petseg run is writing to {out}; wait for it or choose another --out"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_run_parameters(out: Path, parameters: dict[str, Any], force: bool) -> None:
    path = out / ".petseg" / "run.json"
    digest = parameters_hash(parameters)
    if path.is_file():
        import json

        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous.get("parameters_hash") != digest and not force:
            changed = sorted(
                k
                for k in set(previous.get("parameters", {})) | set(parameters)
                if previous.get("parameters", {}).get(k) != parameters.get(k)
            )
            raise OutputExistsError(
                f"{out} holds a run made with other parameters (changed: {', '.join(changed)}); "
                "choose another --out, or pass --force to redo its studies with the new ones"
            )
    write_json_atomic(
        path,
        {"petseg_version": __version__, "parameters_hash": digest, "parameters": parameters},
        force=True,
    )


def _append_run_log(out: Path, line: str) -> None:
    with open(out / "logs" / "run.log", "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _execute(
    studies: Sequence[StudyInput],
    out: Path,
    pipeline: Pipeline,
    params_hash: str,
    *,
    workers: int | None,
    scheduler: str | None,
    on_row: Callable[[dict[str, Any]], None],
) -> int | str:
    """Run every study; call ``on_row`` as each finishes. Return the worker count used."""
    if workers == 0 and scheduler is None:
        for study in studies:
            on_row(process_study(study, str(out), pipeline, params_hash))
        return "in-process"

    from distributed import Client, LocalCluster, as_completed

    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            client = stack.enter_context(Client(scheduler))
            used: int | str = scheduler
        else:
            gpu = getattr(pipeline, "device", "cpu") == "cuda"
            n = workers or default_workers(len(studies), gpu=gpu)
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                    env={
                        "OMP_NUM_THREADS": "1",
                        "MKL_NUM_THREADS": "1",
                        "OPENBLAS_NUM_THREADS": "1",
                    },
                )
            )
            client = stack.enter_context(Client(cluster))
            used = n
        token = f"{os.getpid()}-{time.time_ns()}"
        futures = {
            client.submit(
                process_study,
                study,
                str(out),
                pipeline,
                params_hash,
                key=f"petseg-study-{study.id}-{token}",
                pure=False,
            ): study
            for study in studies
        }
        for future in as_completed(futures):
            study = futures[future]
            try:
                row = future.result()
            except Exception as err:  # the worker died (KilledWorker) or the task was lost
                row = {
                    "id": study.id,
                    "input": study.kind,
                    "status": "failed",
                    "error": f"{type(err).__name__}: {err}",
                }
            on_row(row)
            future.release()
    return used


def run_cohort(
    cohort: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    pipeline: Pipeline,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    truth: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool = True,
) -> CohortRun:
    """Process every study of ``cohort`` with ``pipeline``; write ``OUT`` (see module doc).

    Parameters
    ----------
    cohort : path
        Folder of studies or CSV manifest (:func:`petseg.cohort.discover_studies`).
    out_dir : path
        Run folder: new, empty, or a run folder to resume (rerunning with the same
        arguments); never an input or a folder holding one.
    pipeline : Pipeline
        :class:`SegmentPipeline`, :class:`PredictPipeline` or another :class:`Pipeline`.
    workers : int, optional
        Local Dask worker processes (1 thread each); None sizes the cluster to the
        machine (:func:`default_workers`); 0 runs in this process without Dask.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) instead of a local
        cluster; its workers must see the cohort and ``out_dir`` at the same paths.
    truth : path, optional
        Folder of true lesion maps: ``petseg evaluate`` runs at the end, into
        ``OUT/evaluation``, when no study failed.
    force : bool
        Redo a run folder made with other parameters.
    progress : bool
        Show a progress bar with per-study status and ETA (on stderr).

    Returns
    -------
    CohortRun
    """
    start = time.perf_counter()
    if workers is not None and workers < 0:
        raise ValueError(f"workers must be >= 0 (0: in this process), got {workers}")
    studies = _discover(cohort)
    inputs = [cohort, truth, *(p for s in studies for p in (s.pet, s.ct, s.dicom))]
    out = claim_dir(Path(out_dir).resolve(), kind=RUN_KIND, inputs=inputs)
    parameters = pipeline.parameters()
    params_hash = parameters_hash(parameters)
    with _run_lock(out):
        _check_run_parameters(out, parameters, force)
        clean_partial_outputs(out)
        (out / "logs").mkdir(exist_ok=True)
        _append_run_log(out, f"{_now()} start: {len(studies)} studies, petseg {__version__}")
        log = _RowLog(out, len(studies), progress)
        try:
            used = _execute(
                studies,
                out,
                pipeline,
                params_hash,
                workers=workers,
                scheduler=scheduler,
                on_row=log,
            )
        finally:
            log.close()
        rows = sort_rows(log.rows)
        _write_run_tables(out, cohort, parameters, params_hash, log.counts, rows)
        evaluation = _evaluate_run(out, truth, log.counts)
    return CohortRun(
        out_dir=out,
        rows=rows,
        workers=used,
        seconds=time.perf_counter() - start,
        evaluation=evaluation,
        counts=log.counts,
    )


def _discover(cohort: str | os.PathLike[str]) -> list[StudyInput]:
    """The cohort's studies with absolute paths (workers may run elsewhere), ids checked."""
    studies = discover_studies(Path(cohort).resolve())
    clash = sorted({s.id for s in studies} & set(_RESERVED))
    if clash:
        raise ValueError(
            f"study id(s) {clash} clash with the run folder's own {_RESERVED}; rename them"
        )
    return studies


class _RowLog:
    """Collects the rows of finished studies: counts, ``logs/run.log`` and the progress bar."""

    def __init__(self, out: Path, total: int, progress: bool) -> None:
        from tqdm import tqdm

        self.out = out
        self.progress = progress
        self.rows: list[dict[str, Any]] = []
        self.counts = {"done": 0, "skipped": 0, "failed": 0}
        self.bar = tqdm(total=total, unit="study", disable=not progress, file=sys.stderr)

    def __call__(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.counts[row["status"]] += 1
        line = f"{row['id']}: {row['status']}"
        if row["status"] == "failed":
            line += f" — {row['error']}"
        elif row["status"] == "done":
            line += f" ({row.get('seconds')} s, {row.get('lesion_count')} lesions)"
        _append_run_log(self.out, f"{_now()} {line}")
        if self.progress:
            self.bar.write(line, file=sys.stderr)
        self.bar.set_postfix(self.counts, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _write_run_tables(
    out: Path,
    cohort: str | os.PathLike[str],
    parameters: dict[str, Any],
    params_hash: str,
    counts: dict[str, int],
    rows: list[dict[str, Any]],
) -> None:
    """``cohort.csv``, ``cohort.json`` and the run log's last line."""
    write_cohort_csv(out / "cohort.csv", rows)
    write_json_atomic(
        out / "cohort.json",
        to_jsonable(
            {
                "petseg_version": __version__,
                "created_utc": _now(),
                "cohort": str(Path(cohort).resolve()),
                "parameters": parameters,
                "parameters_hash": params_hash,
                "counts": counts,
                "studies": rows,
            }
        ),
        force=True,
    )
    _append_run_log(out, f"{_now()} end: {counts}")


def _evaluate_run(
    out: Path, truth: str | os.PathLike[str] | None, counts: dict[str, int]
) -> dict[str, Any] | None:
    """``petseg evaluate`` of the run against ``truth`` (skipped when a study failed)."""
    if truth is None:
        return None
    if counts["failed"]:
        _append_run_log(out, f"{_now()} evaluation skipped: {counts['failed']} failed")
        return None
    from petseg.evaluate import evaluate_cohort

    return evaluate_cohort({"petseg": out}, truth, out / "evaluation", force=True)
