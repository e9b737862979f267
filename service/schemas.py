"""Request and response schemas, named by role. Every input has a limit, stated here."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_QUERY_CHARS = 1000
MAX_K = 1000

Modality = Literal["video", "image", "all"]
NOT_BLANK = r"\S"  # somewhere a character that is not whitespace (str.isspace), checked with Python's re


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        regex_engine="python-re",  # NOT_BLANK's \S must mean what str.strip() strips, Unicode included
        json_schema_extra={
            "examples": [{"query": "a red 7 moves left, then a blue 3 appears", "k": 5, "modality": "video"}]
        },
    )

    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        pattern=NOT_BLANK,
        description="What to find, in plain words; at least one character that is not whitespace.",
    )
    k: int = Field(
        10,
        ge=1,
        le=MAX_K,
        description='How many hits to return: a JSON integer (5 or 5.0; "5", 5.5 and true are refused).',
    )
    modality: Modality = Field("all", description="Restrict hits to videos, images, or both.")
    collection: str | None = Field(None, max_length=200, description="Collection; default: the server's default.")

    @field_validator("query", mode="before")
    @classmethod
    def _not_blank(cls, v: object) -> object:
        # str.strip() and the pattern's \S (Python re) agree on what whitespace is; this runs first for
        # a clearer message than a pattern mismatch.
        if isinstance(v, str) and not v.strip():
            raise ValueError("query is blank")
        return v

    @field_validator("query")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()

    @field_validator("k", mode="before")
    @classmethod
    def _json_integer(cls, v: object) -> object:
        # Exactly JSON Schema's "integer": a number with no fractional part (5.0 counts, 5.5 is refused by
        # int). Pydantic's lax int would also take "5" and true, which the schema does not allow.
        if isinstance(v, str | bool):
            raise ValueError("k must be a JSON integer, not a string or a boolean")
        return v


class Hit(BaseModel):
    id: str
    score: float = Field(description="Cosine similarity between the query and the item, in [-1, 1].")
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
