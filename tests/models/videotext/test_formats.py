"""Published layouts read from small files written in those formats; malformed entries are named."""

import json
from pathlib import Path

import numpy as np
import pytest

from models.data.datasets import Sample
from models.videotext.features import load_feature_bank, read_features
from models.videotext.formats import (
    DatasetError,
    read_didemo,
    read_jsfusion,
    read_lsmdc,
    read_train_ids,
    require_captions,
    write_jsfusion,
)
from xmr.errors import XmrError

JSFUSION = (
    "key,vid_key,video_id,sentence\n"
    "ret0,msr7020,video7020,a woman creating a fondant baby\n"
    "ret1,msr7021,video7021,a man plays\n"
)


def test_jsfusion_test_file(tmp_path: Path) -> None:
    path = tmp_path / "MSRVTT_JSFUSION_test.csv"
    path.write_text(JSFUSION)
    pairs = read_jsfusion(path, ["video7020", "video7021", "video9"])
    assert pairs == [("video7020", "a woman creating a fondant baby"), ("video7021", "a man plays")]
    write_jsfusion(tmp_path / "again.csv", pairs)
    assert read_jsfusion(tmp_path / "again.csv", ["video7020", "video7021"]) == pairs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (JSFUSION + "ret2,msr1,video1,a dog\n", r"JSFUSION_test.csv:4: unknown video id 'video1'"),
        (JSFUSION + "ret2,msr1,video9,  \n", r"JSFUSION_test.csv:4: empty sentence for video 'video9'"),
        (JSFUSION + "ret2,video9\n", r"JSFUSION_test.csv:4: 2 fields, expected 4"),
        ("id,sentence\n", r"header \['id', 'sentence'\]"),
        (JSFUSION + "ret2,msr7020,video7020,again\n", "appears twice"),
    ],
)
def test_jsfusion_malformed_entries_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "MSRVTT_JSFUSION_test.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        read_jsfusion(path, ["video7020", "video7021", "video9"])


def test_train_9k_ids(tmp_path: Path) -> None:
    path = tmp_path / "MSRVTT_train.9k.csv"
    path.write_text("video_id\nvideo0\nvideo1\n")
    assert read_train_ids(path, ["video0", "video1"]) == ["video0", "video1"]
    with pytest.raises(DatasetError, match=r"train.9k.csv:3: unknown video id 'video1'"):
        read_train_ids(path, ["video0"])


def test_empty_caption_list_is_refused() -> None:
    samples = [
        Sample("v1", "video", Path("v1.mp4"), "train", ["a cat"]),
        Sample("v2", "video", Path("v2.mp4"), "train", []),
    ]
    with pytest.raises(XmrError, match=r"msrvtt.json: video 'v2' has an empty caption list"):
        require_captions(samples, Path("msrvtt.json"))


def lsmdc_line(clip: str, sentence: str) -> str:
    return "\t".join([clip, "00.00.01.000", "00.00.04.000", "00.00.01.000", "00.00.04.000", sentence])


def test_lsmdc_tsv(tmp_path: Path) -> None:
    (tmp_path / "videos" / "1010_TITANIC").mkdir(parents=True)
    (tmp_path / "videos" / "1010_TITANIC" / "1010_TITANIC_00.00.01.000-00.00.04.000.avi").write_bytes(b"")
    path = tmp_path / "LSMDC16_annos_test.csv"
    path.write_text(lsmdc_line("1010_TITANIC_00.00.01.000-00.00.04.000", "SOMEONE looks at the sea.") + "\n")
    [s] = read_lsmdc(path, tmp_path / "videos")
    assert (s.id, s.captions, s.path.parent.name) == (
        "1010_TITANIC_00.00.01.000-00.00.04.000",
        ["SOMEONE looks at the sea."],
        "1010_TITANIC",
    )
    path.write_text(path.read_text() + lsmdc_line("1010_TITANIC_00.00.09.000-00.00.10.000", "Waves.") + "\n")
    with pytest.raises(DatasetError, match=r"annos_test.csv:2: unknown video id '1010_TITANIC_00.00.09"):
        read_lsmdc(path, tmp_path / "videos")
    path.write_text("1010_TITANIC_x\tonly three\tfields\n")
    with pytest.raises(DatasetError, match=r"annos_test.csv:1: 3 tab-separated fields"):
        read_lsmdc(path, tmp_path / "videos")


