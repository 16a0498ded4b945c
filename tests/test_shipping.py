"""The shipping around the CLI: Dockerfile, docker-compose.yml, GitHub workflows.

No Docker engine runs here, so the image is checked in two ways: its files are linted and
parsed (hadolint, YAML, actionlint), and what the image would run (the compose services'
commands and the HEALTHCHECK, with the image's environment) is run for real on a photo folder
that is mounted read-only, as a non-root user when the tests run as root, with the photo
tree's listing and mtimes compared before and after.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import save_photo

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
WORKFLOWS = ROOT / ".github" / "workflows"
CONTAINER_UID = 1000
SERVICES = {"index", "report", "report-ssim"}


def project_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert match
    return match.group(1)


def tool(name: str) -> str:
    """A linter installed by the test extra (next to this Python, or on PATH)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (the test extra installs it)")
    return found


# ----------------------------------------------------------------------------- Dockerfile


@dataclass
class Instruction:
    name: str
    args: str
    stage: int


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result, stage = [], -1
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, args = line.partition(" ")
        if name.upper() == "FROM":
            stage += 1
        result.append(Instruction(name.upper(), " ".join(args.split()), stage))
    return result


def final(name: str) -> list[str]:
    instructions = dockerfile()
    last = max(i.stage for i in instructions)
    return [i.args for i in instructions if i.name == name and i.stage == last]


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_a_wheel_then_installs_only_it() -> None:
    stages = [i.args for i in dockerfile() if i.name == "FROM"]
    assert len(stages) == 2
    assert all("-slim" in s for s in stages)
    assert stages[0].endswith("AS build")
    builds = [i.args for i in dockerfile() if i.name == "RUN" and i.stage == 0]
    assert any("python -m build --wheel" in r for r in builds)
    copies = final("COPY")
    assert copies == ["--from=build /dist/ /tmp/dist/"]  # no source tree in the final image
    assert any(".whl" in r and "pip install" in r for r in final("RUN"))


def test_dockerfile_runs_as_non_root_with_volumes_and_healthcheck() -> None:
    assert final("USER") == [f"{CONTAINER_UID}:{CONTAINER_UID}"]
    assert f"--uid {CONTAINER_UID}" in " ".join(final("RUN"))
    assert "useradd" in " ".join(final("RUN")) and " dedup" in " ".join(final("RUN"))
    assert final("ENTRYPOINT") == ['["dedupdb"]']
    assert final("VOLUME") == ['["/data", "/state", "/output"]']
    assert "DEDUPDB_DB=/state/dedupdb.sqlite" in " ".join(final("ENV"))
    (health,) = final("HEALTHCHECK")
    assert '["dedupdb", "status", "--json", "--check-stuck"]' in health
    assert "DEDUPDB_STUCK_AFTER=900" in " ".join(final("ENV"))


