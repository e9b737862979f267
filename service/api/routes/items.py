"""GET /v1/items/{id} and GET /v1/collections."""

from __future__ import annotations

from fastapi import APIRouter, Path

from service.api.routes.search import ERRORS
from service.deps import StoreDep
from service.schemas import MAX_ID_CHARS, CollectionInfo, ItemResponse

router = APIRouter(tags=["items"])


@router.get("/v1/items/{item_id:path}", response_model=ItemResponse, responses=ERRORS)  # type: ignore[arg-type]
def get_item(store: StoreDep, item_id: str = Path(max_length=MAX_ID_CHARS)) -> ItemResponse:
    """One item's metadata, from whichever live collection holds it (ids may contain ``/``)."""
    live, it = store.find_item(item_id)
    return ItemResponse(
        id=it.id,
        collection=live.collection,
        version=live.version,
        modality=it.modality,
        uri=it.uri,
        duration=it.duration,
        title=it.title,
        tags=it.tags,
        metadata=it.metadata,
    )


@router.get("/v1/collections", response_model=list[CollectionInfo])
def collections(store: StoreDep) -> list[CollectionInfo]:
    """Live collections with their version, model id and item counts."""
    state = store.snapshot()  # one consistent view while collections may appear
    return [
        CollectionInfo(
            name=name,
            version=b.version,
            model_id=b.model_id,
            counts=b.manifest.get("counts", {}),
            created_at=str(b.manifest.get("created_at", "")),
            error=state.errors.get(name),
        )
        for name, b in sorted(state.live.items())
    ]
