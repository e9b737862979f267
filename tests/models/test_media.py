from pathlib import Path

import av
import numpy as np
import pytest

from models.data.media import decode_video, read_image
from xmr.errors import MediaError


def write_counter_video(path: Path, fps: int, seconds: float) -> None:
    """Frame i is filled with grey level 3*i, so the frame a picker chose can be read back."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "0", "preset": "ultrafast"}
        for i in range(int(fps * seconds)):
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 3 * i, np.uint8), format="rgb24")))
        c.mux(s.encode())


def oracle(path: Path, clip_rate: float) -> list[int]:
    """Exact reference: decode every frame, then argmin |t - centre| per clip centre."""
    with av.open(str(path)) as c:
        times = np.array([float(f.time) for f in c.decode(video=0)])
    duration = times[-1] + (times[1] - times[0])
    centres = (np.arange(int(np.ceil(duration * clip_rate - 1e-6))) + 0.5) / clip_rate
    return np.abs(times[None] - centres[:, None]).argmin(1).tolist()


@pytest.mark.parametrize(("fps", "seconds", "clip_rate"), [(10, 6, 2.0), (25, 3.2, 2.0), (7, 5, 1.0), (30, 2, 4.0)])
def test_streaming_picker_matches_exact_oracle(tmp_path: Path, fps: int, seconds: float, clip_rate: float) -> None:
    path = tmp_path / "v.mp4"
    write_counter_video(path, fps, seconds)
    frames, duration = decode_video(path, clip_rate=clip_rate, size=32)
    assert duration == pytest.approx(int(fps * seconds) / fps, abs=1e-6)
    got = [round(float(f.mean()) / 3) for f in frames]
    assert got == oracle(path, clip_rate)


def test_unreadable_media_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="missing.mp4: file not found"):
        decode_video(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"junk" * 100)
    with pytest.raises(MediaError, match="junk.mp4: cannot decode video"):
        decode_video(tmp_path / "junk.mp4")
    (tmp_path / "junk.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(MediaError, match="junk.png: cannot decode image"):
        read_image(tmp_path / "junk.png")
