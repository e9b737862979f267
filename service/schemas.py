"""Request and response schemas, named by role. Every input has a limit, stated here."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_QUERY_CHARS = 1000
MAX_K = 1000

Modality = Literal["video", "image", "all"]


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"query": "a red 7 moves left, then a blue 3 appears", "k": 5, "modality": "video"}]
        },
    )

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="What to find, in plain words.")
    k: int = Field(10, ge=1, le=MAX_K, description="How many hits to return.")
    modality: Modality = Field("all", description="Restrict hits to videos, images, or both.")
    collection: str | None = Field(None, max_length=200, description="Collection; default: the server's default.")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("query is blank")
        return v.strip()


class Hit(BaseModel):
    id: str
    score: float = Field(
        description="Cosine similarity between the query and the item, in [-1, 1]; in a bundle with a "
        "re-ranker (ProTA), the re-ranked videos carry the model's token-level pair score, also in [-1, 1]."
    )
    modality: Literal["video", "image"]
    uri: str
    title: str
    duration: float = Field(description="Seconds; 0 for images.")


class SearchResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "query": "a red 7 moves left, then a blue 3 appears",
                    "collection": "demo",
                    "version": "v20261125T120000000000Z-1a2b3c",
                    "model_id": "baseline-0123456789ab",
                    "took_ms": 3.1,
                    "hits": [
                        {
                            "id": "vid00042",
                            "score": 0.83,
                            "modality": "video",
                            "uri": "videos/vid00042.mp4",
                            "title": "a red 7 moves left, then a blue 3 appears",
                            "duration": 6.0,
                        }
                    ],
                }
            ]
        }
    )

    query: str
    collection: str
    version: str
    model_id: str
    took_ms: float
    hits: list[Hit]


class ItemResponse(BaseModel):
    id: str
    collection: str
    version: str
    modality: str
    uri: str
    duration: float
    title: str
    tags: list[str]
    metadata: dict[str, object]


class CollectionInfo(BaseModel):
    name: str
    version: str
    model_id: str
    counts: dict[str, int]
    created_at: str
    error: str | None = Field(None, description="Why the newest CURRENT could not be loaded, if it could not.")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
