"""Request and response schemas, named by role. Every input has a limit, stated here."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    field_validator,
)

MAX_QUERY_CHARS = 1000
MAX_K = 1000
MAX_MOMENTS_PER_HIT = 20
DEFAULT_MOMENTS_PER_HIT = 3
MAX_ID_CHARS = 1024  # item ids are paths relative to a folder, which can be long; every id input takes this limit
# Videos per /v1/moments/batch call: the largest valid batch (50 ids of 1,024 characters) fits the 64 KiB body
# limit, so a batch over the schema's limits is refused by validation (422), never by size (413).
MAX_BATCH_VIDEOS = 50

M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__


def built(cls: type[M], fields: dict[str, Any]) -> M:
    """``cls.model_construct(**fields)`` where ``fields`` names every field of ``cls``: the same instance
    (its ``__dict__``, the fields set, no extra, no private attributes) without model_construct's walk over
    the model's fields, aliases and defaults: 0.7 against 3.4 µs a hit, and a search with moments builds about
    41 models (hits, segments, moments). For values of the right types only, as with model_construct: the
    search and moments builders, whose answers tests/service/test_speed_paths.py validates against the
    response model; tests/service/test_schemas_built.py checks it against model_construct for each model."""
    model = cls.__new__(cls)
    _set(model, "__dict__", fields)
    _set(model, "__pydantic_fields_set__", set(fields))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


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
    moments: StrictBool | Annotated[StrictInt, Field(ge=1, le=MAX_MOMENTS_PER_HIT)] = Field(
        False,
        description=f"Add each video hit's best moments: true for {DEFAULT_MOMENTS_PER_HIT}, or how many per hit.",
    )

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

    @property
    def moments_per_hit(self) -> int:
        """0 when no moments were asked for."""
        if isinstance(self.moments, bool):
            return DEFAULT_MOMENTS_PER_HIT if self.moments else 0
        return self.moments


class Moment(BaseModel):
    start: float = Field(description="Seconds from the video's start.")
    end: float = Field(description="Seconds from the video's start; > start.")
    score: float = Field(description="The moment head's score, higher is better (its scale is the head's).")


class Segment(BaseModel):
    start: float = Field(description="Seconds from the start of the video.")
    end: float = Field(description="Seconds from the start of the video.")


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
    segment: Segment | None = Field(
        None,
        description="For a video longer than the encoder's span (32 s at 2 clips/s): the window that matched "
        "best, a coarse span to start playing at. Null for images and shorter videos (the whole item matched).",
    )
    moments: Annotated[
        list[Moment] | None, Field(description="Best windows, best first; video hits, when asked for.")
    ] = None


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
    moments_error: Annotated[
        str | None, Field(description="Why hits carry no moments although they were asked for.")
    ] = None


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


def _nonblank(v: str) -> str:
    if not v.strip():
        raise ValueError("query is blank")
    return v.strip()


class MomentsRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"query": "a red 7 moves left", "video_id": "vid00042", "k": 5}]},
    )

    query: Annotated[str, AfterValidator(_nonblank)] = Field(
        min_length=1, max_length=MAX_QUERY_CHARS, description="What happens, in plain words."
    )
    video_id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="The video to search inside.")
    k: int = Field(5, ge=1, le=MAX_K, description="How many moments; more than the video's clips gives all.")
    collection: str | None = Field(None, max_length=200, description="Collection; default: the one holding the id.")


class ClipScore(BaseModel):
    start: float = Field(description="Seconds: the clip's start.")
    end: float = Field(description="Seconds: the clip's end (the video's end for the last clip).")
    score: float = Field(description="Saliency of the clip for the query, higher is more relevant.")


class MomentsResponse(BaseModel):
    query: str
    video_id: str
    duration: float = Field(description="Seconds.")
    collection: str
    version: str
    took_ms: float
    moments: list[Moment] = Field(description="Best first, non-overlapping beyond IoU 0.5, in the video's seconds.")
    saliency: list[ClipScore] = Field(description="One entry per clip, in time order.")


class VideoRef(BaseModel):
    """A video of a moments batch with the seconds to look around (e.g. a search hit's matched segment)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    segment: Segment | None = Field(None, description="Null: all of the video.")


class MomentsBatchRequest(BaseModel):
    """Moments of many videos for one query in one head call: what a search service asks `xmr serve-moments`."""

    model_config = ConfigDict(extra="forbid")

    query: Annotated[str, AfterValidator(_nonblank)] = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    video_ids: list[
        Annotated[
            Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS), Tag("id")] | Annotated[VideoRef, Tag("ref")],
            Discriminator(lambda v: "ref" if isinstance(v, dict | VideoRef) else "id"),
        ]
    ] = Field(
        min_length=1,
        max_length=MAX_BATCH_VIDEOS,
        description="Callers with more videos send several batches. An entry is a video id, or {id, segment} to "
        "look only around that segment (the head's windows that overlap it), as a search hit on a long video does.",
    )
    k: int = Field(DEFAULT_MOMENTS_PER_HIT, ge=1, le=MAX_MOMENTS_PER_HIT, description="Moments per video.")
    collection: str | None = Field(None, max_length=200)

    def refs(self) -> list[VideoRef]:
        return [v if isinstance(v, VideoRef) else VideoRef(id=v, segment=None) for v in self.video_ids]


class MomentsBatchResponse(BaseModel):
    collection: str
    version: str
    moments: list[list[Moment]] = Field(description="Per video, in the order of video_ids.")
