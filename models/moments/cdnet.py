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

    def project(self, clips: torch.Tensor, sent: torch.Tensor, toks: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return l2norm(self.pv(clips)), l2norm(self.pq(sent)), l2norm(self.pt(toks))

    def forward(
        self, clips: torch.Tensor, sent: torch.Tensor, toks: torch.Tensor, tok_mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        v, q, t = self.project(clips, sent, toks)  # (B, T, d), (B, d), (B, L, d)
        g = torch.einsum("btd,bd->bt", v, q)
        f = torch.einsum("btd,bld->btl", v, t).masked_fill(tok_mask[:, None] == 0, -2.0).amax(-1)  # (B, T)
        a = self.mlp(torch.cat([g[..., None], f[..., None], v * q[:, None]], -1)).squeeze(-1).sigmoid()
        return a, g, f, v, q


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

    def forward(
        self, aligned: torch.Tensor, ctx: torch.Tensor, q: torch.Tensor, clip_mask: torch.Tensor
    ) -> torch.Tensor:
        b, t, d = aligned.shape
        inp = torch.cat([ctx, q[:, None].expand(-1, t, -1)], -1)  # (B, T, 2d)
        delta = torch.tanh(self.offsets(inp)) * self.max_offset  # (B, T, K) clips
        w = self.weights(inp).softmax(-1)  # (B, T, K)
        index, _, n = clip_positions(clip_mask)
        pos = torch.minimum(torch.maximum(index[..., None] + delta, torch.zeros_like(delta)), (n - 1)[..., None])
        lo = torch.floor(pos)
        hi = torch.minimum(lo + 1, (n - 1)[..., None])
        frac = (pos - lo).unsqueeze(-1)  # (B, T, K, 1)
        k = delta.shape[-1]

        def take(idx: torch.Tensor) -> torch.Tensor:
            flat = idx.reshape(b, t * k, 1).to(torch.long).expand(-1, -1, d)  # (B, T*K, d)
            return aligned.gather(1, flat).reshape(b, t, k, d)

        sampled = take(lo) * (1 - frac) + take(hi) * frac  # (B, T, K, d)
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

    def run(
        self,
        sent: torch.Tensor,
        toks: torch.Tensor,
        attention_mask: torch.Tensor,
        clips: torch.Tensor,
        clip_mask: torch.Tensor,
    ) -> dict[str, Any]:
        """Everything ``localize`` and the losses need from the query tower's sentence (B, E) and tokens
        (B, L, E): per-layer (c, w) / logits, saliency, QSD terms."""
        v = self.drop(self.clip_in(clips))  # (B, T, d)
        a, g, f, v_hat, q_hat = self.qsd(clips, sent, toks, attention_mask)
        if not self.use_qsd:
            a = torch.ones_like(a)
        aligned, context = v * a[..., None], v * (1 - a[..., None])
        q = self.sent_in(sent)  # (B, d)
        x = aligned + self.ctx_in(context) + self.corr_in(torch.stack([g, f], -1))  # correlations as features
        if self.cdd is not None:
            x = x + self.cdd(aligned, aligned + context, q, clip_mask)
        _, frac, _ = clip_positions(clip_mask)
        x = x + sine_embed(frac, self.hidden) + self.type_emb[0]
        t = self.tok_in(toks) + self.type_emb[1]  # (B, L, d)
        mem, mask = torch.cat([x, t], 1), torch.cat([clip_mask, attention_mask], 1)  # (B, T+L, d), (B, T+L)
        for blk in self.encoder:
            mem = blk(mem, mask)
        mem = self.enc_ln(mem)
        n_clips = clips.shape[1]
        sal = self.sal(mem[:, :n_clips]).squeeze(-1).masked_fill(clip_mask == 0, PAD_SALIENCY)  # (B, T)
        h = self.queries[None] + self.sent_in(sent)[:, None]  # (B, Q, d): moment queries know the sentence
        qpos = self.qpos(sine_embed(self.anchors[:, 0].sigmoid(), self.hidden))[None]  # (1, Q, d), like clips' pos
        layers = []
        for layer in self.decoder:
            h = layer(h, qpos, mem, mask)
            z = self.dec_ln(h)
            cw = (self.anchors[None] + self.span(z)).sigmoid()  # (B, Q, 2) (c, w) around each anchor
            layers.append((cw, self.cls(z)))  # (c, w), (B, Q, 2) fg/bg logits
        return {"layers": layers, "saliency": sal, "a": a, "g": g, "f": f, "v_hat": v_hat, "q_hat": q_hat}

    def localize(
        self,
        sentence: torch.Tensor,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor,
        clips: torch.Tensor,
        clip_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.run(sentence, tokens, attention_mask, clips, clip_mask)
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
