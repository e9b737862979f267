"""Running a bundle's moment graphs: the service runs them per request, the indexer the clip side once, the
export checks all of them in a row.

The contract (bundle/layout.py): the query graph (``MOMENT_QUERY``) takes ``MOMENT_QUERY_INPUTS`` and
outputs ``sentence`` plus whatever query-side tensors its head computes once per request; the optional clip
graph (``MOMENT_CLIPS``) takes ``MOMENT_CLIPS_INPUT`` (N, E) and outputs per-clip tensors (N, ...), computed
once per clip when the bundle is built; the window graph (``MOMENT_HEAD``) takes any of those, by name, plus
``WINDOW_FEEDS`` (the query's attention_mask and the windows' clips and clip_mask). Every query-side tensor
is batch-first, so a batch-1 query is repeated along axis 0 for the windows; a clip-side tensor is fed as
(B, T, ...), padded like the clips. Sessions are duck-typed (ONNX Runtime's ``InferenceSession``): this
package does not import onnxruntime.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bundle.layout import (
    MOMENT_CLIPS_INPUT,
    MOMENT_HEAD_OUTPUTS,
    MOMENT_QUERY_INPUTS,
    MOMENT_QUERY_SENTENCE,
    WINDOW_FEEDS,
)

CLIP_CHUNK = 65536  # clips per clip-graph call when a bundle is built (bounded memory on any corpus)


def graph_names(session: Any) -> tuple[list[str], list[str]]:
    """(input names, output names) of an ONNX Runtime session."""
    return [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]


def contract_errors(query: Any, windows: Any, clips: Any = None, clip_side: Sequence[str] = ()) -> list[str]:
    """What breaks the contract between the graphs (empty when nothing does). The clip side is the clip
    graph's (``clips``, a session) or, where the clip graph was run when the bundle was built, its stored
    outputs' names (``clip_side``)."""
    q_in, q_out = graph_names(query)
    w_in, w_out = graph_names(windows)
    c_in, c_out = graph_names(clips) if clips is not None else ([MOMENT_CLIPS_INPUT], list(clip_side))
    errors = []
    if set(q_in) - set(MOMENT_QUERY_INPUTS):
        errors.append(f"query graph inputs {q_in}, expected a subset of {list(MOMENT_QUERY_INPUTS)}")
    if MOMENT_QUERY_SENTENCE not in q_out:
        errors.append(f"query graph outputs {q_out} lack {MOMENT_QUERY_SENTENCE!r}")
    if c_in != [MOMENT_CLIPS_INPUT]:
        errors.append(f"clip graph inputs {c_in}, expected [{MOMENT_CLIPS_INPUT!r}]")
    if missing := [n for n in w_in if n not in q_out and n not in c_out and n not in WINDOW_FEEDS]:
        errors.append(
            f"window graph inputs {missing} are neither query graph outputs {q_out}, clip graph outputs {c_out} "
            f"nor {list(WINDOW_FEEDS)}"
        )
    if w_out[: len(MOMENT_HEAD_OUTPUTS)] != list(MOMENT_HEAD_OUTPUTS):
        errors.append(f"window graph outputs {w_out}, expected {list(MOMENT_HEAD_OUTPUTS)}")
    return errors


def run_query(query: Any, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of the query graph by name, plus the ``attention_mask`` the window graph may take."""
    names = [o.name for o in query.get_outputs()]
    wanted = {i.name for i in query.get_inputs()}
    feeds = {k: v for k, v in zip(MOMENT_QUERY_INPUTS, (input_ids, attention_mask), strict=True) if k in wanted}
    return dict(zip(names, query.run(names, feeds), strict=True)) | {"attention_mask": attention_mask}


def run_clips(clips: Any, features: np.ndarray) -> dict[str, np.ndarray]:
    """The clip graph on (N, E) clip features (any float dtype; fed as float32) -> its outputs by name, (N, ...)."""
    names = [o.name for o in clips.get_outputs()]
    feeds = {MOMENT_CLIPS_INPUT: np.ascontiguousarray(features, dtype=np.float32)}
    return dict(zip(names, clips.run(names, feeds), strict=True))


def window_feeds(
    query: dict[str, np.ndarray],
    clips: np.ndarray,
    clip_mask: np.ndarray,
    wanted: set[str],
    clip_side: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The window graph's feeds: the ``wanted`` query tensors (a batch-1 query repeated per window), clips, and
    the ``wanted`` clip-side tensors of those clips (B, T, ...)."""
    b = len(clips)
    feeds = {k: v if len(v) == b else np.repeat(v, b, 0) for k, v in query.items() if k in wanted}
    side = {k: v for k, v in (clip_side or {}).items() if k in wanted}
    return feeds | side | {"clips": clips, "clip_mask": clip_mask}


def run_windows(
    windows: Any,
    query: dict[str, np.ndarray],
    clips: np.ndarray,
    clip_mask: np.ndarray,
    clip_side: dict[str, np.ndarray] | None = None,
) -> list[np.ndarray]:
    """spans (B, Q, 2), span_scores (B, Q), saliency (B, T) for B windows (MOMENT_HEAD_OUTPUTS)."""
    wanted = {i.name for i in windows.get_inputs()}  # a head that ignores an input has it pruned
    outs = windows.run(list(MOMENT_HEAD_OUTPUTS), window_feeds(query, clips, clip_mask, wanted, clip_side))
    return [np.asarray(o) for o in outs]
