"""Review server speed on a Carlsen-sized study (336 × 336 × 300 voxels of 2 × 2 × 3 mm).

Measures, on localhost through real HTTP:

* remove-lesion and add-by-seed (liver method) round trips: wall time seen by the client
  and the server's own time (``Server-Timing``); target ≤ 200 ms server time each;
* the label-map download the page needs for a full reload;
* the first paint of the study in headless Chromium with software WebGL (SwiftShader),
  if selenium, chromium and chromedriver are installed (skip with ``--no-browser``):
  with the reduced preview of :mod:`petseg.review.preview`, and, as the baseline of the
  ratio, with ``preview_voxels=0`` (full resolution at once); target ≤ 2 s. The time
  until full resolution is shown is printed too.

Baseline, measured in the same run: the library calls on the whole image
(``petseg.lesions.remove_labels``, ``petseg.edit.add_lesion_by_seed``), i.e. what an
edit would cost without the session's per-lesion cache and cropped calls; the printed
ratio is the server's time over that baseline.

Run: ``python benchmarks/review_roundtrip.py [--repeats 5] [--page-loads 3] [--no-browser]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from petseg.edit import add_lesion_by_seed
from petseg.io.nifti import write_nifti
from petseg.lesions import label_components, patient_stats, quantify_lesions, remove_labels
from petseg.review.preview import PREVIEW_VOXELS
from petseg.review.security import REQUEST_HEADER
from petseg.review.server import make_server
from petseg.study import Geometry

SHAPE = (300, 336, 336)
SPACING = (3.0, 2.0, 2.0)


def make_study(folder: Path, seed: int = 0) -> tuple[tuple[int, int, int], int]:
    """A synthetic whole-body-sized PET/CT case folder; returns a missed lesion's seed and a label."""
    rng = np.random.default_rng(seed)
    geometry = Geometry.from_spacing(SHAPE, SPACING)
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    body = ((y - 168) / 110.0) ** 2 + ((x - 168) / 150.0) ** 2 <= 1.0
    body = np.broadcast_to(body, SHAPE)
    suv = np.where(body, 1.0, 0.05).astype(np.float32)
    suv += rng.normal(0, 0.1, SHAPE).astype(np.float32) * body
    suv[100:160, 140:220, 60:150] += 1.0  # liver, SUV ~2
    centres = [(60 + 20 * n, 120 + 7 * n, 100 + 12 * n) for n in range(12)]
    for n, (ck, cj, ci) in enumerate(centres):
        r = 3 + n % 4
        ball = ((z - ck) * 1.5) ** 2 + (y - cj) ** 2 + (x - ci) ** 2 <= r**2
        suv[ball] = 6.0 + n
    mask = suv > 4.0
    labels = label_components(mask)
    missed = centres[-1]
    labels[labels == labels[missed]] = 0  # the last lesion is "missed" by the segmentation
    ct = np.where(body, 40.0, -1000.0).astype(np.float32)
    ct += rng.normal(0, 20, SHAPE).astype(np.float32) * body
    folder.mkdir(parents=True)
    write_nifti(folder / "pet_suv.nii.gz", suv, geometry)
    write_nifti(folder / "ct.nii.gz", ct, geometry)
    write_nifti(folder / "lesions.nii.gz", labels, geometry)
    stats = quantify_lesions(suv, labels, geometry)
    report = {
        "petseg_version": "benchmark",
        "synthetic": True,
        "method": "liver",
        "inputs": {"pet": "synthetic"},
        "parameters": {"method": "liver", "connectivity": 26},
        "geometry": geometry.to_dict(),
        "reference": {"organ": "liver", "mean": 2.0, "sd": 0.1, "voxels": 1000, "volume_ml": 12.0},
        "threshold_suv": 3.2,
        "patient": patient_stats(stats).to_dict(),
        "lesions": [s.to_dict() for s in stats],
    }
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
    return missed, int(stats[0].label)


