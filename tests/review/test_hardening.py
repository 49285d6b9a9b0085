"""The review server under broken files, hostile requests and a second tab: every request
gets a JSON answer, no connection is dropped or held, no unsaved edit is dropped."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from petseg.io.nifti import write_nifti
from petseg.review import http_io
from petseg.review.app import MAX_SESSIONS
from petseg.review.security import REQUEST_HEADER
from petseg.review.server import ReviewServer, make_server
from petseg.study import Geometry

from .conftest import make_case
from .test_server import Client, review_files


@pytest.fixture
def serving(cohort_dir: Path) -> Iterator[tuple[ReviewServer, Client]]:
    server, _url = make_server(cohort_dir, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server, Client(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def raw_exchange(port: int, data: bytes, timeout: float = 20.0) -> tuple[int, dict[str, Any]]:
    """Send raw bytes; return the status and JSON body of the answer (fails on a dropped
    or held connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            length = [int(v) for k, v in (line.split(b":", 1) for line in head.split(b"\r\n")[1:])
                      if k.strip().lower() == b"content-length"]  # fmt: skip
            if length and len(body) >= length[0]:
                break
    assert answer, "the connection was closed without an answer"
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    return int(head.split()[1]), json.loads(body)


def test_broken_cases_are_listed_and_answer_with_json(
    cohort_dir: Path, tmp_path: Path, serving: tuple[ReviewServer, Client]
) -> None:
    _server, client = serving
    make_case(cohort_dir / "corrupt")
    (cohort_dir / "corrupt" / "report.json").write_text('{"patient_id": ', encoding="utf-8")
    make_case(cohort_dir / "othergrid")
    write_nifti(
        cohort_dir / "othergrid" / "lesions.nii.gz",
        np.zeros((10, 16, 16), np.int32),
        Geometry.from_spacing((10, 16, 16), (6.0, 4.0, 4.0)),
        force=True,
    )
    make_case(cohort_dir / "probability")
    write_nifti(
        cohort_dir / "probability" / "lesions.nii.gz",
        np.full((20, 32, 32), 0.5, np.float32),
        Geometry.from_spacing((20, 32, 32), (3.0, 2.0, 2.0), origin=(-31.0, -31.0, 0.0)),
        force=True,
    )
    os.symlink(make_case(tmp_path / "outside"), cohort_dir / "linked")
    status, listing = client.request("GET", "/api/cases")
    assert status == 200  # the whole cohort is listed, whatever one case holds
    rows = {row["case_id"]: row for row in listing["cases"]}
    assert sorted(rows) == ["case01", "case02", "corrupt", "othergrid", "probability"]
    assert rows["corrupt"]["status"] == "unreadable" and "report.json" in rows["corrupt"]["error"]
    for case, words in (
        ("corrupt", "not readable JSON"),
        ("othergrid", "not on the PET grid"),
        ("probability", "non-integer values"),
        ("linked", "unknown case"),
    ):
        status, data = client.request("POST", f"/api/case/{case}/open")
        assert status in (404, 422) and words in data["error"], (case, data)
    assert client.request("GET", "/api/cases")[0] == 200  # still serving


def test_malformed_and_incomplete_requests_get_json(
    monkeypatch: pytest.MonkeyPatch, serving: tuple[ReviewServer, Client]
) -> None:
    server, client = serving
    port = server.server_address[1]
    sid = client.open()["session"]
    monkeypatch.setattr(http_io, "BODY_TIMEOUT_S", 0.5)
    head = f"POST /api/session/{sid}/remove HTTP/1.1\r\nHost: 127.0.0.1\r\n{REQUEST_HEADER}: 1\r\n"
    cases = {
        "a body shorter than its Content-Length": (
            (head + "Content-Length: 100\r\n\r\n").encode() + b'{"lab',
            408,
        ),
        "a malformed request line": (b"GARBAGE\r\n\r\n", 400),
        "a bad Content-Length": ((head + "Content-Length: abc\r\n\r\n").encode(), 400),
        "JSON nested 100 000 deep": (
            (head + "Content-Length: 100000\r\n\r\n").encode() + b"[" * 100_000,
            400,
        ),
        "a body that is not UTF-8": (
            (head + "Content-Length: 14\r\n\r\n").encode() + b'{"label": "\xff"}',
            400,
        ),
    }
    for name, (data, expected) in cases.items():
        start = time.monotonic()
        status, body = raw_exchange(port, data)
        assert status == expected and body["error"], (name, body)
        assert time.monotonic() - start < 10, name
    with socket.create_connection(("127.0.0.1", port), timeout=20) as idle:
        assert idle.recv(1) == b""  # a silent connection is closed (after IDLE_TIMEOUT_S)
    assert client.request("GET", f"/api/session/{sid}/state")[0] == 200


def test_cross_origin_and_headerless_posts_are_refused(
    cohort_dir: Path, serving: tuple[ReviewServer, Client]
) -> None:
    server, client = serving
    port = server.server_address[1]
    for origin in ("http://evil.example", "null"):  # another site's page, a file:// page
        status, data = client.request("POST", "/api/case/case01/open", headers={"Origin": origin})
        assert status == 403 and "cross-origin" in data["error"]
    # a POST without the header (the client above always sends it)
    request = f"POST /api/case/case01/open HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
    status, data = raw_exchange(port, request.encode())
    assert status == 403 and REQUEST_HEADER in data["error"]
    same_origin = {"Origin": f"http://127.0.0.1:{port}", "Host": f"127.0.0.1:{port}"}
    assert client.request("POST", "/api/case/case01/open", headers=same_origin)[0] == 200
    assert review_files(cohort_dir) == []


def test_no_unsaved_edit_is_evicted_by_other_tabs(
    cohort_dir: Path, serving: tuple[ReviewServer, Client]
) -> None:
    _server, client = serving
    first = client.open()["session"]
    assert client.request("POST", f"/api/session/{first}/remove", {"label": 1})[0] == 200
    for _ in range(MAX_SESSIONS + 2):  # other tabs come and go: idle sessions are evicted
        client.open("case02")
    status, state = client.request("GET", f"/api/session/{first}/state")
    assert status == 200 and state["unsaved"] and state["edits"][0]["label"] == 1
    tabs = [first]
    while len(tabs) < MAX_SESSIONS:  # every slot holds unsaved edits
        sid = client.open()["session"]
        assert client.request("POST", f"/api/session/{sid}/remove", {"label": 2})[0] == 200
        tabs.append(sid)
    status, data = client.request("POST", "/api/case/case01/open")
    assert status == 409 and "unsaved edits" in data["error"]
    assert all(client.request("GET", f"/api/session/{s}/state")[1]["unsaved"] for s in tabs)
    # a tab that leaves closes its session, and the slot is free again
    assert client.request("POST", f"/api/session/{tabs[-1]}/close")[0] == 200
    assert client.request("POST", "/api/case/case01/open")[0] == 200
    assert review_files(cohort_dir) == []


def test_an_internal_error_is_a_json_500_with_a_log(
    cohort_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serving: tuple[ReviewServer, Client],
) -> None:
    monkeypatch.setenv("PETSEG_LOG_DIR", str(tmp_path / "logs"))
    report = json.loads((cohort_dir / "case01" / "report.json").read_text())
    report["reference"] = "liver"  # a report petseg never writes: no statistics
    (cohort_dir / "case01" / "report.json").write_text(json.dumps(report))
    _server, client = serving
    sid = client.open()["session"]
    status, data = client.request(
        "POST", f"/api/session/{sid}/add", {"seed": [13, 9, 22], "method": "liver"}
    )
    assert status == 500 and "traceback in" in data["error"]
    (log,) = (tmp_path / "logs").iterdir()
    assert "Traceback" in log.read_text() and str(log) in data["error"]
    assert client.request("GET", f"/api/session/{sid}/state")[0] == 200


def test_exporting_a_version_twice_answers_with_the_same_files(sts_study, tmp_path: Path) -> None:
    from petseg.io import load_study
    from petseg.pipeline import SegmentParams
    from petseg.review.app import ReviewApp
    from petseg.workflows import segment_to_folder

    case_dir = tmp_path / "cohort" / "sts019"
    study = load_study(sts_study("STS_019"))
    segment_to_folder(study, SegmentParams(method="fixed", threshold=2.5), case_dir)
    app = ReviewApp(tmp_path / "cohort")
    sid = app.open_case("sts019")["session"]
    app.session_action(sid, "remove", {"label": 3})
    save = {"base_version": 0, "reviewer": "dr", "score": 4, "comment": "", "active_seconds": 1}
    app.session_action(sid, "save", save)
    first = app.session_action(sid, "export", {"format": "rtstruct"})
    second = app.session_action(sid, "export", {"format": "rtstruct"})
    assert first["existing"] is False and second["existing"] is True
    assert (
        first["written"]
        == second["written"]
        == [str(case_dir / "review" / "v001" / "export-rtstruct" / "rtstruct.dcm")]
    )


def test_exporting_after_the_pet_series_moved_is_refused_in_one_line(
    sts_study, tmp_path: Path
) -> None:
    import shutil

    from petseg.io import load_study
    from petseg.pipeline import SegmentParams
    from petseg.review.app import ReviewApp
    from petseg.review.errors import UnprocessableError
    from petseg.workflows import segment_to_folder

    pet = tmp_path / "exam" / "pet"
    shutil.copytree(sts_study("STS_019") / "pet", pet)
    case_dir = tmp_path / "cohort" / "sts019"
    segment_to_folder(load_study(pet), SegmentParams(method="fixed", threshold=2.5), case_dir)
    app = ReviewApp(tmp_path / "cohort")
    sid = app.open_case("sts019")["session"]
    app.session_action(sid, "remove", {"label": 3})
    save = {"base_version": 0, "reviewer": "dr", "score": 4, "comment": "", "active_seconds": 1}
    app.session_action(sid, "save", save)
    pet.rename(tmp_path / "exam" / "moved")
    with pytest.raises(UnprocessableError, match=r"cannot be read .*put it back") as caught:
        app.session_action(sid, "export", {"format": "seg"})
    assert "\n" not in str(caught.value)
    assert not (case_dir / "review" / "v001" / "export-seg").exists()


def test_a_non_loopback_host_warns_and_shows_a_reachable_url(cohort_dir: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "petseg", "review", str(cohort_dir), "--host", "0.0.0.0",
         "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    with process.stdout:
        try:
            lines = [process.stdout.readline() for _ in range(3)]
        finally:
            process.terminate()
            process.wait(timeout=20)
    assert "WARNING" in lines[0] and "other machines" in lines[0]
    serving = lines[1]
    assert f"http://{socket.gethostname()}:" in serving and "?token=" in serving
    assert "127.0.0.1" not in serving and "http://127.0.0.1:" in lines[2]
