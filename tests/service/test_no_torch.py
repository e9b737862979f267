"""DESIGN.md: the service process never imports torch (nor the models package)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from fastapi.testclient import TestClient
from xmr.cli import build_app
build_app("serve")  # what `xmr serve` imports
from service.config import Settings
from service.main import create_app
with TestClient(create_app(Settings(root=sys.argv[1], poll_seconds=0))) as c:
    r = c.post("/v1/search", json={"query": "a red 7 moves left", "k": 3})
    assert r.status_code == 200, r.text
    assert len(r.json()["hits"]) == 3
leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "models.")))
print("LEAKED", leaked)
"""


def test_search_path_never_imports_torch(bundle_root: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(bundle_root)], capture_output=True, text=True, check=True)
    assert "LEAKED []" in out.stdout, out.stdout + out.stderr


def test_server_imports_leave_out_what_only_some_setups_use() -> None:
    """Cold start: what `xmr serve` imports before it loads a bundle holds no httpx (only the remote
    moments client, XMR_MOMENTS_URL, needs it: ~60 ms of every start) and no torch."""
    script = (
        "import sys\nfrom xmr.cli import build_app\nbuild_app('serve')\nimport service.main, uvicorn\n"
        "print('LOADED', sorted(m for m in ('httpx', 'torch', 'models') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "LOADED []" in out.stdout, out.stdout + out.stderr
