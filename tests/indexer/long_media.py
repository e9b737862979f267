"""Long test videos: hours of tiny frames with demo-corpus events (coloured digits) at known times.

Rendered with the demo corpus's own actors and painter at its frame size, then scaled to a tiny
frame, so a model trained on the demo corpus recognises the events; the frames between events are
one background, so hours of video take seconds to write.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

from models.data.demo_corpus import SIZE, Actor, _glyphs, _paint


def actor(phrase: str, start: float, seconds: float = 4.0, x0: float = 70.0, y0: float = 50.0) -> Actor:
    """An ``Actor`` for a phrase like "a red 7 moves left" on screen from ``start`` for ``seconds``."""
    _, color, digit, *motion = phrase.split()
    glyphs, labels = _glyphs()
    glyph = glyphs[int(np.flatnonzero(labels == int(digit))[0])]
    return Actor(int(digit), color, " ".join(motion), start, start + seconds, x0, y0, glyph)


def write_long_video(path: Path, seconds: float, actors: list[Actor], fps: int = 1, size: int = 32) -> None:
    """H.264 ``size``x``size`` video of ``seconds`` at ``fps`` showing ``actors`` over a dark background."""
    background = np.full((SIZE, SIZE, 3), 20, np.uint8)
    plain = np.asarray(Image.fromarray(background).resize((size, size), Image.BILINEAR))
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "18", "preset": "ultrafast"}
        for i in range(int(seconds * fps)):
            t = i / fps
            on = [a for a in actors if a.start <= t < a.end]
            frame = plain
            if on:
                canvas = background.copy()
                for a in on:
                    _paint(canvas, a.glyph, a.color, *a.position(t))
                frame = np.asarray(Image.fromarray(canvas).resize((size, size), Image.BILINEAR))
            c.mux(s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        c.mux(s.encode())
