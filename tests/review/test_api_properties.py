"""Property-based test of the review API's JSON payloads (hypothesis): whatever a client
posts, the server answers with JSON and a 2xx/4xx status, never a 500 or a dropped
request, and a refused request writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from petseg.review.app import ReviewApp
from petseg.review.routes import create_asgi_app
from petseg.review.security import REQUEST_HEADER

from .conftest import SEED_C, SHAPE
from .test_server import review_files

ACTIONS = (
    "remove",
    "add",
    "restore",
    "undo",
    "redo",
    "rebase",
    "save",
    "export",
    "close",
    "explode",
)
FIELDS = ("label", "seed", "method", "value", "removed_label", "base_version", "reviewer", "score", "comment",
          "active_seconds", "format")  # fmt: skip
ANSWERS = {200, 400, 404, 409, 422}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
plausible = st.one_of(
    st.lists(st.integers(-2, max(SHAPE) + 2), min_size=3, max_size=3),  # seeds near the volume
    st.just(list(SEED_C)),
    st.sampled_from(["liver", "spleen", "fixed", "percent_max", "rtstruct", "seg", "dr"]),
    st.integers(-1, 4),
    st.floats(min_value=-1, max_value=10),
)
payloads = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=8), plausible | json_values, max_size=5
)
bodies = st.one_of(
    payloads.map(lambda d: json.dumps(d).encode()),  # NaN and inf come out as bare words
    json_values.map(lambda v: json.dumps(v).encode()),  # arrays, numbers, strings
    st.binary(max_size=64),  # not JSON at all
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(action=st.sampled_from(ACTIONS), body=bodies, edits=st.integers(0, 2))
def test_any_payload_gets_a_json_answer_and_a_refusal_writes_nothing(
    cohort_dir: Path, action: str, body: bytes, edits: int
) -> None:
    client = _client(cohort_dir)
    post = {REQUEST_HEADER: "1", "Content-Type": "application/json"}
    opened = client.post("/api/case/case01/open", headers=post)
    assert opened.status_code == 200, opened.text
    sid = opened.json()["session"]
    for label in (1, 2)[:edits]:  # sometimes there are edits to undo, save, export
        client.post(f"/api/session/{sid}/remove", json={"label": label}, headers=post)
    before = review_files(cohort_dir)
    answer = client.post(f"/api/session/{sid}/{action}", content=body, headers=post)
    assert answer.status_code in ANSWERS, (answer.status_code, answer.text)
    assert answer.headers["content-type"] == "application/json"
    data: Any = answer.json()
    if answer.status_code != 200:
        assert isinstance(data["error"], str) and data["error"]
        assert review_files(cohort_dir) == before  # a refused request writes nothing
    elif action != "save":
        assert review_files(cohort_dir) == before
    state = client.get(f"/api/session/{sid}/state")
    assert state.status_code == (404 if action == "close" and answer.status_code == 200 else 200)
    client.post(f"/api/session/{sid}/close", headers=post)


_CLIENTS: dict[Path, TestClient] = {}


def _client(cohort_dir: Path) -> TestClient:
    """One application per cohort folder for all examples (the case is read once)."""
    if cohort_dir not in _CLIENTS:
        _CLIENTS.clear()
        app = create_asgi_app(ReviewApp(cohort_dir))
        _CLIENTS[cohort_dir] = TestClient(app, base_url="http://127.0.0.1")
    return _CLIENTS[cohort_dir]
