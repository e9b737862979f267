"""Real-world media: every common codec and image mode, odd names, same stems, and files of other kinds.

All media are written in the test with PyAV / Pillow; the indexer runs for real on the folder.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import bundle
from indexer.build import build
from indexer.manifest import read_manifest
from models.data.media import decode_video, read_image

# (file name, codec, pixel format): what users' folders hold; each decodes through PyAV's FFmpeg.
CODECS = [
    ("h264.mp4", "libx264", "yuv420p"),
    ("vp9.webm", "libvpx-vp9", "yuv420p"),
    ("vp8.webm", "libvpx", "yuv420p"),
    ("mpeg4.avi", "mpeg4", "yuv420p"),
    ("hevc.mkv", "libx265", "yuv420p"),
    ("av1.mkv", "libsvtav1", "yuv420p"),
    ("mjpeg.mov", "mjpeg", "yuvj420p"),
    ("ffv1.mkv", "ffv1", "yuv420p"),
    ("mpeg2.ts", "mpeg2video", "yuv420p"),
    ("prores.mov", "prores_ks", "yuv422p10le"),
    ("wmv2.wmv", "wmv2", "yuv420p"),
]


def write_video(path: Path, codec: str, pix_fmt: str, frames: int = 8, fps: int = 4, size: int = 64) -> None:
    """``frames`` frames of grey level 20 * i (so the frames can be told apart) at ``fps``."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width = s.height = size
        s.pix_fmt = pix_fmt
        if codec in ("libx265", "libsvtav1"):
            s.options = {"preset": "8" if codec == "libsvtav1" else "ultrafast"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 20 * i, np.uint8), format="rgb24")
            c.mux(s.encode(frame.reformat(format=pix_fmt)))
        c.mux(s.encode())


def write_audio(path: Path, codec: str = "aac", seconds: float = 1.0) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=16000, layout="mono")
        t = np.arange(int(16000 * seconds)) / 16000
        pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)[None]  # (1, N) mono
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = 16000
        for chunk in [frame]:
            c.mux(s.encode(chunk))
        c.mux(s.encode())


@pytest.mark.parametrize(("name", "codec", "pix_fmt"), CODECS)
def test_every_common_codec_decodes_at_the_clip_rate(tmp_path: Path, name: str, codec: str, pix_fmt: str) -> None:
    write_video(tmp_path / name, codec, pix_fmt)  # 8 frames at 4 fps = 2 s = 4 clips at 2 clips/s
    frames, duration = decode_video(tmp_path / name, clip_rate=2.0, size=32)
    assert frames.shape == (4, 32, 32, 3) and duration == pytest.approx(2.0, abs=0.01)
    levels = frames.reshape(4, -1).mean(1)  # clip centres 0.25, 0.75, ... s pick frames 1, 3, 5, 7 (ties: earlier)
    np.testing.assert_allclose(levels, [20, 60, 100, 140], atol=12 if codec in ("mjpeg", "wmv2") else 6)


