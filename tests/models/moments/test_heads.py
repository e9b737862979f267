"""Every registered moment head: shapes, masks (batched == single), ONNX parity, and learning."""

from pathlib import Path

import pytest
import torch

from models.moments.batching import inputs
from models.moments.common import PAD_SALIENCY, cw_to_se
from models.moments.export import export_onnx
from models.moments.heads import build_head, head_config
from models.moments.metrics import eval_submission
from models.moments.predict import predict, trivial
from models.moments.train import fit_epoch
from models.registry import MOMENT_HEADS
from tests.models.moments.helpers import CLIP_RATE, synthetic_set, tower_and_tokenizer

SMALL = {"hidden": 32, "heads": 2, "clip_rate": CLIP_RATE}


@pytest.fixture(scope="module")
def setup():  # noqa: ANN201
    tower, tok = tower_and_tokenizer()
    return tower, tok, *synthetic_set(tower, tok, 6, seed=0)


@pytest.mark.parametrize("name", MOMENT_HEADS.names())
def test_forward_shapes_and_padding_invariance(name: str, setup) -> None:  # noqa: ANN001
    tower, tok, qs, feats = setup
    torch.manual_seed(0)
    head = build_head(head_config(name, **SMALL), tower).eval()
    feats_list = [feats[q.vid] for q in qs[:3]]
    with torch.no_grad():
        spans, scores, sal = head(**inputs(tok, [q.query for q in qs[:3]], feats_list))
        t = max(len(f) for f in feats_list)
        assert spans.shape[0] == 3 and spans.shape[2] == 2 and scores.shape == spans.shape[:2] and sal.shape == (3, t)
        assert spans.dtype == scores.dtype == sal.dtype == torch.float32
        assert (spans >= 0).all() and (spans <= 1).all() and (spans[..., 0] <= spans[..., 1]).all()
        for i, f in enumerate(feats_list):  # each video alone, unpadded: identical outputs
            s1, sc1, sal1 = head(**inputs(tok, [qs[i].query], [f]))
            assert torch.allclose(spans[i], s1[0], atol=1e-5)
            assert torch.allclose(scores[i], sc1[0], atol=1e-5)
            assert torch.allclose(sal[i, : len(f)], sal1[0], atol=1e-5)
            assert (sal[i, len(f) :] == PAD_SALIENCY).all()


@pytest.mark.parametrize("name", MOMENT_HEADS.names())
def test_onnx_export_matches_torch(name: str, setup, tmp_path: Path) -> None:  # noqa: ANN001
    tower, tok, _, _ = setup
    torch.manual_seed(0)
    head = build_head(head_config(name, **SMALL), tower)
    assert export_onnx(head, tok, tmp_path, atol=1e-4) <= 1e-4  # query graph then head graph, end to end


def test_cdnet_query_side_runs_in_the_query_graph_and_once_per_request(setup, tmp_path: Path) -> None:  # noqa: ANN001
    """cdnet's window graph takes its query-side tensors (not the sentence and tokens it would have to
    project again per window) and its clip side (computed once per clip by the clip graph), and a batch-1
    query repeated per window gives each window's own answer."""
    import onnxruntime as ort

    from bundle import MOMENT_CLIPS, MOMENT_HEAD, MOMENT_QUERY
    from bundle.moment_graphs import run_clips, run_query, run_windows

    tower, tok, qs, feats = setup
    torch.manual_seed(0)
    head = build_head(head_config("cdnet", **SMALL), tower).eval()
    export_onnx(head, tok, tmp_path)
    query, windows, clips = (ort.InferenceSession(str(tmp_path / n)) for n in (MOMENT_QUERY, MOMENT_HEAD, MOMENT_CLIPS))
    w_in = {i.name for i in windows.get_inputs()}
    assert {"qsd_clip_query", "qsd_token_rows", "qsd_clip_scale", "cdd_query", "token_states", "moment_queries"} <= w_in
    assert not {"sentence", "tokens", "input_ids", "qsd_sentence", "qsd_tokens"} & w_in
    vids = [feats[q.vid] for q in qs[:3]]
    batch = inputs(tok, [qs[0].query] * 3, vids)  # one query, three windows
    with torch.no_grad():
        want = [o.numpy() for o in head(**batch)]
    side = run_query(query, batch["input_ids"][:1].numpy(), batch["attention_mask"][:1].numpy())
    assert all(len(v) == 1 for v in side.values())  # computed once, batch 1
    b, t, e = batch["clips"].shape
    per_clip = {k: v.reshape(b, t) for k, v in run_clips(clips, batch["clips"].reshape(b * t, e).numpy()).items()}
    got = run_windows(windows, side, batch["clips"].numpy(), batch["clip_mask"].numpy(), per_clip)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and abs(g - w).max() <= 1e-4


