"""Dynamic micro-batching of query encoding.

Concurrent requests put their query on a queue. Up to ``in_flight`` batches are encoded at once,
each in one ONNX Runtime call in a worker thread; while every slot is busy, queries queue up, and
the next free slot takes them all (up to ``max_batch``) as one batch. ``wait_ms`` optionally holds
a batch open for company; at 0 (the default) a lone query never waits, and under load one forward
pass serves many requests. The text encoders are padding-invariant, so a query's vector does not
depend on what it was batched with (tested against one-at-a-time encoding).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from service.encoder import QueryEncoder

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class _Job:
    encoder: QueryEncoder
    text: str
    then: Callable[[np.ndarray], Any] | None = None  # run on the vector in the batch's thread
    done: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def _encode_group(group: list[_Job]) -> tuple[float, list[tuple[Any, Exception | None]]]:
    """In a worker thread: one forward pass for ``group``, then each job's ``then`` on its vector.

    Returns the forward pass's seconds and, per job, its result or the exception its ``then`` raised.
    """
    t0 = time.monotonic()
    vecs = group[0].encoder.encode([j.text for j in group])
    seconds = time.monotonic() - t0
    out: list[tuple[Any, Exception | None]] = []
    for job, vec in zip(group, vecs, strict=True):
        try:
            out.append((job.then(vec) if job.then else vec, None))
        except Exception as exc:  # one request's failure is its own
            out.append((None, exc))
    return seconds, out


class MicroBatcher:
    COMPANY_FRACTION = 0.25  # most a freed slot waits for the last batch's clients, as a share of its encode time

    def __init__(
        self,
        max_batch: int = 32,
        wait_ms: float = 0.0,
        observe: Callable[[int], None] | None = None,
        in_flight: int = 2,
    ) -> None:
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000
        self.observe = observe  # called with each batch's size (metrics)
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        # Batches encoded at once: with one ONNX thread per call, one batch per core keeps every core
        # busy, and while all are busy the queue fills, so the next batch is larger.
        self.slots = asyncio.Semaphore(in_flight)
        self._running: set[asyncio.Task[None]] = set()
        self._last_size, self._last_seconds = 1, 0.0  # the latest batch encoded: its clients come back next
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        for task in [self._task, *self._running]:
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def encode(self, encoder: QueryEncoder, text: str) -> np.ndarray:
        """(E,) float32 embedding of ``text``; batched with concurrent calls."""
        job = _Job(encoder, text)
        await self.queue.put(job)
        vec: np.ndarray = await job.done
        return vec

    async def encode_then(self, encoder: QueryEncoder, text: str, then: Callable[[np.ndarray], T]) -> T:
        """``then`` of the (E,) embedding of ``text``, called in the batch's worker thread right after the
        forward pass: the request's own CPU work (e.g. the search) needs no second hop to a thread."""
        job = _Job(encoder, text, then)
        await self.queue.put(job)
        result: T = await job.done
        return result

    async def _gather(self) -> list[_Job]:
        """The next batch: everything queued, and, when fewer have queued than the last batch finished,
        a short wait for those clients to come back (a freed slot that starts at once runs a batch of one
        or two, while the answered clients' next queries arrive a moment later: measured, batches of
        2-4 at 32 clients). The wait is bounded by ``COMPANY_FRACTION`` of the last batch's encode time,
        so at most that share of one core idles; a lone client (last batch of 1) never waits."""
        jobs = [await self.queue.get()]
        target = min(self.max_batch, self._last_size)
        deadline = time.monotonic() + max(self.wait_s, self.COMPANY_FRACTION * self._last_seconds)
        while len(jobs) < self.max_batch:
            try:
                jobs.append(self.queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            left = deadline - time.monotonic()
            if left <= 0 or (len(jobs) >= target and self.wait_s == 0):
                break
            try:
                jobs.append(await asyncio.wait_for(self.queue.get(), left))
            except TimeoutError:
                break
        return jobs

    async def _run(self) -> None:
        while True:
            await self.slots.acquire()
            jobs = await self._gather()
            if self.observe:
                self.observe(len(jobs))
            task = asyncio.create_task(self._encode_all(jobs))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _encode_all(self, jobs: list[_Job]) -> None:
        try:
            by_encoder: dict[int, list[_Job]] = {}
            for job in jobs:  # a bundle swap mid-batch: each query stays with its own bundle's encoder
                by_encoder.setdefault(id(job.encoder), []).append(job)
            for group in by_encoder.values():
                await self._encode(group)
        finally:
            self.slots.release()

    async def _encode(self, group: list[_Job]) -> None:
        try:
            self._last_seconds, results = await asyncio.to_thread(_encode_group, group)
            self._last_size = len(group)
        except Exception as exc:  # hand the failure to every waiting request instead of killing the loop
            log.exception("query encoding failed")
            for job in group:
                if not job.done.done():
                    job.done.set_exception(exc)
            return
        for job, (result, error) in zip(group, results, strict=True):
            if job.done.done():  # the request may have been cancelled meanwhile
                continue
            if error is None:
                job.done.set_result(result)
            else:
                job.done.set_exception(error)
