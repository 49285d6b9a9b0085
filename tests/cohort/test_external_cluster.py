"""``petseg run --scheduler`` on a real external Dask cluster: a scheduler and two workers
started as separate processes (``dask scheduler``, ``dask worker``) on localhost. One
worker is killed (SIGKILL) while it processes a study; the run still ends with every
study done once (a study the killed worker had finished is skipped, not redone), or
with the lost studies as failed rows that a rerun finishes."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from petseg.cohort.manifest import DONE_RECORD

DASK = shutil.which("dask")
pytestmark = pytest.mark.skipif(DASK is None, reason="the dask command is not installed")
N_STUDIES = 8
TIMEOUT_S = 90.0


class Cluster:
    """A scheduler and named workers, each its own process group, always cleaned up."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.scheduler_file = folder / "scheduler.json"
        self.env = {
            **os.environ,
            "PYTHONWARNINGS": "ignore",
            "OMP_NUM_THREADS": "1",
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, command: list[str]) -> None:
        with open(self.folder / f"{name}.log", "wb") as log:
            self.processes[name] = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )

    def start(self, workers: int) -> str:
        """Start the scheduler (on a free port: ``--port 0``) and the workers; return the
        scheduler's address once every worker has registered."""
        assert DASK is not None
        self._spawn(
            "scheduler",
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(self.scheduler_file)],
        )  # fmt: skip
        deadline = time.monotonic() + TIMEOUT_S
        while not self.scheduler_file.is_file():
            self._check_alive("scheduler", deadline)
            time.sleep(0.1)
        for n in range(workers):
            self._spawn(
                f"w{n}",
                [DASK, "worker", "--scheduler-file", str(self.scheduler_file), "--name", f"w{n}",
                 "--nworkers", "1", "--nthreads", "1", "--no-nanny", "--no-dashboard",
                 "--host", "127.0.0.1"],
            )  # fmt: skip
        from distributed import Client

        with Client(scheduler_file=str(self.scheduler_file), timeout=TIMEOUT_S) as client:
            client.wait_for_workers(workers, timeout=TIMEOUT_S)
            return str(client.scheduler.address)

    def _check_alive(self, name: str, deadline: float) -> None:
        if self.processes[name].poll() is not None or time.monotonic() > deadline:
            log = (self.folder / f"{name}.log").read_text(errors="replace")
            raise AssertionError(f"{name} did not start:\n{log}")

    def kill(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Cluster, str]]:
    folder = tmp_path / "cluster"
    folder.mkdir()
    running = Cluster(folder)
    try:
        yield running, running.start(workers=2)
    finally:
        running.stop()


def _busy_worker(address: str) -> str | None:
    """The name of a worker that is processing a study right now, or None."""
    from distributed import Client

    with Client(address, timeout=TIMEOUT_S) as client:
        processing = client.processing()
        names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
    for worker, keys in processing.items():
        if any("petseg-study" in str(key) for key in keys):
            return str(names[worker])
    return None


def _rows(out: Path) -> dict[str, str]:
    with open(out / "cohort.csv", newline="", encoding="utf-8") as handle:
        return {row["id"]: row["status"] for row in csv.DictReader(handle)}


def test_a_worker_killed_mid_run_loses_no_study(tmp_path: Path, make_cohort, cluster) -> None:  # type: ignore[no-untyped-def]
    running, address = cluster
    cohort = make_cohort(tmp_path / "cohort", N_STUDIES)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "petseg", "run", str(cohort), "--out", str(out),
               "--method", "fixed", "--threshold", "4", "--no-rtstruct", "--no-progress",
               "--scheduler", address]  # fmt: skip
    with open(tmp_path / "run.log", "wb") as log:
        run = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=running.env)
    killed = None
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while killed is None and run.poll() is None and time.monotonic() < deadline:
            if list(out.glob(f"*/{DONE_RECORD}")):  # the cluster works: now kill a busy worker
                killed = _busy_worker(address)
                if killed is not None:
                    running.kill(killed)
            time.sleep(0.05)
        run.wait(timeout=TIMEOUT_S)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    printed = (tmp_path / "run.log").read_text()
    assert killed is not None, f"no worker was caught processing a study:\n{printed}"
    assert run.returncode in (0, 1), printed
    rows = _rows(out)
    assert sorted(rows) == [f"case_{c:03d}" for c in range(N_STUDIES)]
    killed_pid = running.processes[killed].pid
    for study, status in rows.items():
        record = out / study / DONE_RECORD
        if status == "skipped":  # finished on the killed worker before its answer was lost
            assert json.loads(record.read_text())["pid"] == killed_pid, study
    if "failed" in rows.values():  # the lost studies are rows to redo: a rerun finishes them
        assert "KilledWorker" in printed
        again = subprocess.run(
            command, env=running.env, capture_output=True, text=True, timeout=TIMEOUT_S
        )
        assert again.returncode == 0, again.stdout + again.stderr
        lost = {i for i, s in rows.items() if s == "failed"}
        assert {i for i, s in _rows(out).items() if s == "done"} == lost
    assert set(_rows(out).values()) <= {"done", "skipped"}
    log = (out / "logs" / "run.log").read_text()
    for case in range(N_STUDIES):  # every study finished exactly once over the runs
        study = f"case_{case:03d}"
        record = json.loads((out / study / DONE_RECORD).read_text())
        assert record["status"] == "done" and record["parameters"]["threshold"] == 4.0
        done = log.count(f"{study}: done")
        assert done == 1 or (done == 0 and record["pid"] == killed_pid), (study, log)
