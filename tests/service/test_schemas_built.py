"""``schemas.built`` against its oracle, pydantic's ``model_construct``, for every model the hot paths build."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from service.schemas import Hit, Moment, SearchResponse, Segment, built

SEGMENT = {"start": 32.0, "end": 64.0}
MOMENT = {"start": 1.25, "end": 3.5, "score": 0.75}
HIT = {
    "id": "vid00001",
    "score": 0.5,
    "modality": "video",
    "uri": "videos/vid00001.mp4",
    "title": "a red 7 moves left",
    "duration": 6.0,
    "segment": None,
    "moments": None,
}
CASES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (Segment, SEGMENT),
    (Moment, MOMENT),
    (Hit, HIT),
    (Hit, HIT | {"segment": Segment(**SEGMENT), "moments": [Moment(**MOMENT)]}),
]


@pytest.mark.parametrize(("cls", "fields"), CASES)
def test_built_is_model_construct(cls: type[BaseModel], fields: dict[str, Any]) -> None:
    got, want = built(cls, dict(fields)), cls.model_construct(**fields)
    assert got == want
    assert got.model_fields_set == want.model_fields_set == set(cls.model_fields)
    assert got.model_dump_json() == want.model_dump_json()
    assert cls.model_validate(got.model_dump(), strict=True) == want  # and it is a valid instance


@pytest.mark.parametrize("cls", [Segment, Moment, Hit, SearchResponse])
def test_models_built_so_have_no_private_attributes_or_extra(cls: type[BaseModel]) -> None:
    """``built`` sets no private attributes and no extra: a model that gains either needs model_construct."""
    assert not cls.__private_attributes__
    assert cls.model_config.get("extra") != "allow"


def test_assigning_a_field_later_works_as_on_a_constructed_model() -> None:
    hit = built(Hit, dict(HIT))
    hit.moments = [built(Moment, dict(MOMENT))]  # what the moments code does to a search's video hits
    assert hit.model_dump()["moments"] == [MOMENT] and "moments" in hit.model_fields_set
    other = built(Hit, dict(HIT))
    assert other.moments is None  # instances share nothing
