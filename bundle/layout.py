"""Every name in a bundle: files, the items table, the clips layout, the ONNX graphs' inputs/outputs.

Layout (DESIGN.md)::

    <root>/<collection>/CURRENT                 names the live version; replaced atomically
    <root>/<collection>/<version>/
        manifest.json       schema_version, collection, version, model_id, dim, counts, ... + sha256 per file
        index.faiss         FAISS index; vector id i is segments row i, whose ``item`` is an items row
        items.sqlite        ITEMS_SCHEMA and SEGMENTS_SCHEMA below
        clips/features.npy  (N_clips, E) float16 per-clip features of every video, concatenated
        clips/offsets.npy   (N_items + 1,) int64: item row i's clips are features[offsets[i]:offsets[i+1]]
        text_encoder.onnx   TEXT_ENCODER_INPUTS -> TEXT_ENCODER_OUTPUT
        tokenizer.json      Hugging Face ``tokenizers`` file for the text encoder
        moment_query.onnx   optional, with moment_head.onnx: the head's query side (bundle/moment_graphs.py)
        moment_head.onnx    optional: query-side tensors + WINDOW_FEEDS -> MOMENT_HEAD_OUTPUTS (manifest "moment_head")
        moment_clips.onnx   optional, with moment_head.onnx: the head's clip side, run over every clip at build time
        clips/moment_<name>.npy  its outputs, one row per clip (aligned with clips/features.npy), memory-mapped
        rerank.onnx         optional: RERANK_INPUTS -> RERANK_OUTPUT (manifest "rerank"); token-level
                            models (ProTA) re-score the FAISS top candidates from their clips/ features

Retrieval vectors are segments: an image or a video no longer than the video tower's span has one
(``[0, duration]``); a longer video has one per overlapping window of the span, each with its
``[start, end]`` seconds, and search ranks a video by its best segment. The manifest's
``media_root`` is the absolute folder the items' relative uris resolve against (the service may
map it elsewhere, e.g. ``XMR_MEDIA_ROOT`` in a container); no item carries a server path.

``clips/`` is read by the moment head at query time (memory-mapped, so moments need no video
decoding); bundles without a moment head still carry it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# 2: the format got one owner (this package); a newer reader refuses bundles it does not know.
# 3: FAISS ids are segment rows (the segments table); manifest field media_root; no metadata.path.
# 4: the moment head split into moment_query.onnx + moment_head.onnx.
# 5: the query graph may output more query-side tensors than sentence and tokens (the head's own
#    projections, computed once per request), which the window graph takes by name (a reader of 4 would
#    not feed them).
# 6: the moment head may have a clip side (moment_clips.onnx, run over every clip when the bundle is built;
#    its outputs stored as clips/moment_<name>.npy), which the window graph takes by name (a reader of 5
#    would not feed them).
SCHEMA_VERSION = 6
OLDEST_READABLE_SCHEMA = 3  # 3 reads as 4 whose moment head (if any) is one graph (LEGACY_MOMENT_HEAD_INPUTS)

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
INDEX = "index.faiss"
ITEMS = "items.sqlite"
TEXT_ENCODER = "text_encoder.onnx"
TOKENIZER = "tokenizer.json"
MOMENT_HEAD = "moment_head.onnx"
MOMENT_QUERY = "moment_query.onnx"
MOMENT_CLIPS = "moment_clips.onnx"
RERANK = "rerank.onnx"
CLIPS_DIR = "clips"
CLIPS_FEATURES = f"{CLIPS_DIR}/features.npy"
CLIPS_OFFSETS = f"{CLIPS_DIR}/offsets.npy"
STAGING_PREFIX = ".staging-"
# In a staging folder while its build runs: {"pid", "host", "started"} of the building process, so a
# later build or garbage collection can tell a dead build's leftovers from a live build's work.
STAGING_LOCK = "build.lock"
WORK_DIR = ".work"
MEDIA_ROOT = "media_root"  # manifest field: absolute folder that relative item uris resolve against

REQUIRED_FILES = (INDEX, ITEMS, TEXT_ENCODER, TOKENIZER)

# text_encoder.onnx: (input_ids, attention_mask) (B, L) int64 -> embeddings (B, E) float32, unit norm.
TEXT_ENCODER_INPUTS = ("input_ids", "attention_mask")
TEXT_ENCODER_OUTPUT = "embeddings"

# The moment head is two graphs, so that a request scoring many clip windows runs the text tower once:
# moment_query.onnx: (input_ids, attention_mask) (B, L) int64 -> sentence (B, E) float32, the query in the
#    retrieval space, and the head's other query-side tensors, batch-first (named by the manifest's
#    moment_head "query_graph"). A head whose query side is the text tower alone outputs sentence and
#    tokens (B, L, E) (MOMENT_QUERY_OUTPUTS); cdnet also outputs its projections of them (schema 5), so
#    the per-window graph does not recompute them for every window.
# moment_head.onnx: any query graph outputs, by name, + WINDOW_FEEDS: attention_mask (B, L) int64, clip
#    features (B, T, E) float32 and clip_mask (B, T) int64 -> spans (B, Q, 2) float32 as (start, end)
#    fractions of the T clips' span, span_scores (B, Q) float32, saliency (B, T) float32 (one score per
#    clip). A head that does not use an input (the baselines ignore the tokens) has it pruned from its
#    graph: feed what the graph lists.
#    The manifest's "moment_head" entry names the head and the longest window (in clips) it was trained
#    on; longer videos are scored in overlapping windows. A padded row's fractions are of its valid clips
#    (clip_mask.sum(), as Moment-DETR normalises by the video's own duration), so padding never moves a span.
# moment_clips.onnx (schema 6, optional): clips (N, E) float32 -> per-clip tensors (N, ...) float32, named by
#    the manifest's moment_head "clip_side" and stored as CLIP_SIDE_FILE; the service feeds a window's rows
#    of them, padded like its clips, to moment_head.onnx by name (cdnet: 1 / |QSD's projection| of each clip,
#    so no request projects clips E -> E).
MOMENT_QUERY_INPUTS = ("input_ids", "attention_mask")
MOMENT_CLIPS_INPUT = "clips"
CLIP_SIDE_FILE = CLIPS_DIR + "/moment_{name}.npy"
MOMENT_QUERY_SENTENCE = "sentence"  # always a query graph output: equal to the search embedding when shared
MOMENT_QUERY_OUTPUTS = (MOMENT_QUERY_SENTENCE, "tokens")
WINDOW_FEEDS = ("attention_mask", "clips", "clip_mask")
MOMENT_HEAD_INPUTS = ("sentence", "tokens", "attention_mask", "clips", "clip_mask")
MOMENT_HEAD_OUTPUTS = ("spans", "span_scores", "saliency")
# Bundles built before the split (no "query_graph" in the entry) hold one graph with the query's ids:
# LEGACY_MOMENT_HEAD_INPUTS -> MOMENT_HEAD_OUTPUTS. They still serve; the text tower then runs per window.
LEGACY_MOMENT_HEAD_INPUTS = ("input_ids", "attention_mask", "clips", "clip_mask")
# manifest["moment_head"]: which head, the longest window it handles (clips), its clip rate (clips/s, equal
# to the manifest's "clip_rate"), max |onnx - torch| of its export check (query graph then head graph,
# end to end) and, since the split, "query_graph" (MOMENT_QUERY); with a clip side, "clip_graph"
# (MOMENT_CLIPS) and "clip_side" (its output names).
MOMENT_HEAD_FIELDS = ("name", "span_clips", "clip_rate", "onnx_max_abs_diff")

# rerank.onnx: query (input_ids, attention_mask) (B, L) int64 + candidates' clip features (K, T, E) float32
# with clip_mask (K, T) int64 -> scores (B, K) float32, the model's own pair score (higher is better).
# Optional: no schema bump, a reader that does not know the file only verifies its checksum. The
# manifest's "rerank" entry ({"candidates": N, ...}) says how many FAISS hits to re-score; the
# candidates' features are the bundle's clips/ (for such a model they are its per-frame video tokens).
RERANK_INPUTS = ("input_ids", "attention_mask", "clips", "clip_mask")
RERANK_OUTPUT = "scores"

ITEMS_SCHEMA = """
CREATE TABLE items (
    row INTEGER PRIMARY KEY,        -- the FAISS id of the item's vector
    id TEXT NOT NULL UNIQUE,
    modality TEXT NOT NULL,
    uri TEXT NOT NULL,
    duration REAL NOT NULL,         -- seconds; 0 for images
    title TEXT NOT NULL,
    tags TEXT NOT NULL,             -- json list
    metadata TEXT NOT NULL          -- json object
);
CREATE INDEX items_modality ON items (modality);
"""
ITEMS_INSERT = "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
ITEMS_BY_ROWS = "SELECT * FROM items WHERE row IN ({marks})"
ITEM_BY_ID = "SELECT * FROM items WHERE id = ?"
ROWS_BY_MODALITY = "SELECT row FROM items WHERE modality = ?"

SEGMENTS_SCHEMA = """
CREATE TABLE segments (
    row INTEGER PRIMARY KEY,        -- the FAISS id of the segment's vector
    item INTEGER NOT NULL REFERENCES items (row),
    start_s REAL NOT NULL,          -- seconds from the item's start
    end_s REAL NOT NULL             -- seconds; [0, duration] for an item of one segment
);
CREATE INDEX segments_item ON segments (item);
"""
SEGMENTS_INSERT = "INSERT INTO segments VALUES (?, ?, ?, ?)"
SEGMENTS_ALL = "SELECT row, item, start_s, end_s FROM segments ORDER BY row"


@dataclass(frozen=True)
class Item:
    """One searchable item as stored in ``items.sqlite``; ``duration`` in seconds (0 for images)."""

    row: int
    id: str
    modality: str
    uri: str
    duration: float
    title: str
    tags: list[str]
    metadata: dict[str, Any]