def test_image_modes_read_as_8_bit_rgb(tmp_path: Path) -> None:
    """16-bit, RGBA, grayscale, palette, webp, bmp, tiff and gif read the same pixels as a plain RGB png."""
    rgb = np.random.default_rng(0).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    grey = rgb[..., 0]
    Image.fromarray(rgb).save(tmp_path / "ref.png")
    want = read_image(tmp_path / "ref.png", size=16)
    Image.fromarray(np.dstack([rgb, np.full((16, 16), 255, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb).save(tmp_path / "b.bmp")
    Image.fromarray(rgb).save(tmp_path / "t.tiff")
    Image.fromarray(rgb).save(tmp_path / "w.webp", lossless=True)
    for name in ("rgba.png", "b.bmp", "t.tiff", "w.webp"):
        np.testing.assert_array_equal(read_image(tmp_path / name, size=16), want, err_msg=name)
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "g16.png")  # 16-bit grey, full range
    Image.fromarray(grey).save(tmp_path / "g8.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    np.testing.assert_array_equal(read_image(tmp_path / "g16.png", 16), read_image(tmp_path / "g8.png", 16))
    pal = Image.fromarray(rgb).quantize(64)
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png", 16)[0], np.asarray(pal.convert("RGB")))
    first, second = Image.fromarray(rgb).quantize(256), Image.fromarray(255 - rgb).quantize(256)
    first.save(tmp_path / "anim.gif", save_all=True, append_images=[second], duration=100, loop=0)
    np.testing.assert_array_equal(read_image(tmp_path / "anim.gif", 16)[0], np.asarray(first.convert("RGB")))


def make_folder(root: Path, corpus: Path) -> dict[str, str]:
    """A folder as users keep one; returns the files that must be skipped and the reason each must give."""
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "Ünïcode folder").mkdir()
    for name in ("a/clip.mp4", "b/clip.mp4", "talk.mp4", "Ünïcode folder/my holiday (1).mp4"):
        write_video(root / name, "libx264", "yuv420p")
    write_video(root / "talk.webm", "libvpx-vp9", "yuv420p")
    write_video(root / "one frame.mkv", "ffv1", "yuv420p", frames=1)
    rgb = np.asarray(Image.open(corpus / "images" / "img00000.png"))
    Image.fromarray(rgb).save(root / "talk.jpg")
    Image.fromarray(rgb).save(root / "photo.tif")
    Image.fromarray(rgb).quantize(200).save(root / "anim.gif", save_all=True, append_images=[Image.fromarray(rgb)])
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(root / "deep 16-bit.png")
    write_audio(root / "song.m4a")
    (root / "notes.txt").write_text("not media")
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    (root / "empty.webm").write_bytes(b"")
    whole = (root / "talk.mp4").read_bytes()
    (root / "cut short.mp4").write_bytes(whole[: len(whole) // 2])  # a download that stopped half way
    (root / ".DS_Store").write_bytes(b"\x00")  # hidden: not media, not reported
    return {
        "song.m4a": "no video stream",
        "notes.txt": "unsupported type",
        "broken.mp4": "cannot decode",
        "empty.webm": "cannot decode",
        "cut short.mp4": "cannot decode",
    }


def test_a_real_folder_indexes_with_path_ids_and_reports_the_rest(
    corpus: Path, trained_run: Path, tmp_path: Path
) -> None:
    must_skip = make_folder(tmp_path / "media", corpus)
    report = build(tmp_path / "media", "c", tmp_path / "root", trained_run)
    reasons = dict(report.skipped)
    assert set(reasons) == set(must_skip)
    for uri, why in must_skip.items():
        assert why in reasons[uri], (uri, reasons[uri])
    assert report.counts == {"video": 6, "image": 4}
    with sqlite3.connect(report.path / bundle.ITEMS) as db:
        ids = {i for (i,) in db.execute("SELECT id FROM items")}
        durations = [d for (d,) in db.execute("SELECT duration FROM items WHERE modality = 'video'")]
    assert {"a/clip.mp4", "b/clip.mp4", "talk.mp4", "talk.webm", "talk.jpg", "Ünïcode folder/my holiday (1).mp4"} <= ids
    assert all(d == round(d, 3) for d in durations) and 2.0 in durations  # rounded at the source, to ms
    manifest = json.loads((report.path / bundle.MANIFEST).read_text())
    assert manifest[bundle.MEDIA_ROOT] == str((tmp_path / "media").resolve())


def test_explicit_ids_and_uri_ids(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_text('{"id": "x", "uri": "a/clip.mp4"}\n{"uri": "b/clip.mp4"}\n{"uri": "notes.txt"}\n')
    items = read_manifest(tmp_path / "m.jsonl")
    assert [(i.id, i.modality) for i in items] == [
        ("x", "video"),
        ("b/clip.mp4", "video"),
        ("notes.txt", "unsupported"),
    ]


def test_variable_frame_rate_picks_the_nearest_frame(tmp_path: Path) -> None:
    """Frames at irregular times: each clip gets the frame nearest its centre (the decode-all oracle)."""
    from fractions import Fraction

    times_ms = [0, 100, 900, 1000, 1700, 2600, 2650, 3900]
    with av.open(str(tmp_path / "vfr.mkv"), "w") as c:
        s = c.add_stream("libx264", rate=1000)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for i, ms in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 20 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            c.mux(s.encode(frame))
        c.mux(s.encode())
    frames, duration = decode_video(tmp_path / "vfr.mkv", clip_rate=2.0, size=32)
    times = np.array(times_ms) / 1000
    assert duration == pytest.approx(times[-1] + (times[-1] - times[-2]))  # the last frame lasts the last interval
    centres = (np.arange(int(np.ceil(duration * 2 - 1e-6))) + 0.5) / 2
    nearest = np.abs(times[None] - centres[:, None]).argmin(1)  # decode-all oracle; ties to the earlier frame
    assert [round(float(f.mean()) / 20) for f in frames] == nearest.tolist()
