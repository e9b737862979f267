import json
from pathlib import Path

import pytest

from models.data.paraphrase import paraphrase
from xmr.errors import DataError


def test_hand_worked_paraphrase() -> None:
    got = paraphrase("a red 7 moves left, then a blue 3 appears")
    assert got == "a crimson seven slides leftward, followed by a navy three emerges"


def test_every_demo_caption_paraphrases_without_shared_content_words(corpus: Path) -> None:
    items = [json.loads(x) for x in (corpus / "manifest.jsonl").read_text().splitlines()]
    for cap in (c["caption"] for i in items if i["modality"] == "video" for c in i["captions"]):
        shared = set(cap.replace(",", "").split()) & set(paraphrase(cap).replace(",", "").split())
        assert shared <= {"a"}, (cap, shared)


def test_unknown_text_is_refused() -> None:
    with pytest.raises(DataError, match="not a demo caption: 'a purple 7 dances'"):
        paraphrase("a purple 7 dances")
