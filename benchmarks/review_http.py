"""The review server under hostile and broken requests, and its speed on ordinary ones.

Starts ``petseg review`` as a separate process on a small cohort that holds, beside a good
case, a case with a corrupt ``report.json``, a case whose lesion map is on another grid and
a symbolic link to a case outside the cohort. Then sends, over raw sockets:

* requests the HTTP layer must survive: a body shorter than its ``Content-Length``, a
  connection that never sends a request, a malformed request line, a 64 KiB header,
  chunked and oversized bodies, bad ``Content-Length`` values, deeply nested and invalid
  JSON, unknown methods, cross-origin requests;
* requests on the broken cases.

Each outcome is classed as ``json`` (an HTTP answer with a JSON body), ``other`` (an HTTP
answer with another body), ``dropped`` (the connection closed without an answer) or
``held`` (no answer and still open after ``--wait`` seconds). Then the speed of ordinary
requests: the median time of ``GET /api/session/<sid>/state`` (one keep-alive
connection) and of the PET download.

Run: ``python benchmarks/review_http.py [--petseg-src DIR] [--wait 15]``; ``--petseg-src``
runs the server from another source tree (e.g. a checkout of an earlier version) as the
baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from petseg.io.nifti import write_nifti
from petseg.study import Geometry

SHAPE = (100, 128, 128)  # 6.5 MB of float32 PET


def make_case(folder: Path, *, labels_shape: tuple[int, int, int] = SHAPE) -> None:
    geometry = Geometry.from_spacing(SHAPE, (3.0, 2.0, 2.0))
    rng = np.random.default_rng(0)
    suv = (1.0 + 0.1 * rng.standard_normal(SHAPE)).astype(np.float32)
    suv[40:46, 60:66, 60:66] = 8.0
    labels = np.zeros(labels_shape, np.int32)
    labels[40:46, 60:66, 60:66] = 1
    write_nifti(folder / "pet_suv.nii.gz", suv, geometry)
    write_nifti(folder / "lesions.nii.gz", labels, Geometry.from_spacing(labels_shape, (3, 2, 2)))
    report = {
        "created_utc": "2026-01-01T00:00:00+00:00",
        "patient_id": folder.name,
        "method": "fixed",
        "threshold_suv": 4.0,
        "parameters": {"connectivity": 26},
        "lesions": [],
    }
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")


def make_cohort(root: Path) -> Path:
    cohort = root / "cohort"
    make_case(cohort / "good")
    make_case(cohort / "corrupt")
    (cohort / "corrupt" / "report.json").write_text('{"patient_id": ', encoding="utf-8")
    make_case(cohort / "othergrid", labels_shape=(50, 64, 64))
    make_case(root / "outside")
    os.symlink(root / "outside", cohort / "linked")
    return cohort


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def exchange(port: int, raw: bytes, wait: float) -> tuple[str, str]:
    """Send ``raw``; return (class, detail) of what came back."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        try:
            sock.sendall(raw)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            return "held", f"no answer after {wait:.0f} s"
        except (ConnectionResetError, BrokenPipeError):
            return "dropped", "connection reset"
    if not data:
        return "dropped", f"closed after {time.monotonic() - start:.1f} s"
    head = data.split(b"\r\n", 1)[0].decode("latin-1")[:40]
    headers = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    kind = "json" if "content-type: application/json" in headers else "other"
    return kind, f"{head} ({time.monotonic() - start:.1f} s)"


def request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if (
        method == "POST"
        and "Content-Length" not in (headers or {})
        and "Transfer-Encoding" not in (headers or {})
    ):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def open_session(port: int) -> str:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    post = {"Content-Type": "application/json", "X-Petseg-Request": "1"}
    conn.request("POST", "/api/case/good/open", body=b"", headers=post)
    answer = json.loads(conn.getresponse().read())
    conn.close()
    return str(answer["session"])