def test_dockerfile_labels_carry_the_version() -> None:
    assert f"VERSION={project_version()}" in final("ARG")
    labels = " ".join(final("LABEL"))
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    for key in ("title", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def image_environment() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in final("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def healthcheck_command() -> list[str]:
    (health,) = final("HEALTHCHECK")
    command = json.loads(health.split(" CMD ", 1)[1])
    assert isinstance(command, list)
    return [str(part) for part in command]


# ----------------------------------------------------------------------------- compose


def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extra")
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_compose_services_volumes_and_profiles() -> None:
    data = compose()
    services = data["services"]
    plain = {name for name, s in services.items() if not s.get("profiles")}
    on_postgres = {name for name, s in services.items() if s.get("profiles") == ["postgres"]}
    assert plain == SERVICES | {"review"}
    assert on_postgres == {"postgres"} | {f"{name}-pg" for name in SERVICES}
    assert set(data["volumes"]) >= {"state", "pgdata"}
    for name in SERVICES | {f"{n}-pg" for n in SERVICES}:
        service = services[name]
        assert service["user"] == f"{CONTAINER_UID}:{CONTAINER_UID}"
        assert service["read_only"] is True
        volumes = service["volumes"]
        assert any(v.endswith(":/data:ro") for v in volumes), name  # photos read-only
        assert "state:/state" in volumes
        assert any(v.endswith(":/output") for v in volumes)
        database = service["environment"]["DEDUPDB_DB"]
        if name.endswith("-pg"):
            assert database.startswith("postgresql+psycopg://")
            assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        else:
            assert database == "/state/dedupdb.sqlite"
        assert service["command"][0] in {"index", "report"}
    for name in SERVICES:  # the PostgreSQL variant runs the same command
        assert services[f"{name}-pg"]["command"] == services[name]["command"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_compose_review_service_needs_its_token() -> None:
    review = compose()["services"]["review"]
    assert review["command"][:3] == ["serve", "--host", "0.0.0.0"]
    assert review["ports"] == ["127.0.0.1:${REVIEW_PORT:-8765}:8765"]
    environment = review["environment"]
    # Given, or (empty) made up by `dedupdb serve`, which never listens beyond the loopback
    # without one; not `:?`, which would stop every other service of the file from starting.
    assert environment["DEDUPDB_TOKEN"] == "${DEDUPDB_TOKEN:-}"
    assert environment["DEDUPDB_DB"] == "/state/dedupdb.sqlite"
    # It moves duplicates: the photos at the same path as indexed, writable.
    assert "${PHOTOS:-./photos}:/data" in review["volumes"]
    assert review["user"] == f"{CONTAINER_UID}:{CONTAINER_UID}" and review["read_only"] is True


# ----------------------------------------------------------------------------- workflows


def test_workflows_pass_actionlint() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "docker.yml"}
    result = subprocess.run(
        [tool("actionlint"), "-no-color", *map(str, files)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_workflow_covers_the_matrix_and_checks() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extra")
    ci = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    # PyYAML reads the key `on` as True (YAML 1.1).
    triggers = ci.get("on", ci.get(True))
    assert set(triggers["push"]["branches"]) == {"main", "develop"}
    assert "pull_request" in triggers
    test = ci["jobs"]["test"]
    assert test["strategy"]["matrix"]["python-version"] == ["3.10", "3.11", "3.12", "3.13"]
    steps = " ".join(str(step.get("run", "")) for step in test["steps"])
    for check in ("ruff check", "ruff format --check", "mypy", "pytest --cov", "[test]"):
        assert check in steps
    everything = (WORKFLOWS / "ci.yml").read_text()
    for check in ("bandit", "pip-audit", "kill"):
        assert check in everything
    docker = (WORKFLOWS / "docker.yml").read_text()
    for needed in ("linux/amd64,linux/arm64", "ghcr.io", "docker/metadata-action", "v*.*.*"):
        assert needed in docker


# ----------------------------------------------------------------------------- run it


def _can_run(prefix: list[str]) -> bool:
    """Whether prefix runs this very interpreter (a virtualenv whose Python lives in root's
    private home is not reachable by UID 1000, whatever the venv's own modes)."""
    check = f"import sys; assert sys.version == {sys.version!r}"
    try:
        probe = subprocess.run([*prefix, sys.executable, "-c", check], capture_output=True)
    except OSError:
        return False
    return probe.returncode == 0


@dataclass
class Container:
    """The image's view of the world, on this machine: /data, /state, /output are folders."""

    data: Path
    state: Path
    output: Path
    as_user: list[str]  # the command prefix that drops to UID 1000 (empty if not root)
    read_only_mount: bool  # /data is a read-only bind mount for each command

    def translate(self, value: str) -> str:
        for inside, outside in (("/data", self.data), ("/state", self.state)):
            if value == inside or value.startswith(inside + "/"):
                return str(outside) + value[len(inside) :]
        if value == "/output" or value.startswith("/output/"):
            return str(self.output) + value[len("/output") :]
        return value

    def run(self, argv: list[str], env: dict[str, str] | None = None) -> Any:
        """Run `dedupdb ARGV` the way the image would (entrypoint + environment)."""
        assert argv[0] == "dedupdb", argv
        environment = {k: v for k, v in os.environ.items() if not k.startswith("DEDUPDB_")}
        environment.update({k: self.translate(v) for k, v in image_environment().items()})
        environment.update(env or {})
        environment["HOME"] = str(self.state)  # nothing else writable, as in the image
        command = [
            *self.as_user,
            sys.executable,
            "-m",
            "dedupdb",
            *(self.translate(a) for a in argv[1:]),
        ]
        if self.read_only_mount:
            script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
            command = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                       script, "sh", str(self.data), *command]  # fmt: skip
        return subprocess.run(
            command, capture_output=True, text=True, env=environment, cwd=self.output, timeout=300
        )


@pytest.fixture
def container() -> Iterator[Container]:
    # Not below tmp_path: that is private to root, and the commands may run as UID 1000.
    base = Path(tempfile.mkdtemp(prefix="dedupdb-container-"))
    base.chmod(0o755)
    data, state, output = base / "data", base / "state", base / "output"
    for seed, name in enumerate(["a/beach.jpg", "a/forest.jpg", "b/city.png", "snow.jpg"], 1):
        save_photo(data / name, seed, quality=90) if name.endswith(".jpg") else save_photo(
            data / name, seed
        )
    shutil.copyfile(data / "a" / "beach.jpg", data / "b" / "beach copy.jpg")
    save_photo(data / "b" / "forest-small.jpg", 2, (160, 120), quality=70)
    state.mkdir()
    output.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        drop = ["setpriv", f"--reuid={CONTAINER_UID}", f"--regid={CONTAINER_UID}"]
        drop.append("--clear-groups")
        if shutil.which("setpriv") and _can_run(drop):
            as_user = drop
            for folder in (state, output):
                os.chown(folder, CONTAINER_UID, CONTAINER_UID)
    read_only = (
        os.geteuid() == 0
        and shutil.which("unshare") is not None
        and subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
             'mount --bind -o ro "$1" "$1" && ! touch "$1/.probe" 2>/dev/null', "sh", str(data)],
            capture_output=True,
        ).returncode == 0
    )  # fmt: skip
    for path in data.rglob("*"):  # photos are not the container user's to write
        path.chmod(0o555 if path.is_dir() else 0o444)
    data.chmod(0o555)
    yield Container(data, state, output, as_user, read_only)
    for path in [data, *data.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(base, ignore_errors=True)


def tree(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every file and folder under folder: (mode, size, mtime_ns). A file created and
    deleted again still changes its folder's mtime."""
    result = {".": _stat(folder)}
    for path in folder.rglob("*"):
        result[str(path.relative_to(folder))] = _stat(path)
    return result


def _stat(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return st.st_mode, st.st_size if not path.is_dir() else 0, st.st_mtime_ns


def compose_command(name: str) -> list[str]:
    command = compose()["services"][name]["command"]
    return ["dedupdb", *map(str, command)]


def test_the_images_commands_on_read_only_photos(container: Container) -> None:
    """The compose services and the HEALTHCHECK, run as the image would run them."""
    from dedupdb.cli import cli

    before = tree(container.data)
    first = container.run([*compose_command("index"), "--json"])
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["new"] == 6
    health = container.run(healthcheck_command())
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout)["images"] == 6

    report = compose_command("report")
    result = container.run(report)
    assert result.returncode == 0, result.stderr
    written = [container.translate(a) for a in report if a.startswith("/output/")]
    assert len(written) == 2 and all(Path(w).stat().st_size > 0 for w in written)

    # report-ssim differs only by --ssim: run it in this process (faster), same paths.
    ssim = [container.translate(a) for a in compose_command("report-ssim")[1:]]
    result = CliRunner().invoke(
        cli, ssim, env={"DEDUPDB_DB": str(container.state / "dedupdb.sqlite")}
    )
    assert result.exit_code == 0, result.output
    assert all(Path(a).stat().st_size > 0 for a in ssim if a.startswith(str(container.output)))

    assert tree(container.data) == before, "something was written next to the photos"
    assert sorted(p.name for p in container.state.iterdir())[0] == "dedupdb.sqlite"
    if container.as_user:
        owners = {
            p.stat().st_uid for p in [*container.state.iterdir(), *container.output.iterdir()]
        }
        assert owners == {CONTAINER_UID}
    print(f"read-only mount: {container.read_only_mount}; non-root: {bool(container.as_user)}")


def test_a_read_only_photo_folder_is_really_read_only(container: Container) -> None:
    """The test above means something: a write into /data fails under the same setup."""
    if not (container.read_only_mount or container.as_user):
        pytest.skip("not root: cannot mount read-only or drop privileges; the tree is compared")
    probe = "import pathlib, sys; pathlib.Path(sys.argv[1], 'x').write_text('x')"
    command = [*container.as_user, sys.executable, "-c", probe, str(container.data)]
    if container.read_only_mount:
        script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
        command = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                   script, "sh", str(container.data), *command]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr or "Permission denied" in result.stderr


def test_dockerignore_keeps_the_context_small_but_complete() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "*.sqlite"} <= ignored
    sources = [
        part
        for args in (i.args for i in dockerfile() if i.name == "COPY" and "--from" not in i.args)
        for part in args.split()[:-1]
    ]
    assert sources and not set(sources) & ignored
    assert all((ROOT / source).exists() for source in sources)
