"""``cdnet``: a moment head after CDNet (arXiv 2408.07600), on the retrieval model's clip features.

Only CDNet's abstract is known (METHODS.md §1): query-guided semantic disentanglement (QSD) from
global and token-level query-clip correlation, context-aware dynamic denoising (CDD) with
query-relevant temporal offsets, then a DETR-style grounding stage with Hungarian matching. Every
concrete choice below is xmr's (METHODS.md §1(g) [D]), not the paper's:

- QSD: ``g_i = cos(v̂_i, q̂)``, ``f_i = max_j cos(v̂_i, t̂_j)`` on learned E -> E projections that start
  as the identity (the retrieval space's own cosines); ``(g_i, f_i)`` also enter the clip tokens; alignment
  ``a_i = σ(MLP([g_i, f_i, v̂_i ⊙ q̂]))``; aligned stream ``v_i·a_i`` and context stream ``v_i·(1 - a_i)``.
  Trained by BCE of ``a_i`` against "clip inside a GT window" and two InfoNCE losses: clip-sentence on
  ``g`` (positives: clips inside the window; negatives: clips outside it and clips of other videos in the
  batch, other queries on the same video left out) and clip-token on ``f`` within the video (positives
  inside, negatives outside; across the batch it would cost B x L x B x T x E).
- CDD: 1-D deformable sampling. For clip ``i``, ``K`` offsets ``Δ_ik`` (tanh x ``cdd_max_offset`` clips)
  and weights ``softmax_k`` from ``[x_i; q]`` where ``x_i`` = aligned + context (context-aware); the aligned
  stream is read at ``i + Δ_ik`` by linear interpolation (gather + arithmetic, ONNX-exportable), clamped
  to the video's valid clips, and the weighted sum is added to the aligned stream.
- Grounding: clips (+ sine position of their centre fraction) and projected query tokens run through
  ``enc_layers`` transformer blocks; ``queries`` learned moment queries (plus the projected sentence)
  decode over that memory (``dec_layers``); each query has a learned anchor (c, w) (after DAB-DETR: its
  positional query is the anchor centre's sine embedding, the same code the clips carry) and predicts
  a correction in logit space, and a 2-way fg logit; saliency is a linear map of the
  encoded clips. Loss weights, 10 queries, 2 decoder layers: Moment-DETR's (§1(c), (d)).
- Ablations (config): ``use_qsd: false`` (a_i ≡ 1, no QSD losses), ``cdd_points: 0`` (no CDD).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.encoders.blocks import Block, l2norm
from models.moments.common import PAD_SALIENCY, MomentHead, clip_positions, cw_to_se, saliency_hinge, sine_embed
from models.moments.detr import DecoderLayer, set_loss
from models.registry import MOMENT_HEADS

TAU = 0.1  # InfoNCE temperature of the QSD losses (ours)


class QSD(nn.Module):
    """Alignment a (B, T) in (0, 1) and the correlations (g, f) used by the contrastive losses.

    The projections live in the retrieval embedding space (E -> E) and start as the identity (ours), so
    g and f start as the retrieval model's own clip-sentence / clip-token cosines and the dual-level
    contrastive losses refine them.
    """

    def __init__(self, dim: int, d: int) -> None:
        super().__init__()
        self.pv, self.pq, self.pt = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        for lin in (self.pv, self.pq, self.pt):
            nn.init.eye_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.mlp = nn.Sequential(nn.Linear(dim + 2, d), nn.ReLU(), nn.Linear(d, 1))

    def project_query(self, sent: torch.Tensor, toks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, E) sentence, (B, L, E) tokens -> their unit-norm projections (the query side, once per request)."""
        return l2norm(self.pq(sent)), l2norm(self.pt(toks))

    # Serving form (xmr's, 2026-12-07): the same numbers as ``forward`` without projecting any clip E -> E.
    # With u = P c + p (``pv``) and s = 1 / |u| (``clip_scale``, stored per clip when the bundle is built):
    # g = s (c · Pᵀq̂ + p · q̂), f = s max_j (c · Pᵀt̂_j + p · t̂_j), and the MLP's first layer on v̂ ⊙ q̂ is
    # s (M c + W (q̂ ⊙ p)) with M = W diag(q̂) P. The query's maps are computed once per request
    # (``fold_query``); a window then needs one (E -> 1 + d) and one (E -> L) product per clip instead of
    # (E -> E). tests/models/moments/test_heads.py checks it against ``forward``.

    def clip_scale(self, clips: torch.Tensor) -> torch.Tensor:
        """(..., E) clips -> (...) 1 / |pv(c)| (as ``l2norm`` divides, norm clamped at 1e-12)."""
        return 1.0 / self.pv(clips).norm(dim=-1).clamp_min(1e-12)

    def fold_query(self, q_hat: torch.Tensor, t_hat: torch.Tensor) -> dict[str, torch.Tensor]:
        """The projected query (``project_query``) as maps of raw clips: (B, E, 1 + d) and (B, 1 + d) for g and
        the MLP's v̂ ⊙ q̂ term, (B, L, E) and (B, L) for the token correlations."""
        proj, bias = self.pv.weight, self.pv.bias  # u = c @ proj.T + bias
        w = self.mlp[0].weight[:, 2:]  # (d, E): the first layer's weights on v̂ ⊙ q̂
        m = (w[None] * q_hat[:, None]) @ proj  # (B, d, E) = W diag(q̂) P
        return {
            "qsd_clip_query": torch.cat([(q_hat @ proj)[..., None], m.transpose(1, 2)], -1),
            "qsd_clip_query_bias": torch.cat([(q_hat @ bias)[:, None], (q_hat * bias) @ w.T], -1),
            "qsd_token_rows": t_hat @ proj,
            "qsd_token_bias": t_hat @ bias,
        }

    def folded(
        self, clips: torch.Tensor, scale: torch.Tensor, query: dict[str, torch.Tensor], tok_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``forward``'s a, g, f (B, T) from raw clips (B, T, E), their ``clip_scale`` (B, T) and ``fold_query``.

        f's padded tokens are masked before the scale (a query always has a real token, so its max is one)."""
        y = clips @ query["qsd_clip_query"] + query["qsd_clip_query_bias"][:, None]  # (B, T, 1 + d)
        tok = clips @ query["qsd_token_rows"].transpose(1, 2) + query["qsd_token_bias"][:, None]  # (B, T, L)
        g = scale * y[..., 0]
        f = scale * tok.masked_fill(tok_mask[:, None] == 0, -1e4).amax(-1)
        w = self.mlp[0].weight
        h = g[..., None] * w[:, 0] + f[..., None] * w[:, 1] + scale[..., None] * y[..., 1:] + self.mlp[0].bias
        return self.mlp[2](self.mlp[1](h)).squeeze(-1).sigmoid(), g, f

    def forward(
        self, clips: torch.Tensor, q: torch.Tensor, t: torch.Tensor, tok_mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """clips (B, T, E) and the projected query (``project_query``) -> a, g, f (B, T) and v̂ (B, T, E)."""
        v = l2norm(self.pv(clips))
        g = torch.einsum("btd,bd->bt", v, q)
        f = torch.einsum("btd,bld->btl", v, t).masked_fill(tok_mask[:, None] == 0, -2.0).amax(-1)  # (B, T)
        a = self.mlp(torch.cat([g[..., None], f[..., None], v * q[:, None]], -1)).squeeze(-1).sigmoid()
        return a, g, f, v


class CDD(nn.Module):
    """Deformable 1-D re-sampling of the aligned stream at K query-relevant offsets (linear interpolation)."""

    def __init__(self, d: int, points: int, max_offset: float) -> None:
        super().__init__()
        self.max_offset = max_offset
        self.offsets = nn.Linear(2 * d, points)
        self.weights = nn.Linear(2 * d, points)
        self.out = nn.Linear(d, d)
        nn.init.zeros_(self.offsets.weight)
        with torch.no_grad():  # start spread out symmetrically around each clip (Deformable-DETR-like init)
            self.offsets.bias.copy_(torch.atanh(torch.linspace(-0.5, 0.5, points)))

    def query_side(self, q: torch.Tensor) -> torch.Tensor:
        """(B, d) query -> (B, 2K): its share of the offset and weight logits (the linear maps of ``[x_i; q]``
        split by input half, so the query's half is computed once per request, not once per clip)."""
        d = q.shape[-1]
        w = torch.cat([self.offsets.weight[:, d:], self.weights.weight[:, d:]])
        return F.linear(q, w, torch.cat([self.offsets.bias, self.weights.bias]))

    def forward(
        self, aligned: torch.Tensor, ctx: torch.Tensor, query: torch.Tensor, index: torch.Tensor, n: torch.Tensor
    ) -> torch.Tensor:
        """aligned/ctx (B, T, d), the query's logits (B, 2K) (``query_side``), clip index (B, T) and valid
        clips n (B, 1) (``clip_positions``)."""
        b, t, d = aligned.shape
        k = self.offsets.out_features
        w_ctx = torch.cat([self.offsets.weight[:, :d], self.weights.weight[:, :d]])  # (2K, d)
        logits = F.linear(ctx, w_ctx) + query[:, None]  # (B, T, 2K) = offsets([x_i; q]), weights([x_i; q])
        delta = torch.tanh(logits[..., :k]) * self.max_offset  # (B, T, K) clips
        w = logits[..., k:].softmax(-1)  # (B, T, K)
        pos = torch.minimum((index[..., None] + delta).clamp_min(0.0), (n - 1)[..., None])
        lo = torch.floor(pos)
        hi = torch.minimum(lo + 1, (n - 1)[..., None])
        frac = (pos - lo).unsqueeze(-1)  # (B, T, K, 1)
        # both neighbours in one row gather from the (B*T, d) aligned stream (row = b*T + clip): one Gather
        # in ONNX, where a gather along the clip axis needs its index expanded over d (8% of the window graph)
        base = (torch.cumsum(torch.ones_like(n), 0) - 1.0) * t  # (B, 1): each video's first row
        rows = (torch.cat([lo, hi], -1).reshape(b, t * 2 * k) + base).reshape(-1).to(torch.long)
        below, above = aligned.reshape(b * t, d)[rows].reshape(b, t, 2 * k, d).split(k, 2)
        sampled = below * (1 - frac) + above * frac  # (B, T, K, d)
        return self.out((w.unsqueeze(-1) * sampled).sum(2))


@MOMENT_HEADS.register("cdnet")
class CDNetHead(MomentHead):
    def __init__(self, cfg: dict[str, Any], text_tower: nn.Module) -> None:
        super().__init__(cfg, text_tower)
        d, heads = cfg.get("hidden", 64), cfg.get("heads", 4)
        self.hidden, self.use_qsd = d, bool(cfg.get("use_qsd", True))
        self.clip_in, self.tok_in, self.sent_in = nn.Linear(self.dim, d), nn.Linear(self.dim, d), nn.Linear(self.dim, d)
        self.ctx_in, self.corr_in = nn.Linear(d, d), nn.Linear(2, d)
        self.qsd = QSD(self.dim, d)
        points = int(cfg.get("cdd_points", 4))
        self.cdd = CDD(d, points, float(cfg.get("cdd_max_offset", 8.0))) if points > 0 else None
        self.type_emb = nn.Parameter(torch.zeros(2, d))
        self.encoder = nn.ModuleList(Block(d, heads) for _ in range(cfg.get("enc_layers", 2)))
        self.enc_ln = nn.LayerNorm(d)
        nq = cfg.get("queries", 10)
        self.queries = nn.Parameter(torch.randn(nq, d) * 0.1)
        # anchors (ours, after DAB-DETR): each query starts at its own (c, w) and predicts a correction
        anchors = torch.stack([torch.linspace(0.05, 0.95, nq), torch.full((nq,), 0.12)], -1)
        self.anchors = nn.Parameter(torch.logit(anchors))
        self.qpos = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.decoder = nn.ModuleList(DecoderLayer(d, heads) for _ in range(cfg.get("dec_layers", 2)))
        self.dec_ln = nn.LayerNorm(d)
        self.span = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 2))
        nn.init.zeros_(self.span[-1].weight)
        nn.init.zeros_(self.span[-1].bias)
        self.cls = nn.Linear(d, 2)
        self.sal = nn.Linear(d, 1)
        self.drop = nn.Dropout(cfg.get("dropout", 0.1))

    def query_pos(self) -> torch.Tensor:
        """(1, Q, d): each moment query's positional query, from its anchor centre (like the clips' positions)."""
        return self.qpos(sine_embed(self.anchors[:, 0].sigmoid(), self.hidden))[None]

    def _query(self, sentence: torch.Tensor, tokens: torch.Tensor, fold: bool) -> dict[str, torch.Tensor]:
        """Everything that depends on the query alone: QSD's projections (``fold``: as maps of raw clips, the
        serving form), the query in the head's width, the token memory entries, and the moment queries after
        the first decoder layer's self-attention."""
        q_hat, t_hat = self.qsd.project_query(sentence, tokens)
        q = self.sent_in(sentence)  # (B, d)
        h = self.queries[None] + q[:, None]  # (B, Q, d): moment queries know the sentence
        qsd = self.qsd.fold_query(q_hat, t_hat) if fold else {"qsd_sentence": q_hat, "qsd_tokens": t_hat}
        return {
            **qsd,
            **({"cdd_query": self.cdd.query_side(q)} if self.cdd is not None else {}),  # (B, 2K)
            "token_states": self.tok_in(tokens) + self.type_emb[1],  # (B, L, d)
            "moment_queries": self.decoder[0].attend_queries(h, self.query_pos()),  # (B, Q, d)
        }

    def query_side(
        self, sentence: torch.Tensor, tokens: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The query graph's tensors (xmr's serving split: computed once per request, not once per window)."""
        return self._query(sentence, tokens, fold=True)

    def clip_side(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each clip's 1 / |pv(c)| (QSD's serving form, ``QSD.folded``), computed when the bundle is built."""
        return {"qsd_clip_scale": self.qsd.clip_scale(clips)}

    def run(
        self,
        sent: torch.Tensor,
        toks: torch.Tensor,
        attention_mask: torch.Tensor,
        clips: torch.Tensor,
        clip_mask: torch.Tensor,
    ) -> dict[str, Any]:
        """Everything the losses need from the query tower's sentence (B, E) and tokens (B, L, E): per-layer
        (c, w) / logits, saliency, QSD terms (the training form: QSD's projected clips v̂ enter its losses)."""
        query = self._query(sent, toks, fold=False)
        q_hat = query["qsd_sentence"]
        a, g, f, v_hat = self.qsd(clips, q_hat, query["qsd_tokens"], attention_mask)
        out = self.ground(query, attention_mask, clips, clip_mask, (a, g, f))
        return out | {"a": a, "g": g, "f": f, "v_hat": v_hat, "q_hat": q_hat}

    def ground(
        self,
        query: dict[str, torch.Tensor],
        attention_mask: torch.Tensor,
        clips: torch.Tensor,
        clip_mask: torch.Tensor,
        qsd: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        last_only: bool = False,
    ) -> dict[str, Any]:
        """From QSD's (a, g, f): CDD, the encoder and the decoder -> per-layer (c, w) / logits (``last_only``:
        the last layer's alone, for inference) and saliency."""
        a, g, f = qsd
        v = self.drop(self.clip_in(clips))  # (B, T, d)
        if not self.use_qsd:
            a = torch.ones_like(a)
        aligned, context = v * a[..., None], v * (1 - a[..., None])
        x = aligned + self.ctx_in(context) + self.corr_in(torch.stack([g, f], -1))  # correlations as features
        index, frac, n = clip_positions(clip_mask)
        if self.cdd is not None:
            x = x + self.cdd(aligned, aligned + context, query["cdd_query"], index, n)
        x = x + sine_embed(frac, self.hidden) + self.type_emb[0]
        mem = torch.cat([x, query["token_states"]], 1)  # (B, T+L, d)
        mask = torch.cat([clip_mask, attention_mask], 1)  # (B, T+L)
        for blk in self.encoder:
            mem = blk(mem, mask)
        mem = self.enc_ln(mem)
        n_clips = clips.shape[1]
        sal = self.sal(mem[:, :n_clips]).squeeze(-1).masked_fill(clip_mask == 0, PAD_SALIENCY)  # (B, T)
        h, qpos = query["moment_queries"], self.query_pos()  # the first layer's self-attention is done
        layers = []
        for i, layer in enumerate(self.decoder):
            h = layer.attend_memory(h, qpos, mem, mask) if i == 0 else layer(h, qpos, mem, mask)
            if last_only and i < len(self.decoder) - 1:
                continue
            z = self.dec_ln(h)
            cw = (self.anchors[None] + self.span(z)).sigmoid()  # (B, Q, 2) (c, w) around each anchor
            layers.append((cw, self.cls(z)))  # (c, w), (B, Q, 2) fg/bg logits
        return {"layers": layers, "saliency": sal}

    def localize_windows(
        self,
        query: dict[str, torch.Tensor],
        attention_mask: torch.Tensor,
        clips: torch.Tensor,
        clip_mask: torch.Tensor,
        clip_side: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scale = (clip_side or self.clip_side(clips))["qsd_clip_scale"]
        qsd = self.qsd.folded(clips, scale, query, attention_mask)
        out = self.ground(query, attention_mask, clips, clip_mask, qsd, last_only=True)
        cw, logits = out["layers"][-1]
        return cw_to_se(cw), logits.softmax(-1)[..., 0], out["saliency"]

    def loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """batch: forward inputs + ``windows`` (list of (G, 2) fractions), ``inside`` (B, T) float,
        ``pos``/``neg`` (B, P) saliency clip ids, ``video`` (B,) video index (same video, same id)."""
        mask = batch["attention_mask"]
        out = self.run(*self.text(batch["input_ids"], mask), mask, batch["clips"], batch["clip_mask"])
        terms = {k: torch.zeros(()) for k in ("l1", "giou", "ce", "loss")}
        for cw, logits in out["layers"]:  # aux loss: every decoder layer
            for k, v in set_loss(cw, logits, batch["windows"]).items():
                terms[k] = terms[k] + v / len(out["layers"])
        terms["saliency"] = saliency_hinge(out["saliency"], batch["pos"], batch["neg"])
        total = terms["loss"] + terms["saliency"]
        if self.use_qsd:
            terms.update(self.qsd_losses(out, batch))
            total = total + terms["bce"] + terms["nce_sentence"] + terms["nce_token"]
        terms["loss"] = total
        return terms

    def qsd_losses(self, out: dict[str, Any], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """BCE of a_i; clip-sentence InfoNCE across the batch; clip-token InfoNCE within the video (ours:
        the token level across the batch costs B x L x B x T x E, too much for a CPU budget)."""
        inside, valid = batch["inside"], batch["clip_mask"].to(torch.float32)
        bce = (F.binary_cross_entropy(out["a"].clamp(1e-6, 1 - 1e-6), inside, reduction="none") * valid).sum()
        g_all = torch.einsum("bd,ctd->bct", out["q_hat"], out["v_hat"])  # (B, B, T): query b vs clips of row c
        f_own = torch.eye(len(inside))[..., None] * out["f"][None]  # (B, B, T): only b's own row is used
        return {
            "bce": bce / valid.sum(),
            "nce_sentence": _multi_positive_nce(g_all, inside, valid, batch["video"]),
            "nce_token": _multi_positive_nce(f_own, inside, valid, batch["video"], only_own=True),
        }


def _multi_positive_nce(
    sim: torch.Tensor, inside: torch.Tensor, valid: torch.Tensor, video: torch.Tensor, only_own: bool = False
) -> torch.Tensor:
    """sim (B, B, T): query b vs clip t of row c. Positives: b's own row, inside b's window. The denominator
    holds every valid clip of every row except other rows showing b's video (their clips are b's clips);
    with ``only_own``, b's own row only (a within-video contrast)."""
    b = sim.shape[0]
    own = torch.eye(b, dtype=torch.bool)
    rows = own if only_own else (~(video[:, None] == video[None, :]) | own)
    keep = rows[..., None] & (valid[None] > 0)  # (B, B, T)
    logits = (sim / TAU).masked_fill(~keep, -1e4)
    pos = own[..., None] & (inside[None] > 0) & keep  # only the diagonal rows' GT clips
    log_den = logits.flatten(1).logsumexp(-1)
    log_num = logits.masked_fill(~pos, -1e4).flatten(1).logsumexp(-1)
    has_pos = pos.flatten(1).any(-1)
    return ((log_den - log_num) * has_pos).sum() / has_pos.sum().clamp_min(1)
