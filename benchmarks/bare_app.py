"""The ceiling for xmr's web path: a bare FastAPI endpoint that parses the same body and returns ten canned hits.

    uvicorn --factory benchmarks.bare_app:create_bare_app

Idiomatic FastAPI with nothing of xmr in it (no middleware, no dependency, no search): the request
is validated by a pydantic model, the canned response is a dict that FastAPI encodes. Whatever xmr
spends above this on the same uvicorn is its own web path.
"""

from __future__ import annotations

from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

HITS = [
    {
        "id": f"vid{i:05d}",
        "score": 0.9 - i / 100,
        "modality": "video",
        "uri": f"videos/vid{i:05d}.mp4",
        "title": "a red 7 moves left, then a blue 3 appears",
        "duration": 6.0,
    }
    for i in range(10)
]


class BareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=1000)
    k: int = Field(10, ge=1, le=1000)
    modality: Literal["video", "image", "all"] = "all"
    collection: str | None = Field(None, max_length=200)


def create_bare_app() -> FastAPI:
    # FastAPI's native telemetry off, as xmr serves it (service/main.py): the baseline is the framework's
    # own request path, not a per-request check for OpenTelemetry providers.
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False})

    @app.post("/v1/search")
    async def search(req: BareRequest) -> dict[str, object]:
        return {
            "query": req.query,
            "collection": "demo",
            "version": "v1",
            "model_id": "m",
            "took_ms": 0.1,
            "hits": HITS[: req.k],
        }

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app
