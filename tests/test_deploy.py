"""Dockerfile and docker-compose.yml can't be built here (no Docker daemon), so they are parsed and
every command, path and port they name is checked against the project itself."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import typer
import yaml

from service.config import Settings
from xmr.cli import build_app

ROOT = Path(__file__).resolve().parents[1]


def dockerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def check_cli(argv: list[str]) -> None:
    """``argv`` (starting with ``xmr``) names a real subcommand and only options it accepts."""
    assert argv[0] == "xmr", argv
    cmd = typer.main.get_command(build_app())
    args = argv[1:]
    while hasattr(cmd, "commands"):  # a group (typer vendors its own click classes)
        cmd = cmd.commands[args[0]]  # KeyError = no such subcommand
        args = args[1:]
    known = {opt for p in cmd.params for opt in getattr(p, "opts", [])}
    for a in args:
        if a.startswith("--"):
            assert a in known, f"{' '.join(argv)}: {a} is not an option of the command ({sorted(known)})"
    cmd.make_context("xmr", list(args))  # parses: types and required arguments are satisfied


def test_dockerfile_copies_existing_paths_and_runs_a_real_command() -> None:
    instrs = dockerfile()
    for op, arg in instrs:
        if op == "COPY":
            *srcs, _ = arg.split()
            for src in srcs:
                assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"
    cmd = json.loads(next(arg for op, arg in instrs if op == "CMD"))
    check_cli(cmd)
    exposed = {int(arg) for op, arg in instrs if op == "EXPOSE"}
    assert int(cmd[cmd.index("--port") + 1]) in exposed
    assert "torch==2.13.0" in " ".join(arg for op, arg in instrs if op == "RUN")


def test_compose_commands_paths_and_ports_exist() -> None:
    doc = compose()
    services = doc["services"]
    assert {"api", "redis", "indexer"} <= set(services)
    assert services["indexer"]["profiles"] == ["indexer"]
    makefile = (ROOT / "Makefile").read_text()
    for name, svc in services.items():
        if "build" in svc:
            assert (ROOT / svc["build"] / "Dockerfile").is_file()
            check_cli(svc["command"])
        for vol in svc.get("volumes", []):
            host = vol.split(":")[0]
            # host folders are the ones `make demo` creates: data/demo, runs, bundles
            assert host.removeprefix("./").split("/")[0] in makefile, f"{name}: {host} is not made by the Makefile"
    api_port = services["api"]["ports"][0].split(":")[-1]
    assert api_port == services["api"]["command"][services["api"]["command"].index("--port") + 1]
    assert int(api_port) == Settings().port


@pytest.mark.parametrize("target", ["demo", "test"])
def test_readme_commands_are_make_targets(target: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"make {target}" in readme
    assert re.search(rf"^{target}:", (ROOT / "Makefile").read_text(), re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_curl_example_is_a_valid_request() -> None:
    from service.schemas import SearchRequest

    readme = (ROOT / "README.md").read_text()
    m = re.search(r"curl -s[^\n]*?/v1/search[^\n]*?-d '([^']+)'", readme)
    assert m, "README has no curl example for /v1/search"
    SearchRequest.model_validate_json(m.group(1))
    assert shlex.split(m.group(0))[0] == "curl"