def test_didemo_paragraphs_in_time_order(tmp_path: Path) -> None:
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(b"")
    entries = [
        {"video": "a.mp4", "description": "the dog jumps", "times": [[2, 3], [2, 3], [2, 4]]},
        {"video": "b.mp4", "description": "a car", "times": [[0, 0]]},
        {"video": "a.mp4", "description": "a dog appears", "times": [[0, 0], [0, 1], [0, 0]]},
    ]
    path = tmp_path / "test_data.json"
    path.write_text(json.dumps(entries))
    a, b = read_didemo(path, tmp_path)
    assert a.id == "a" and a.captions == ["a dog appears the dog jumps", "a dog appears", "the dog jumps"]
    assert a.windows == [[0.0, 5.0], [10.0, 20.0]]  # median segments [0, 0] and [2, 3], 5 s each
    assert b.captions[0] == "a car"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"video": "a.mp4", "description": " ", "times": [[0, 0]]}, r"entry 1 \(a.mp4\) has an empty description"),
        ({"description": "x", "times": [[0, 0]]}, "entry 1 has no video"),
        ({"video": "a.mp4", "description": "x", "times": []}, r"entry 1 \(a.mp4\) has no \[first, last\]"),
        ({"video": "zz.mp4", "description": "x", "times": [[0, 0]]}, "unknown video id 'zz.mp4'"),
    ],
)
def test_didemo_malformed_entries_are_named(tmp_path: Path, entry: dict, message: str) -> None:
    (tmp_path / "a.mp4").write_bytes(b"")
    path = tmp_path / "val_data.json"
    path.write_text(json.dumps([{"video": "a.mp4", "description": "ok", "times": [[0, 0]]}, entry]))
    with pytest.raises(DatasetError, match=message):
        read_didemo(path, tmp_path)


def test_feature_files_npy_and_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4, 8)).astype(np.float32), rng.standard_normal((5, 4, 8)).astype(np.float32)
    np.save(tmp_path / "v1.npy", a)
    np.savez(tmp_path / "v2.npz", features=b)
    bank = load_feature_bank(tmp_path, ["v1", "v2"], regions=4, dim=8)
    feats, mask = bank.batch(np.array([0, 1]))
    assert feats.shape == (2, 5, 4, 8) and mask.sum(1).tolist() == [3, 5]
    np.testing.assert_array_equal(feats[0, :3], a)
    np.testing.assert_array_equal(feats[0, 3:], 0)
    np.save(tmp_path / "frames.npy", a[:, 0])  # (T, dim) frame features: one region per frame
    assert read_features(tmp_path / "frames.npy", regions=1, dim=8).shape == (3, 1, 8)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((3, 4, 7)), r"v1.npy: feature shape \(3, 4, 7\), expected \(frames>0, 4, 8\)"),
        (np.zeros((0, 4, 8)), r"feature shape \(0, 4, 8\)"),
        (np.zeros((2, 2, 4, 8)), r"feature shape \(2, 2, 4, 8\)"),
        (np.full((2, 4, 8), np.nan), "NaN or inf"),
    ],
)
def test_wrong_feature_shapes_are_named(tmp_path: Path, array: np.ndarray, message: str) -> None:
    np.save(tmp_path / "v1.npy", array)
    with pytest.raises(DatasetError, match=message):
        load_feature_bank(tmp_path, ["v1"], regions=4, dim=8)


def test_missing_feature_file_names_the_video(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no feature file for video id 'v9'"):
        load_feature_bank(tmp_path, ["v9"], regions=4, dim=8)
    np.savez(tmp_path / "v1.npz", other=np.zeros(3))
    with pytest.raises(DatasetError, match=r"v1.npz: no 'features' array \(has \['other'\]\)"):
        load_feature_bank(tmp_path, ["v1"], regions=4, dim=8)


def test_visern_evaluates_from_region_feature_files_as_from_frames(tmp_path: Path) -> None:
    """Feature files holding the CNN's own grid regions give the same 1k-A metrics as decoding."""
    import torch

    from models.data.datasets import FrameBank
    from models.evaluate import embed_bank, embed_texts
    from models.factory import build_model, load_config
    from models.metrics import t2v_v2t
    from models.tokenizer import build_tokenizer
    from models.videotext.evaluation import embed_features, evaluate_pairs_features
    from models.videotext.features import load_feature_bank

    torch.manual_seed(0)
    pairs = [(f"v{i}", f"a {c} {i} moves left") for i, c in enumerate(["red", "blue", "green", "yellow"])]
    tok = build_tokenizer([s for _, s in pairs])
    model = build_model(load_config("visern_tiny"), tok.get_vocab_size()).eval()
    rng = np.random.default_rng(0)
    lengths = np.array([3, 5, 2, 4])
    frames = rng.integers(0, 255, (4, 5, 32, 32, 3), dtype=np.uint8)
    with torch.no_grad():
        for i, n in enumerate(lengths):
            x = torch.from_numpy(frames[i, :n]).permute(0, 3, 1, 2).float() / 255
            np.save(tmp_path / f"v{i}.npy", model.vision.regions(x).numpy())  # (T, 16, C)
    bank = FrameBank([v for v, _ in pairs], frames, lengths)
    want = t2v_v2t(embed_texts(model, tok, [s for _, s in pairs]) @ embed_bank(model, bank).T)
    from_files = embed_features(model, load_feature_bank(tmp_path, [v for v, _ in pairs], 16, 64))
    np.testing.assert_allclose(from_files, embed_bank(model, bank), atol=1e-5)
    got = evaluate_pairs_features(model, tok, pairs, tmp_path)
    assert got["n"] == 4 and got["t2v"] == want["t2v"] and got["v2t"] == want["v2t"]
