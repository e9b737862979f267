"""Micro-batching against its exact oracle: one-at-a-time encoding with the same ONNX session."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bundle
from service.batcher import MicroBatcher
from service.encoder import QueryEncoder

TEXTS = [
    "a red 7 moves left",
    "a blue 3 appears, then a green 1 moves up, then a yellow 9 moves down",
    "x",
    "a yellow 2 moves right, then a red 8 appears",
] * 5


async def _encode_all(batcher: MicroBatcher, encoders: list[object], texts: list[str]) -> list[np.ndarray]:
    batcher.start()
    try:
        return list(await asyncio.gather(*(batcher.encode(e, t) for e, t in zip(encoders, texts, strict=True))))  # type: ignore[arg-type]
    finally:
        await batcher.stop()


def test_batched_equals_one_at_a_time(bundle_root: Path) -> None:
    enc = QueryEncoder(bundle_root / "demo" / bundle.read_current(bundle_root, "demo"))
    sizes: list[int] = []
    got = asyncio.run(_encode_all(MicroBatcher(8, 20.0, sizes.append), [enc] * len(TEXTS), TEXTS))
    want = [enc.encode([t])[0] for t in TEXTS]
    np.testing.assert_allclose(np.stack(got), np.stack(want), atol=1e-5)
    assert max(sizes) > 1 and max(sizes) <= 8 and sum(sizes) == len(TEXTS)  # it really batched, within bounds


class StubEncoder:
    """Stand-in encoder that tags its output (a real session can't be made to fail on demand)."""

    def __init__(self, tag: float, fail: bool = False) -> None:
        self.tag, self.fail = tag, fail

    def encode(self, texts: list[str]) -> np.ndarray:
        if self.fail:
            raise RuntimeError("encoder exploded")
        return np.full((len(texts), 4), self.tag, np.float32)


def test_queries_of_different_bundles_never_mix() -> None:
    a, b = StubEncoder(1.0), StubEncoder(2.0)
    encoders = [a, b, a, b, b]
    got = asyncio.run(_encode_all(MicroBatcher(16, 20.0), encoders, ["q"] * 5))  # type: ignore[arg-type]
    assert [float(v[0]) for v in got] == [1.0, 2.0, 1.0, 2.0, 2.0]


def test_encoder_failure_reaches_every_waiting_request_and_the_batcher_survives() -> None:
    async def scenario() -> tuple[list[object], np.ndarray]:
        batcher = MicroBatcher(16, 20.0)
        batcher.start()
        try:
            bad = StubEncoder(0.0, fail=True)
            results = await asyncio.gather(*(batcher.encode(bad, "q") for _ in range(3)), return_exceptions=True)  # type: ignore[arg-type]
            after = await batcher.encode(StubEncoder(3.0), "q")  # type: ignore[arg-type]
            return list(results), after
        finally:
            await batcher.stop()

    results, after = asyncio.run(scenario())
    assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in results)
    assert float(after[0]) == 3.0


@pytest.mark.parametrize("wait_ms", [0.0, 2.0])
def test_a_lone_query_is_encoded_alone_without_waiting_for_a_full_batch(wait_ms: float) -> None:
    async def one() -> list[int]:
        sizes: list[int] = []
        batcher = MicroBatcher(32, wait_ms, sizes.append)
        batcher.start()
        try:
            await asyncio.wait_for(batcher.encode(StubEncoder(1.0), "q"), timeout=30)  # type: ignore[arg-type]
            return sizes
        finally:
            await batcher.stop()

    assert asyncio.run(one()) == [1]


class SlowStub(StubEncoder):
    def encode(self, texts: list[str]) -> np.ndarray:
        time.sleep(0.4)
        return super().encode(texts)


def test_a_freed_slot_waits_briefly_for_the_last_batchs_clients() -> None:
    """Closed loop: 8 clients answered together come back a few ms apart. Without the company wait the
    freed slot would start a batch of 1 (measured: batches of 2-4 at 32 clients); with it, they ride together."""

    async def scenario() -> list[int]:
        sizes: list[int] = []
        batcher = MicroBatcher(32, 0.0, sizes.append, in_flight=1)
        batcher.start()
        enc = SlowStub(1.0)
        try:
            await asyncio.gather(*(batcher.encode(enc, "q") for _ in range(8)))  # type: ignore[arg-type]

            async def returning(i: int) -> np.ndarray:
                await asyncio.sleep(0.002 * i)  # well inside 0.25 x 0.4 s
                return await batcher.encode(enc, "q")  # type: ignore[arg-type]

            await asyncio.gather(*(returning(i) for i in range(8)))
            return sizes
        finally:
            await batcher.stop()

    assert asyncio.run(scenario()) == [8, 8]


def test_then_runs_on_each_vector_in_the_batch_thread_and_fails_alone() -> None:
    """``encode_then`` (the search after the forward pass, without a second thread hop)."""

    async def scenario() -> list[object]:
        batcher = MicroBatcher(16, 20.0)
        batcher.start()
        main = threading.get_ident()

        def then(i: int) -> Any:
            def f(vec: np.ndarray) -> tuple[int, float, bool]:
                if i == 2:
                    raise ValueError("search exploded")
                return i, float(vec[0]), threading.get_ident() != main

            return f

        try:
            calls = (batcher.encode_then(StubEncoder(5.0), "q", then(i)) for i in range(4))  # type: ignore[arg-type]
            return list(await asyncio.gather(*calls, return_exceptions=True))
        finally:
            await batcher.stop()

    got = asyncio.run(scenario())
    assert got[0] == (0, 5.0, True) and got[1] == (1, 5.0, True) and got[3] == (3, 5.0, True)
    assert isinstance(got[2], ValueError) and "search exploded" in str(got[2])