def probes(sid: str) -> dict[str, bytes]:
    post = {"Content-Type": "application/json", "X-Petseg-Request": "1"}
    remove = f"/api/session/{sid}/remove"
    chunked = b'c\r\n{"label": 9}\r\n0\r\n\r\n'
    cross_origin = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    return {
        "body shorter than Content-Length": request(
            "POST", remove, b'{"lab', {**post, "Content-Length": "100"}
        ),
        "connection that sends nothing": b"",
        "malformed request line": b"GARBAGE\r\n\r\n",
        "64 KiB header": request("GET", "/api/cases", headers={"X-Big": "a" * 65536}),
        "chunked body": request("POST", remove, chunked, {**post, "Transfer-Encoding": "chunked"}),
        "Content-Length: abc": request("POST", remove, b"", {**post, "Content-Length": "abc"}),
        "Content-Length: -5": request("POST", remove, b"", {**post, "Content-Length": "-5"}),
        "2 MB body": request("POST", remove, b"{" + b" " * 2_000_000 + b"}", post),
        "JSON nested 100 000 deep": request("POST", remove, b"[" * 100_000, post),
        "invalid UTF-8 body": request("POST", remove, b'{"label": "\xff"}', post),
        "DELETE": request("DELETE", "/api/cases"),
        "NUL in the path": request("GET", "/static/app.js%00.png"),
        "cross-origin open": request("POST", "/api/case/good/open", b"", cross_origin),
        "GET /api/cases (corrupt, other-grid, linked cases present)": request("GET", "/api/cases"),
        "open the case with a corrupt report.json": request(
            "POST", "/api/case/corrupt/open", b"", post
        ),
        "open the case with lesions on another grid": request(
            "POST", "/api/case/othergrid/open", b"", post
        ),
        "open the linked case outside the cohort": request(
            "POST", "/api/case/linked/open", b"", post
        ),
    }


def speed(port: int, sid: str, repeats: int) -> dict[str, float]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.connect()  # no Nagle delay on the client's side, as in a browser
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        conn.request("GET", f"/api/session/{sid}/state")
        conn.getresponse().read()
        times.append(1000 * (time.perf_counter() - start))
    files = []
    for _ in range(max(3, repeats // 20)):
        start = time.perf_counter()
        conn.request("GET", "/api/case/good/pet.nii.gz")
        size = len(conn.getresponse().read())
        files.append(1000 * (time.perf_counter() - start))
    conn.close()
    return {
        "state_ms": statistics.median(times),
        "pet_ms": statistics.median(files),
        "pet_mb": size / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--petseg-src", type=Path, help="source tree to run the server from")
    parser.add_argument("--wait", type=float, default=15.0, help="seconds to wait for answers")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    env = dict(os.environ)
    if args.petseg_src is not None:
        env["PYTHONPATH"] = str(args.petseg_src.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        cohort = make_cohort(Path(tmp))
        port = free_port()
        command = [sys.executable, "-m", "petseg", "review", str(cohort), "--port", str(port),
                   "--no-browser"]  # fmt: skip
        server = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError as err:
                    if server.poll() is not None or time.monotonic() > deadline:
                        output = server.stdout.read() if server.stdout else ""
                        raise RuntimeError(f"the server did not start: {output}") from err
                    time.sleep(0.2)
            sid = open_session(port)
            outcomes: Counter[str] = Counter()
            print(f"{'probe':60s} {'class':8s} answer")
            for name, raw in probes(sid).items():
                kind, detail = exchange(port, raw, args.wait)
                outcomes[kind] += 1
                print(f"{name:60s} {kind:8s} {detail}")
            alive = exchange(port, request("GET", "/api/cases"), args.wait)
            print(f"{'(afterwards) GET /api/cases':60s} {alive[0]:8s} {alive[1]}")
            print("outcomes:", dict(outcomes))
            timing = speed(port, sid, args.repeats)
            print(
                f"GET state: median {timing['state_ms']:.2f} ms over {args.repeats}; "
                f"GET pet.nii.gz ({timing['pet_mb']:.1f} MB): median {timing['pet_ms']:.1f} ms"
            )
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
