"""bundle/moment_graphs.py: the contract between the query graph and the window graph, checked on
sessions that break it one way at a time (stand-ins for ONNX Runtime sessions: only names matter here;
tests/models/moments/test_heads.py runs real ones)."""

from dataclasses import dataclass

import numpy as np

from bundle.moment_graphs import contract_errors, window_feeds


@dataclass
class Arg:
    name: str


class Session:
    """Names of a graph's inputs and outputs, as ``InferenceSession.get_inputs/get_outputs`` give them."""

    def __init__(self, inputs: list[str], outputs: list[str]) -> None:
        self.inputs, self.outputs = inputs, outputs

    def get_inputs(self) -> list[Arg]:
        return [Arg(n) for n in self.inputs]

    def get_outputs(self) -> list[Arg]:
        return [Arg(n) for n in self.outputs]


QUERY = Session(["input_ids", "attention_mask"], ["sentence", "qsd_tokens"])
WINDOWS = Session(["qsd_tokens", "attention_mask", "clips", "clip_mask"], ["spans", "span_scores", "saliency"])


def test_graphs_that_fit_have_no_errors() -> None:
    assert contract_errors(QUERY, WINDOWS) == []
    plain = Session(["sentence", "tokens", "attention_mask", "clips", "clip_mask"], WINDOWS.outputs)
    assert contract_errors(Session(QUERY.inputs, ["sentence", "tokens"]), plain) == []  # schema 4's pair


def test_each_break_of_the_contract_is_named() -> None:
    no_sentence = Session(QUERY.inputs, ["qsd_tokens"])
    assert any("lack 'sentence'" in e for e in contract_errors(no_sentence, WINDOWS))
    orphan = Session(["moment_queries", *WINDOWS.inputs], WINDOWS.outputs)
    assert any("['moment_queries']" in e for e in contract_errors(QUERY, orphan))
    odd_input = Session(["input_ids", "pixels"], QUERY.outputs)
    assert any("pixels" in e for e in contract_errors(odd_input, WINDOWS))
    odd_output = Session(WINDOWS.inputs, ["spans", "saliency"])
    assert any("expected ['spans', 'span_scores', 'saliency']" in e for e in contract_errors(QUERY, odd_output))


def test_a_batch_1_query_is_repeated_per_window_and_only_wanted_inputs_are_fed() -> None:
    query = {"sentence": np.arange(3.0)[None], "qsd_tokens": np.arange(8.0).reshape(1, 2, 4)}
    query["attention_mask"] = np.ones((1, 2), np.int64)
    clips, mask = np.zeros((5, 7, 3), np.float32), np.ones((5, 7), np.int64)
    feeds = window_feeds(query, clips, mask, {"qsd_tokens", "attention_mask", "clips", "clip_mask"})
    assert set(feeds) == {"qsd_tokens", "attention_mask", "clips", "clip_mask"}
    assert feeds["qsd_tokens"].shape == (5, 2, 4) and (feeds["qsd_tokens"] == query["qsd_tokens"]).all()
    already = {"qsd_tokens": np.arange(40.0).reshape(5, 2, 4)}  # one query per window: fed as it is
    assert window_feeds(already, clips, mask, {"qsd_tokens"})["qsd_tokens"] is already["qsd_tokens"]


def test_the_clip_side_feeds_the_window_graph_by_name() -> None:
    """Schema 6: a window input may be a clip graph output (stored per clip when the bundle was built)."""
    windows = Session(["qsd_tokens", "qsd_clip_scale", *WINDOWS.inputs[1:]], WINDOWS.outputs)
    assert any("['qsd_clip_scale']" in e for e in contract_errors(QUERY, windows))  # no clip side: an orphan
    assert contract_errors(QUERY, windows, clip_side=["qsd_clip_scale"]) == []  # the stored outputs' names
    assert contract_errors(QUERY, windows, Session(["clips"], ["qsd_clip_scale"])) == []  # the clip graph itself
    odd = Session(["clips", "clip_mask"], ["qsd_clip_scale"])
    assert any("clip graph inputs ['clips', 'clip_mask']" in e for e in contract_errors(QUERY, windows, odd))
    clips, mask = np.zeros((2, 3, 4), np.float32), np.ones((2, 3), np.int64)
    side = {"qsd_clip_scale": np.ones((2, 3), np.float32), "unused": np.ones((2, 3), np.float32)}
    feeds = window_feeds({}, clips, mask, {"qsd_clip_scale", "clips", "clip_mask"}, side)
    assert set(feeds) == {"qsd_clip_scale", "clips", "clip_mask"} and feeds["qsd_clip_scale"] is side["qsd_clip_scale"]
