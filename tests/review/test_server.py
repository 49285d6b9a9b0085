"""API tests of the review server over real HTTP: bad requests, security, concurrency."""

from __future__ import annotations

import http.client
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from petseg.io.nifti import read_nifti
from petseg.review.http_io import MAX_BODY_BYTES
from petseg.review.security import REQUEST_HEADER
from petseg.review.server import make_server

from .conftest import LESION_A, LESION_B, SEED_C, make_case


class Client:
    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.token = token

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        data = (
            body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
        )
        head = {"Content-Type": "application/json", REQUEST_HEADER: "1", **(headers or {})}
        if self.token:
            head["X-Petseg-Token"] = self.token
        try:
            try:
                conn.request(
                    method,
                    path,
                    body=data if data is not None else (b"" if method == "POST" else None),
                    headers=head,
                )
            except (BrokenPipeError, ConnectionResetError):
                # a 413 answer may close the socket before a huge body is fully sent;
                # the answer is still there to read
                pass
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        kind = response.getheader("Content-Type", "")
        return response.status, json.loads(raw) if kind.startswith("application/json") else raw

    def open(self, case_id: str = "case01") -> dict[str, Any]:
        status, data = self.request("POST", f"/api/case/{case_id}/open")
        assert status == 200, data
        return data


@pytest.fixture
def server(cohort_dir: Path):  # type: ignore[no-untyped-def]
    srv, _url = make_server(cohort_dir, port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def client(server) -> Client:  # type: ignore[no-untyped-def]
    return Client(server.server_address[1])


def review_files(cohort_dir: Path) -> list[str]:
    return sorted(
        str(p.relative_to(cohort_dir))
        for p in cohort_dir.rglob("*")
        if "review" in p.parts and not p.name.startswith(".") and p.is_file()  # .lock, marker
    )


def test_case_list_and_table1(client: Client) -> None:
    status, data = client.request("GET", "/api/cases")
    assert status == 200
    assert [c["case_id"] for c in data["cases"]] == ["case01", "case02"]
    assert all(c["status"] == "not reviewed" for c in data["cases"])
    # Table 1 shown verbatim: every criterion is a substring of the paper's text
    papers = Path(__file__).resolve().parents[2] / ".." / "shared" / "papers"
    paper = next(papers.glob("carlsen2022-*.txt"), None) if papers.is_dir() else None
    if paper is None:
        pytest.skip(f"Carlsen 2022 text not found under {papers}")
    text = paper.read_text(encoding="utf-8")
    for row in data["table1"]:
        assert f"{row['score']}. {row['rating']}\t{row['criteria']}" in text
    assert data["table1_footnote"] in text


@pytest.mark.parametrize(
    "path",
    [
        "/api/case/nope/open",
        "/api/case/../open",
        "/api/case/..%2F..%2Fetc/open",
        "/api/case/%2Fetc%2Fpasswd/open",
        "/api/case/case01%2F..%2Fcase02/open",
        "/api/case/.hidden/open",
        "/api/case/outside/open",
    ],
)
def test_unknown_or_traversing_case_is_404(
    client: Client, cohort_dir: Path, tmp_path: Path, path: str
) -> None:
    elsewhere = make_case(tmp_path / "elsewhere")
    os.symlink(elsewhere, cohort_dir / "outside")  # a symlink leaving the cohort
    status, data = client.request("POST", path)
    assert status == 404, data
    assert "error" in data
    assert review_files(cohort_dir) == []


@pytest.mark.parametrize(
    "path", ["/static/../session.py", "/static/%2e%2e/session.py", "/static/vendor/../../server.py"]
)
def test_static_traversal_is_404(client: Client, path: str) -> None:
    status, _ = client.request("GET", path)
    assert status == 404


def test_static_page_and_viewer_bundle(client: Client) -> None:
    status, page = client.request("GET", "/")
    assert status == 200 and b'src="/static/app.js"' in page
    status, bundle = client.request("GET", "/static/vendor/niivue.js")
    assert status == 200 and b"var Niivue = class" in bundle


def test_seed_outside_volume_is_422_and_writes_nothing(client: Client, cohort_dir: Path) -> None:
    sid = client.open()["session"]
    for seed in ([20, 0, 0], [0, -1, 0], [0, 0, 32]):
        status, data = client.request(
            "POST", f"/api/session/{sid}/add", {"seed": seed, "method": "liver"}
        )
        assert status == 422, data
        assert "outside the volume" in data["error"] and "(20, 32, 32)" in data["error"]
    status, data = client.request("POST", f"/api/session/{sid}/remove", {"seed": [0, 99, 0]})
    assert status == 422
    status, state = client.request("GET", f"/api/session/{sid}/state")
    assert state["revision"] == 0 and [les["label"] for les in state["lesions"]] == [1, 2]
    assert review_files(cohort_dir) == []


@pytest.mark.parametrize(
    ("action", "body", "status"),
    [
        ("add", {"seed": "13,9,22", "method": "liver"}, 400),
        ("add", {"seed": [13.5, 9, 22], "method": "liver"}, 400),
        ("add", {"seed": list(SEED_C), "method": "livre"}, 400),
        ("add", {"seed": list(SEED_C), "method": "fixed", "value": "high"}, 400),
        ("add", {"seed": list(SEED_C), "method": "liver", "extra": 1}, 400),
        ("add", {"seed": [0, 0, 0], "method": "liver"}, 422),  # background below 3.5 SUV
        ("add", {"seed": list(SEED_C), "method": "spleen"}, 422),  # report's VOI is liver
        ("remove", {"label": 7}, 422),
        ("remove", {"label": "2"}, 400),
        ("remove", {"seed": [0, 0, 0]}, 422),  # background voxel
        ("undo", {}, 422),
        ("save", {"base_version": 0, "reviewer": "", "score": 3}, 400),
        ("save", {"base_version": 0, "reviewer": "dr", "score": 6}, 400),
        ("save", {"base_version": 0, "reviewer": "dr", "score": 2, "active_seconds": -1}, 400),
        ("export", {"format": "rtstruct"}, 422),  # NIfTI case: no DICOM to reference
        ("export", {"format": "png"}, 400),
        ("explode", {}, 404),
    ],
)
def test_bad_requests_are_4xx_and_write_nothing(
    client: Client, cohort_dir: Path, action: str, body: dict[str, Any], status: int
) -> None:
    sid = client.open()["session"]
    got, data = client.request("POST", f"/api/session/{sid}/{action}", body)
    assert got == status, data
    assert isinstance(data["error"], str) and data["error"]
    assert review_files(cohort_dir) == []


def test_malformed_json_and_huge_payload(client: Client, cohort_dir: Path) -> None:
    sid = client.open()["session"]
    status, data = client.request("POST", f"/api/session/{sid}/remove", b"{not json")
    assert status == 400 and "JSON" in data["error"]
    status, data = client.request("POST", f"/api/session/{sid}/remove", b"[1, 2]")
    assert status == 400
    huge = json.dumps({"label": 1, "pad": "x" * (MAX_BODY_BYTES + 1)}).encode()
    status, data = client.request("POST", f"/api/session/{sid}/remove", huge)
    assert status == 413 and str(MAX_BODY_BYTES) in data["error"]
    status, state = client.request("GET", f"/api/session/{sid}/state")
    assert state["revision"] == 0
    assert review_files(cohort_dir) == []


def test_unknown_session_is_404(client: Client) -> None:
    status, data = client.request("POST", "/api/session/forged/remove", {"label": 1})
    assert status == 404 and "session" in data["error"]


def test_remove_undo_redo_patch(client: Client) -> None:
    opened = client.open()
    sid = opened["session"]
    status, data = client.request("POST", f"/api/session/{sid}/remove", {"label": 2})
    assert status == 200
    # the patch lists B's 27 voxels (flat C-order indices into (20, 32, 32)) set to 0
    expected = np.flatnonzero(np.pad(np.ones((3, 3, 3)), [(12, 5), (20, 9), (20, 9)]).ravel())
    assert data["patch"]["index"] == expected.tolist() and set(data["patch"]["value"]) == {0}
    assert [les["label"] for les in data["lesions"]] == [1]
    status, data = client.request("POST", f"/api/session/{sid}/undo")
    assert [les["label"] for les in data["lesions"]] == [1, 2] and set(data["patch"]["value"]) == {
        2
    }
    status, data = client.request("POST", f"/api/session/{sid}/redo")
    assert [les["label"] for les in data["lesions"]] == [1] and data["revision"] == 3
    assert data["edits"][0]["op"] == "remove" and data["edits"][0]["label"] == 2


def test_add_by_seed_methods(client: Client) -> None:
    sid = client.open()["session"]
    # fixed 5.5 SUV: C (SUV 5) is below -> refused; 4.5 takes C's 24 voxels
    status, data = client.request(
        "POST", f"/api/session/{sid}/add", {"seed": list(SEED_C), "method": "fixed", "value": 5.5}
    )
    assert status == 422 and "not above the threshold" in data["error"]
    status, data = client.request(
        "POST", f"/api/session/{sid}/add", {"seed": list(SEED_C), "method": "fixed", "value": 4.5}
    )
    assert (
        status == 200 and data["lesions"][-1]["label"] == 3 and data["lesions"][-1]["voxels"] == 24
    )
    client.request("POST", f"/api/session/{sid}/undo")
    # 40 % of SUVmax (5) = 2.0: the grown region is C (SUV 5 > 2, neighbours 1 or 2 are not > 2)
    status, data = client.request(
        "POST", f"/api/session/{sid}/add", {"seed": list(SEED_C), "method": "percent_max"}
    )
    assert status == 200 and data["lesions"][-1]["voxels"] == 24


def test_labels_endpoint_matches_session(client: Client, tmp_path: Path) -> None:
    sid = client.open()["session"]
    client.request("POST", f"/api/session/{sid}/remove", {"label": 1})
    status, raw = client.request("GET", f"/api/session/{sid}/labels.nii.gz")
    assert status == 200
    path = tmp_path / "served.nii.gz"
    path.write_bytes(raw)
    served, geometry = read_nifti(path)
    pet_geometry = read_nifti(tmp_path / "cohort" / "case01" / "pet_suv.nii.gz")[1]
    assert geometry.same_grid(pet_geometry)  # same affine convention as the PET file
    expected = np.zeros((20, 32, 32), dtype=np.uint8)
    expected[LESION_B] = 2
    np.testing.assert_array_equal(served, expected)


def test_token_and_host_checks(cohort_dir: Path) -> None:
    srv, url = make_server(cohort_dir, port=0, token="s3cret")
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        port = srv.server_address[1]
        assert url.endswith("?token=s3cret")
        assert Client(port).request("GET", "/api/cases")[0] == 401
        assert Client(port, token="wrong").request("GET", "/api/cases")[0] == 401
        assert Client(port, token="s3cret").request("GET", "/api/cases")[0] == 200
        assert Client(port).request("GET", "/api/cases?token=s3cret")[0] == 200
        status, data = Client(port, token="s3cret").request(
            "GET", "/api/cases", headers={"Host": "evil.example:80"}
        )
        assert status == 403 and "loopback" in data["error"]
    finally:
        srv.shutdown()
        srv.server_close()


def test_non_loopback_host_gets_a_token(cohort_dir: Path) -> None:
    srv, url = make_server(cohort_dir, host="0.0.0.0", port=0)
    try:
        assert (
            srv.app.token and url.endswith(f"?token={srv.app.token}") and len(srv.app.token) >= 24
        )
    finally:
        srv.server_close()


def test_concurrent_tabs_never_lose_an_edit(client: Client, cohort_dir: Path) -> None:
    tab_a, tab_b = client.open()["session"], client.open()["session"]
    client.request("POST", f"/api/session/{tab_a}/remove", {"label": 1})
    client.request("POST", f"/api/session/{tab_b}/remove", {"label": 2})
    save = {"base_version": 0, "reviewer": "dr a", "score": 2, "comment": "", "active_seconds": 30}
    assert client.request("POST", f"/api/session/{tab_a}/save", save)[0] == 200
    status, data = client.request(
        "POST", f"/api/session/{tab_b}/save", {**save, "reviewer": "dr b"}
    )
    assert status == 409 and "v001" in data["error"]
    assert review_files(cohort_dir) == [
        "case01/review/v001/lesions.nii.gz",
        "case01/review/v001/report.json",
    ]
    # tab B replays its edit on v001 and saves v002: both removals are kept
    status, data = client.request("POST", f"/api/session/{tab_b}/rebase")
    assert status == 200 and data["base_version"] == "v001" and data["lesions"] == []
    status, data = client.request(
        "POST", f"/api/session/{tab_b}/save", {**save, "base_version": 1, "reviewer": "dr b"}
    )
    assert status == 200 and data["saved"]["version"] == "v002"
    v2, _ = read_nifti(cohort_dir / "case01" / "review" / "v002" / "lesions.nii.gz")
    assert not v2.any()
    report = json.loads((cohort_dir / "case01" / "review" / "v002" / "report.json").read_text())
    assert (
        report["review"]["parent_version"] == "v001" and report["review"]["edits"][0]["label"] == 2
    )
    original, _ = read_nifti(cohort_dir / "case01" / "lesions.nii.gz")
    assert int(original[LESION_A].min()) == 1 and int(original[LESION_B].min()) == 2


def test_simultaneous_saves_one_wins(client: Client, cohort_dir: Path) -> None:
    sessions = [client.open()["session"] for _ in range(4)]
    for sid in sessions:
        client.request("POST", f"/api/session/{sid}/remove", {"label": 1})
    results: list[int] = []
    barrier = threading.Barrier(len(sessions))

    def save(sid: str) -> None:
        barrier.wait()
        body = {"base_version": 0, "reviewer": "dr", "score": 1, "comment": "", "active_seconds": 1}
        results.append(client.request("POST", f"/api/session/{sid}/save", body)[0])

    threads = [threading.Thread(target=save, args=(sid,)) for sid in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409, 409, 409]
    assert [
        p.name for p in (cohort_dir / "case01" / "review").iterdir() if p.name.startswith("v")
    ] == ["v001"]


def test_preview_endpoints_reduce_images_and_labels(cohort_dir: Path, tmp_path: Path) -> None:
    from petseg.review.preview import preview_affine

    srv, _url = make_server(cohort_dir, port=0, preview_voxels=20 * 32 * 32 // 8)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        client = Client(srv.server_address[1])
        opened = client.open()
        assert opened["meta"]["preview_step"] == 2
        sid = opened["session"]
        status, before = client.request("GET", f"/api/session/{sid}/labels.preview.nii.gz")
        (tmp_path / "before.nii.gz").write_bytes(before)
        assert read_nifti(tmp_path / "before.nii.gz")[0][2, 4, 4] == 1  # lesion A
        client.request("POST", f"/api/session/{sid}/remove", {"label": 1})
        served = {}
        for name, path in [
            ("pet", "/api/case/case01/pet.preview.nii.gz"),
            ("ct", "/api/case/case01/ct.preview.nii.gz"),
            ("labels", f"/api/session/{sid}/labels.preview.nii.gz"),
        ]:
            status, raw = client.request("GET", path)
            assert status == 200, raw
            (tmp_path / f"{name}.nii.gz").write_bytes(raw)
            served[name] = read_nifti(tmp_path / f"{name}.nii.gz")
    finally:
        srv.shutdown()
        srv.server_close()

    full_geometry = read_nifti(cohort_dir / "case01" / "pet_suv.nii.gz")[1]
    for volume, geometry in served.values():
        assert volume.shape == (10, 16, 16)
        np.testing.assert_allclose(geometry.affine, preview_affine(full_geometry.affine, 2))
    pet = served["pet"][0]
    # lesion A (8 SUV) spans full voxels k 4-6, j 8-10, i 8-10 -> blocks k 2-3, j 4-5, i 4-5
    assert pet[2, 4, 4] == 8.0 and pet[3, 5, 5] == 8.0 and pet[0, 0, 8] == 1.0
    ct = served["ct"][0]
    # CT is -1000 HU at i 0-2, 40 HU elsewhere: block i 0 all air, block i 1 half air
    assert ct[0, 0, 0] == -1000.0 and ct[0, 0, 1] == pytest.approx((-1000.0 + 40.0) / 2)
    labels = served["labels"][0]
    assert labels.max() == 2 and labels[2, 4, 4] == 0  # lesion 1 removed in the session
    assert labels[6, 10, 10] == 2  # lesion B: full voxels 12-14, 20-22, 20-22


def test_no_preview_for_small_cases_and_when_disabled(cohort_dir: Path) -> None:
    for limit in (0, 1_500_000):
        srv, _url = make_server(cohort_dir, port=0, preview_voxels=limit)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            assert Client(srv.server_address[1]).open()["meta"]["preview_step"] == 1
        finally:
            srv.shutdown()
            srv.server_close()
    with pytest.raises(ValueError, match="preview_voxels"):
        make_server(cohort_dir, port=0, preview_voxels=-1)


def test_preload_reads_the_first_case_before_the_page_asks(cohort_dir: Path) -> None:
    from petseg.review.app import ReviewApp

    app = ReviewApp(cohort_dir, preview_voxels=20 * 32 * 32 // 8)
    future = app.preload_first_case()
    assert future is not None
    prepared = future.result(timeout=30)
    assert {("case01", w) for w in ("mip", "pet", "ct")} <= set(app._derived)
    assert list(app._cases) == ["case01"]
    body = app.case_file("case01", "mip.bin")
    assert len(body) == 20 * 32 * (4 + 2)  # float32 max + int16 depth
    first = app.open_case("case01")
    assert app.session(first["session"]) is prepared  # handed out once…
    # …opening a case reads the next one in the list
    assert app._prepared["case02"].result(timeout=30).case.case_id == "case02"
    second = app.open_case("case01")
    assert app.session(second["session"]) is not prepared  # …then sessions are read anew
    assert first["lesions"] == second["lesions"] and first["base_version"] == "original"


def test_a_prepared_session_of_an_older_version_is_not_handed_out(cohort_dir: Path) -> None:
    from petseg.review.app import ReviewApp
    from petseg.review.session import CaseSession

    app = ReviewApp(cohort_dir)
    stale = app.preload("case01").result(timeout=30)  # read on the original
    other_tab = CaseSession.open(app.case("case01"))
    other_tab.remove(2)
    other_tab.save(base_version=0, reviewer="A", score=4, comment="", active_seconds=1)
    reopened = app.open_case("case01")
    assert app.session(reopened["session"]) is not stale
    assert reopened["base_version"] == "v001" and [les["label"] for les in reopened["lesions"]] == [
        1
    ]


def test_only_the_most_recent_cases_stay_in_memory(tmp_path: Path) -> None:
    from petseg.review.app import MAX_CASES, ReviewApp

    from .conftest import make_case

    for n in range(MAX_CASES + 2):
        make_case(tmp_path / "cohort" / f"case{n:02d}")
    app = ReviewApp(tmp_path / "cohort")
    for n in range(MAX_CASES + 2):
        app.case(f"case{n:02d}")
    assert list(app._cases) == [f"case{n:02d}" for n in range(2, MAX_CASES + 2)]


def test_removed_uptake_layer_and_restore(client: Client, cohort_dir: Path) -> None:
    """case01 with lesion C (24 voxels, SUV 5) removed as kidney uptake: the page gets the
    layer and the list, and the reviewer gives C back as a lesion."""
    from .conftest import LESION_C, add_removed_uptake

    folder = cohort_dir / "case01"
    add_removed_uptake(folder)
    opened = client.open()
    sid = opened["session"]
    assert opened["meta"]["removed_count"] == 1
    [listed] = opened["removed"]
    assert (listed["organ"], listed["restored"], listed["max_voxel_kji"]) == (
        "kidneys",
        False,
        [12, 8, 22],
    )
    status, layer = client.request("GET", "/api/case/case01/removed.nii.gz")
    assert status == 200 and layer[:2] == b"\x1f\x8b"
    assert client.request("GET", "/api/case/case02/removed.nii.gz")[0] == 404

    status, data = client.request("POST", f"/api/session/{sid}/restore", {"removed_label": 1})
    assert status == 200, data
    assert [les["label"] for les in data["lesions"]] == [1, 2, 3]
    assert data["lesions"][-1]["voxels"] == 24 and data["removed"][0]["restored"] is True
    assert data["edits"][-1] == {
        **data["edits"][-1],
        "op": "restore",
        "removed_label": 1,
        "organ": "kidneys",
        "new_label": 3,
        "voxels": 24,
    }
    status, data = client.request("POST", f"/api/session/{sid}/restore", {"removed_label": 1})
    assert status == 422 and "already restored" in data["error"]
    assert client.request("POST", f"/api/session/{sid}/restore", {"removed_label": 7})[0] == 422
    assert client.request("POST", f"/api/session/{sid}/restore", {"removed_label": "1"})[0] == 400
    status, data = client.request("POST", f"/api/session/{sid}/undo")
    assert data["removed"][0]["restored"] is False and len(data["lesions"]) == 2
    client.request("POST", f"/api/session/{sid}/redo")
    status, saved = client.request(
        "POST",
        f"/api/session/{sid}/save",
        {"base_version": 0, "reviewer": "EAC", "score": 2, "comment": "", "active_seconds": 1},
    )
    assert status == 200, saved
    version = json.loads((folder / "review" / "v001" / "report.json").read_text())
    assert version["review"]["edits"][0]["op"] == "restore"
    assert version["patient"]["lesion_count"] == 3
    labels, _ = read_nifti(folder / "review" / "v001" / "lesions.nii.gz")
    assert np.all(labels[LESION_C] == 3)


def test_case_meta_gives_the_reference_sphere_in_voxels(tmp_path: Path) -> None:
    from petseg.review.images import reference_voi
    from petseg.study import Geometry

    geometry = Geometry.from_spacing((20, 32, 32), (3.0, 2.0, 2.0), origin=(-31.0, -31.0, 0.0))
    automatic = {
        "reference": {
            "organ": "spleen",
            "automatic": {"centre_mm": [-11.0, -7.0, 30.0], "radius_mm": 15.0},
        },
        "parameters": {"ref_sphere": None},
    }
    # x = -31 + 2 i, y = -31 + 2 j, z = 3 k
    assert reference_voi(automatic, geometry) == {
        "organ": "spleen",
        "automatic": True,
        "centre_kji": [10.0, 12.0, 10.0],
        "radius_mm": 15.0,
    }
    given = {
        "reference": {"organ": "liver"},
        "parameters": {"ref_sphere": [-11.0, -7.0, 30.0, 12.0], "ref_units": "mm"},
    }
    assert reference_voi(given, geometry)["centre_kji"] == [10.0, 12.0, 10.0]
    in_voxels = {
        "reference": {"organ": "liver"},
        "parameters": {"ref_sphere": [4, 5, 6, 12.0], "ref_units": "voxel"},
    }
    assert reference_voi(in_voxels, geometry)["centre_kji"] == [4.0, 5.0, 6.0]
    assert reference_voi({"reference": {"organ": "liver"}, "parameters": {}}, geometry) is None
    assert reference_voi({"reference": None, "parameters": {}}, geometry) is None
    assert reference_voi({"reference": "liver", "parameters": {}}, geometry) is None


def test_uncertainty_layer_and_review_flags(client: Client, cohort_dir: Path) -> None:
    """case01 as a fold ensemble wrote it: uncertainty.nii.gz beside the labels and lesion B
    (label 2) flagged review_first in report.json; the page gets the layer and the flag."""
    from petseg.io.nifti import write_nifti

    folder = cohort_dir / "case01"
    _, geometry = read_nifti(folder / "lesions.nii.gz")
    uncertainty = np.zeros(geometry.shape, np.float32)
    uncertainty[12:15, 20:23, 20:23] = 0.8  # the folds disagree on lesion B
    write_nifti(folder / "uncertainty.nii.gz", uncertainty, geometry)
    report = json.loads((folder / "report.json").read_text())
    for row, flag in zip(report["lesions"], (False, True), strict=True):
        row.update(folds_segmenting=5 if not flag else 2, folds=5, review_first=flag)
    (folder / "report.json").write_text(json.dumps(report))
    opened = client.open()
    assert opened["meta"]["has_uncertainty"] is True
    assert opened["meta"]["review_first"] == [2]
    status, layer = client.request("GET", "/api/case/case01/uncertainty.nii.gz")
    assert status == 200 and layer == (folder / "uncertainty.nii.gz").read_bytes()
    # a threshold result: no layer, no flags
    other = client.open("case02")
    assert other["meta"]["has_uncertainty"] is False and other["meta"]["review_first"] == []
    assert client.request("GET", "/api/case/case02/uncertainty.nii.gz")[0] == 404