def post(port: int, path: str, body: dict | None = None) -> tuple[int, dict, float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    data = json.dumps(body or {}).encode()
    started = time.perf_counter()
    headers = {"Content-Type": "application/json", REQUEST_HEADER: "1"}
    conn.request("POST", path, body=data, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    wall = 1000 * (time.perf_counter() - started)
    server = float(response.getheader("Server-Timing", "app;dur=nan").split("dur=")[1])
    conn.close()
    return response.status, json.loads(raw), wall, server


def get(port: int, path: str) -> tuple[int, int, float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    raw = response.read()
    wall = 1000 * (time.perf_counter() - started)
    server = float(response.getheader("Server-Timing", "app;dur=nan").split("dur=")[1])
    conn.close()
    return response.status, len(raw), wall, server


def page_load(url: str, tmp: Path) -> dict[str, float] | None:
    """Open the page in headless Chromium; the page's own timings once fully loaded."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        print("first paint: skipped (selenium not installed)")
        return None
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
        "--window-size=1500,900",
        f"--user-data-dir={tmp / 'profile'}",
    ):
        options.add_argument(flag)
    options.page_load_strategy = "none"  # poll the page's own timer instead of load events
    driver = webdriver.Chrome(
        service=Service(executable_path="/usr/bin/chromedriver"), options=options
    )
    try:
        driver.get(url)
        end = time.monotonic() + 600
        driver.set_script_timeout(600)
        while time.monotonic() < end:
            try:
                timings = driver.execute_script(
                    "return document.body && document.body.dataset.loaded"
                    " && window.petsegReview.timings"
                )
            except TimeoutException:  # the page's main thread is busy uploading the volumes
                continue
            if timings:
                return {k: float(v) for k, v in timings.items()}
            time.sleep(0.2)
        print("page load: timed out after 600 s")
        return None
    finally:
        driver.quit()


def fresh_page_load(tmp: Path, name: str, *, preview_voxels: int) -> dict[str, float] | None:
    """A new server started as ``petseg review`` starts it (the first case read before the
    browser opens; the time it took is returned as ``preload_ms``), and one page load in
    a new browser profile."""
    server, url = make_server(tmp / "case", port=0, preview_voxels=preview_voxels)
    t0 = time.perf_counter()
    first = server.app.preload_first_case()
    assert first is not None
    first.result()
    preload_ms = 1000 * (time.perf_counter() - t0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        timings = page_load(url, tmp / name)
        return None if timings is None else timings | {"preload_ms": preload_ms}
    finally:
        server.shutdown()
        server.server_close()


def report_page_load(what: str, timings: dict[str, float]) -> None:
    """Print first paint (from navigation start) and the page's stages."""
    stages = ", ".join(
        f"{k.removesuffix('_ms')} {v:.0f}"
        for k, v in timings.items()
        if k.endswith("_ms") and k not in ("since_navigation_ms", "preload_ms")
    )
    print(
        f"{what}: first paint {timings['since_navigation_ms']:.0f} ms from navigation start, "
        f"after {timings['preload_ms']:.0f} ms of reading the case before the browser opened "
        f"(page, ms from opening the case: {stages})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument(
        "--page-loads", type=int, default=3, help="page loads with the preview (median)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        missed, label = make_study(tmp / "case")
        print(f"study {SHAPE} written in {time.perf_counter() - t0:.1f} s")
        server, _url = make_server(tmp / "case", port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        t0 = time.perf_counter()
        status, opened, _, _ = post(port, "/api/case/case/open")
        assert status == 200, opened
        sid = opened["session"]
        print(
            f"open (read PET and labels, quantify {len(opened['lesions'])} lesions): {1000 * (time.perf_counter() - t0):.0f} ms"
        )

        case = server.app.case("case")
        labels = server.app.session(sid).labels.copy()
        lib_remove, lib_add = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            remove_labels(labels, [label])
            lib_remove.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter()
            add_lesion_by_seed(
                labels,
                case.suv,
                case.geometry,
                missed,
                method="liver",
                reference=case.report["reference"],
            )
            lib_add.append(1000 * (time.perf_counter() - t))

        remove_wall, remove_server, add_wall, add_server = [], [], [], []
        for _ in range(args.repeats):
            status, data, wall, srv = post(port, f"/api/session/{sid}/remove", {"label": label})
            assert status == 200, data
            remove_wall.append(wall)
            remove_server.append(srv)
            post(port, f"/api/session/{sid}/undo")
            status, data, wall, srv = post(
                port, f"/api/session/{sid}/add", {"seed": list(missed), "method": "liver"}
            )
            assert status == 200, data
            add_wall.append(wall)
            add_server.append(srv)
            post(port, f"/api/session/{sid}/undo")
        status, size, labels_wall, labels_server = get(port, f"/api/session/{sid}/labels.nii.gz")

        med = statistics.median
        print(
            f"remove round trip: server {med(remove_server):.0f} ms, client wall {med(remove_wall):.0f} ms "
            f"(median of {args.repeats}); whole-image remove_labels {med(lib_remove):.0f} ms; "
            f"ratio server/whole-image library call {med(remove_server) / med(lib_remove):.3f}; target <= 200 ms: "
            f"{'PASS' if med(remove_server) <= 200 else 'FAIL'}"
        )
        print(
            f"add-by-seed round trip: server {med(add_server):.0f} ms, client wall {med(add_wall):.0f} ms; "
            f"whole-image add_lesion_by_seed {med(lib_add):.0f} ms; ratio server/whole-image "
            f"{med(add_server) / med(lib_add):.3f}; target <= 200 ms: {'PASS' if med(add_server) <= 200 else 'FAIL'}"
        )
        print(
            f"label map download (full reload only): {size / 1e6:.1f} MB, server {labels_server:.0f} ms, wall {labels_wall:.0f} ms"
        )
        if not args.no_browser:
            step = server.app.preview_step(case)
            loads = [
                fresh_page_load(tmp, f"with-preview-{n}", preview_voxels=PREVIEW_VOXELS)
                for n in range(args.page_loads)
            ]
            baseline = fresh_page_load(tmp, "full-resolution-only", preview_voxels=0)
            previews = [t for t in loads if t]
            if previews and baseline:
                for n, preview in enumerate(previews, start=1):
                    report_page_load(f"with a {step}x-reduced preview, load {n}", preview)
                report_page_load("baseline, full resolution only (preview_voxels=0)", baseline)
                paint = statistics.median(t["since_navigation_ms"] for t in previews)
                print(
                    f"first paint, median of {len(previews)} loads: {paint:.0f} ms; ratio "
                    f"preview/baseline {paint / baseline['since_navigation_ms']:.3f}; target <= 2000 ms: "
                    f"{'PASS' if paint <= 2000 else 'FAIL'} ({paint / 2000:.2f} of target)"
                )
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