@pytest.mark.parametrize("variant", [{}, {"use_qsd": False}, {"cdd_points": 0}, {"dec_layers": 2, "enc_layers": 2}])
def test_cdnet_serving_form_equals_the_training_form(variant: dict, setup) -> None:  # noqa: ANN001
    """``localize`` (QSD folded into the query's maps and a per-clip scale, no E x E projection of the clips;
    only the last decoder layer's heads) equals the training form's last layer (``run``: the clips projected
    and normalised as the paper's design has them) on a trained-looking head: random, not identity,
    projections, padded tokens and padded clips."""
    tower, tok, qs, feats = setup
    torch.manual_seed(1)
    head = build_head(head_config("cdnet", **SMALL, **variant), tower).eval()
    with torch.no_grad():
        for lin in (head.qsd.pv, head.qsd.pq, head.qsd.pt):  # away from the identity they start at
            lin.weight.add_(0.3 * torch.randn_like(lin.weight))
            lin.bias.add_(0.1 * torch.randn_like(lin.bias))
        texts = [qs[0].query, "x", qs[2].query + " and a red 2 appears"]  # different token counts: padding
        batch = inputs(tok, texts, [feats[q.vid] for q in qs[:3]])
        sentence, tokens = head.text(batch["input_ids"], batch["attention_mask"])
        out = head.run(sentence, tokens, batch["attention_mask"], batch["clips"], batch["clip_mask"])
        cw, logits = out["layers"][-1]
        want = (cw_to_se(cw), logits.softmax(-1)[..., 0], out["saliency"])
        got = head.localize(sentence, tokens, batch["attention_mask"], batch["clips"], batch["clip_mask"])
    assert (batch["attention_mask"] == 0).any() and (batch["clip_mask"] == 0).any()
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g, w, atol=2e-5), (g - w).abs().max()


@pytest.mark.parametrize("name", ["span_regression", "cdnet"])
def test_trained_head_beats_trivial_predictors(name: str, setup) -> None:  # noqa: ANN001
    tower, tok, _, _ = setup
    train_q, feats = synthetic_set(tower, tok, 96, seed=1)
    test_q, test_feats = synthetic_set(tower, tok, 40, seed=2)
    torch.manual_seed(0)
    cfg = head_config(name, **SMALL, batch_size=16, lr=2e-3)
    head = build_head(cfg, tower)
    opt = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=cfg["lr"])
    for epoch in range(15):
        fit_epoch(head, opt, tok, train_q, feats, cfg, epoch, epoch)
    gt = [q.row for q in test_q]
    ours = eval_submission(predict(head, tok, test_q, test_feats, CLIP_RATE), gt)["brief"]
    for kind in ("whole", "centre", "random"):
        base = eval_submission(trivial(test_q, kind), gt)["brief"]
        assert ours["MR-full-R1@0.5"] > base["MR-full-R1@0.5"] + 10, (kind, ours, base)
        assert ours["MR-full-mAP"] > base["MR-full-mAP"], (kind, ours, base)


def test_a_config_file_names_its_head_and_unknown_names_are_refused() -> None:
    from xmr.errors import ConfigError

    cfg = head_config("cdnet_serve", epochs=3)
    assert cfg["head"] == "cdnet" and cfg["epochs"] == 3
    assert (cfg["hidden"], cfg["heads"], cfg["enc_layers"], cfg["dec_layers"]) == (32, 2, 1, 1)
    with pytest.raises(ConfigError, match="unknown moment head 'nope'"):
        head_config("nope")
