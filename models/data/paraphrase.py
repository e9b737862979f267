"""Deterministic paraphrases of demo captions, for testing queries phrased unlike the training text.

"a red 7 moves left, then a blue 3 appears" -> "a crimson seven slides leftward, followed by a
navy three emerging". Every content word is replaced (colour, digit, motion, connective), so a
model that only memorised the caption vocabulary sees almost nothing it knows.
"""

from __future__ import annotations

import re

from xmr.errors import DataError

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
COLORS = {"red": "crimson", "green": "emerald", "blue": "navy", "yellow": "golden"}
MOTIONS = {
    "moves left": "slides leftward",
    "moves right": "slides rightward",
    "moves up": "rises",
    "moves down": "sinks",
    "appears": "emerges",
}
PHRASE = re.compile(r"a (\w+) (\d) (moves left|moves right|moves up|moves down|appears)")


def paraphrase(caption: str) -> str:
    """Paraphrase a generated video caption; raises DataError on text it does not know (not a demo corpus)."""
    parts = caption.split(", then ")
    out = []
    for part in parts:
        m = PHRASE.fullmatch(part)
        if not m:
            raise DataError(f"--paraphrase rewrites demo-corpus captions only; not a demo caption: {part!r}")
        color, digit, motion = m.groups()
        out.append(f"a {COLORS[color]} {DIGITS[int(digit)]} {MOTIONS[motion]}")
    return ", followed by ".join(out)
