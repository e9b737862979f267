"""Moments from a separate ``xmr serve-moments`` process (``XMR_MOMENTS_URL``), over httpx.

Each call has a timeout and a few retries with backoff; a circuit breaker stops calling a process
that keeps failing for a while, so a search never waits on a dead moment service: it answers
without moments and says why (``SearchResponse.moments_error``). httpx is imported only when a client
is made (XMR_MOMENTS_URL set): it costs ~60 ms of every other server's cold start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from service.schemas import MAX_BATCH_VIDEOS, Moment, MomentsBatchResponse, Segment
from xmr.errors import XmrError

if TYPE_CHECKING:
    import httpx

BATCH_PATH = "/v1/moments/batch"


class MomentsUnavailable(XmrError):
    """The moment service did not answer (down, timing out, failing, or its circuit is open)."""


class CircuitBreaker:
    """Closed until ``failures`` calls in a row fail; then open for ``open_s`` seconds, after which one
    trial call is let through (half-open): its success closes the circuit, its failure reopens it."""

    def __init__(self, failures: int, open_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.open_s, self.clock = failures, open_s, clock
        self.failed = 0
        self.open_until = 0.0
        self._lock = threading.Lock()

    def wait_left(self) -> float:
        """Seconds until a call may be tried again; 0 when the circuit lets calls through."""
        with self._lock:
            return max(0.0, self.open_until - self.clock())

    def success(self) -> None:
        with self._lock:
            self.failed, self.open_until = 0, 0.0

    def failure(self) -> None:
        with self._lock:
            self.failed += 1
            if self.failed >= self.failures:
                self.open_until = self.clock() + self.open_s


class RemoteMoments:
    """Client of ``POST /v1/moments/batch`` on ``url``; thread-safe (one pooled httpx client)."""

    def __init__(self, url: str, timeout_s: float, retries: int, breaker: CircuitBreaker) -> None:
        import httpx

        self.url, self.retries, self.breaker = url.rstrip("/"), retries, breaker
        self.http: httpx.Client = httpx.Client(base_url=self.url, timeout=timeout_s)
        self.transport_error = httpx.TransportError

    def localize(
        self,
        query: str,
        collection: str,
        video_ids: list[str],
        k: int,
        segments: list[Segment | None] | None = None,
    ) -> list[list[Moment]]:
        """Each video's best ``k`` moments, in ``video_ids`` order, looking around ``segments`` (per video,
        a search hit's matched segment, or None); raises ``MomentsUnavailable``."""
        if wait := self.breaker.wait_left():
            raise MomentsUnavailable(
                f"moment service {self.url} is unavailable (circuit open after {self.breaker.failed} failed calls; "
                f"next try in {wait:.1f} s)"
            )
        found: list[list[Moment]] = []
        for i in range(0, len(video_ids), MAX_BATCH_VIDEOS):
            part = video_ids[i : i + MAX_BATCH_VIDEOS]
            near = (segments or [None] * len(video_ids))[i : i + MAX_BATCH_VIDEOS]
            refs = [
                vid if seg is None else {"id": vid, "segment": seg.model_dump()}
                for vid, seg in zip(part, near, strict=True)
            ]
            body = {"query": query, "collection": collection, "video_ids": refs, "k": k}
            try:
                found += self._post(body).moments
            except MomentsUnavailable:
                self.breaker.failure()
                raise
        self.breaker.success()
        return found

    def _post(self, body: dict[str, object]) -> MomentsBatchResponse:
        why = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(0.05 * 2**attempt)  # backoff: 0.1 s, 0.2 s, ...
            try:
                r = self.http.post(BATCH_PATH, json=body)
            except self.transport_error as exc:  # refused, reset, timed out
                why = f"{type(exc).__name__}: {exc}"
                continue
            if r.status_code < 500:
                if r.status_code != 200:  # the request itself is wrong there: retrying cannot help
                    raise MomentsUnavailable(f"moment service {self.url} answered {r.status_code}: {r.text[:300]}")
                return MomentsBatchResponse.model_validate_json(r.content)
            why = f"HTTP {r.status_code}: {r.text[:300]}"
        raise MomentsUnavailable(f"moment service {self.url} is unavailable ({why}; {self.retries + 1} tries)")

    def close(self) -> None:
        self.http.close()
