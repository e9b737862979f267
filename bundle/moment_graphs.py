"""Running a bundle's two moment graphs in a row: the service does it per request, the export checks it.

The contract (bundle/layout.py): the query graph (``MOMENT_QUERY``) takes ``MOMENT_QUERY_INPUTS`` and
outputs ``sentence`` plus whatever query-side tensors its head computes once per request; the window
graph (``MOMENT_HEAD``) takes any of those, by name, plus ``WINDOW_FEEDS`` (the query's
attention_mask and the windows' clips and clip_mask). Every query-side tensor is batch-first, so a
batch-1 query is repeated along axis 0 for the windows. Sessions are duck-typed (ONNX Runtime's
``InferenceSession``): this package does not import onnxruntime.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bundle.layout import MOMENT_HEAD_OUTPUTS, MOMENT_QUERY_INPUTS, MOMENT_QUERY_SENTENCE, WINDOW_FEEDS


def graph_names(session: Any) -> tuple[list[str], list[str]]:
    """(input names, output names) of an ONNX Runtime session."""
    return [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]


def contract_errors(query: Any, windows: Any) -> list[str]:
    """What breaks the contract between the two graphs (empty when nothing does)."""
    q_in, q_out = graph_names(query)
    w_in, w_out = graph_names(windows)
    errors = []
    if set(q_in) - set(MOMENT_QUERY_INPUTS):
        errors.append(f"query graph inputs {q_in}, expected a subset of {list(MOMENT_QUERY_INPUTS)}")
    if MOMENT_QUERY_SENTENCE not in q_out:
        errors.append(f"query graph outputs {q_out} lack {MOMENT_QUERY_SENTENCE!r}")
    if missing := [n for n in w_in if n not in q_out and n not in WINDOW_FEEDS]:
        errors.append(f"window graph inputs {missing} are neither query graph outputs {q_out} nor {list(WINDOW_FEEDS)}")
    if w_out[: len(MOMENT_HEAD_OUTPUTS)] != list(MOMENT_HEAD_OUTPUTS):
        errors.append(f"window graph outputs {w_out}, expected {list(MOMENT_HEAD_OUTPUTS)}")
    return errors


def run_query(query: Any, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of the query graph by name, plus the ``attention_mask`` the window graph may take."""
    names = [o.name for o in query.get_outputs()]
    wanted = {i.name for i in query.get_inputs()}
    feeds = {k: v for k, v in zip(MOMENT_QUERY_INPUTS, (input_ids, attention_mask), strict=True) if k in wanted}
    return dict(zip(names, query.run(names, feeds), strict=True)) | {"attention_mask": attention_mask}


def window_feeds(
    query: dict[str, np.ndarray], clips: np.ndarray, clip_mask: np.ndarray, wanted: set[str]
) -> dict[str, np.ndarray]:
    """The window graph's feeds: the ``wanted`` query tensors (a batch-1 query repeated per window) + clips."""
    b = len(clips)
    feeds = {k: v if len(v) == b else np.repeat(v, b, 0) for k, v in query.items() if k in wanted}
    return feeds | {"clips": clips, "clip_mask": clip_mask}


def run_windows(
    windows: Any, query: dict[str, np.ndarray], clips: np.ndarray, clip_mask: np.ndarray
) -> list[np.ndarray]:
    """spans (B, Q, 2), span_scores (B, Q), saliency (B, T) for B windows (MOMENT_HEAD_OUTPUTS)."""
    wanted = {i.name for i in windows.get_inputs()}  # a head that ignores an input has it pruned
    outs = windows.run(list(MOMENT_HEAD_OUTPUTS), window_feeds(query, clips, clip_mask, wanted))
    return [np.asarray(o) for o in outs]
