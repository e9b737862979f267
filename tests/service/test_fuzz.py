"""Property test: whatever JSON arrives at /v1/search, the answer is a clear 2xx/4xx, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.config import Settings
from service.main import create_app

scalars = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False) | st.text(max_size=40)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
bodies = (
    st.fixed_dictionaries(
        {},
        optional={
            "query": st.text(max_size=1200) | values,
            "k": st.integers(-5, 2000) | values,
            "modality": st.sampled_from(["video", "image", "all", "audio", ""]) | values,
            "collection": st.sampled_from(["demo", "other"]) | st.none(),
        },
    )
    | values
)


@pytest.fixture(scope="module")
def client(bundle_root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(root=bundle_root, poll_seconds=0))) as c:
        yield c


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_search_never_fails_on_any_json(client: TestClient, body: object) -> None:
    r = client.post("/v1/search", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code in {200, 400, 404, 413, 422}, (body, r.text)
    if r.status_code == 200:
        assert isinstance(body, dict)
        assert len(r.json()["hits"]) <= body.get("k", 10)
    else:
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"]
