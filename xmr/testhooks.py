"""Fault injection for crash tests: pause a process at a named point so a test can SIGKILL it exactly there.

With ``XMR_TEST_PAUSE_AT=<point>`` and ``XMR_TEST_PAUSE_MARKER=<file>`` set, the first time the process
reaches ``pause_point(<point>)`` it writes its pid to the marker file and sleeps ``XMR_TEST_PAUSE_S``
seconds (default 60) before going on; the test waits for the marker, kills the process and inspects
what it left. Without the variables (always, outside tests) a pause point costs one environment lookup.

Points (tests/indexer/test_crash.py kills a real ``xmr index build`` at each):

- ``embedding``: indexer/build.py, the first shard is embedded and saved, the rest are not;
- ``writing-index``: the staging folder holds the index but not yet the items, clips or encoder;
- ``staged``: the staging folder is complete but not yet sealed (no manifest);
- ``renamed``: bundle/writer.py, the sealed version folder is in place but CURRENT not yet replaced.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

POINTS = ("embedding", "writing-index", "staged", "renamed")
_paused: set[str] = set()


def pause_point(point: str) -> None:
    """Pause here (once per process) when ``XMR_TEST_PAUSE_AT`` names ``point``; see the module docstring."""
    if os.environ.get("XMR_TEST_PAUSE_AT") != point or point in _paused:
        return
    _paused.add(point)
    marker = os.environ.get("XMR_TEST_PAUSE_MARKER")
    if marker:
        tmp = Path(f"{marker}.tmp")
        tmp.write_text(f"{os.getpid()}\n")
        tmp.replace(marker)  # the test never reads a half-written marker
    time.sleep(float(os.environ.get("XMR_TEST_PAUSE_S", "60")))
