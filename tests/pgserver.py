"""A throwaway PostgreSQL server for the tests that prove dedupdb runs on PostgreSQL.

``postgresql_server`` (session-scoped, started only when a test asks for it) is, in order:
1. the server named by ``--postgresql-url`` or ``$DEDUPDB_TEST_POSTGRESQL_URL`` (CI's service
   container: ``postgresql+psycopg://user:pass@host:port/dbname``), or
2. a new cluster made with ``initdb`` in a temporary folder and started with ``pg_ctl`` on
   127.0.0.1 and a free port (as the ``postgres`` user when the tests run as root, since
   ``initdb`` refuses root), stopped and deleted at the end of the session, or
3. a skip saying why (no server binaries, no psycopg driver).

``postgresql_url`` gives each test its own new, empty database on that server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

URL_ENV = "DEDUPDB_TEST_POSTGRESQL_URL"


def add_postgresql_options(parser: pytest.Parser) -> None:
    parser.addoption(
        "--postgresql-url",
        default=os.environ.get(URL_ENV),
        help="run the PostgreSQL tests against this server (a SQLAlchemy URL) instead of a "
        f"throwaway cluster [env {URL_ENV}]",
    )
    parser.addoption(
        "--backend",
        choices=["sqlite", "postgresql"],
        default=os.environ.get("DEDUPDB_TEST_BACKEND", "sqlite"),
        help="the database behind the `store` fixture for the whole suite "
        "[env DEDUPDB_TEST_BACKEND; default sqlite]",
    )


@dataclass(frozen=True)
class PostgresServer:
    """Where to reach the server: a URL to its maintenance database."""

    admin_url: str  # postgresql+psycopg://.../postgres

    def url_for(self, database: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.admin_url).set(database=database).render_as_string(False)

    def execute(self, sql: str) -> None:
        """Run one statement in autocommit mode (CREATE/DROP DATABASE need it)."""
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(self.admin_url)
        with psycopg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database,
            autocommit=True,
        ) as conn:
            conn.execute(sql.encode())


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian keeps them off PATH)."""

    def major(initdb: str) -> int:
        name = Path(initdb).parent.parent.name
        return int(name) if name.isdigit() else 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_user() -> tuple[list[str], str]:
    """The command prefix that runs the server binaries, and the database superuser's name."""
    if os.geteuid() != 0:
        return [], pwd.getpwuid(os.geteuid()).pw_name
    for user in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(user)
            runuser = shutil.which("runuser")
            if runuser:
                return [runuser, "-u", user, "--"], user
    pytest.skip("PostgreSQL tests: running as root, and no `runuser`/`postgres` user to drop to")


@contextlib.contextmanager
def throwaway_cluster(bindir: Path) -> Iterator[PostgresServer]:
    prefix, user = _as_user()
    # Not below pytest's tmp_path: that is private to root, and the server may run as postgres.
    base = Path(tempfile.mkdtemp(prefix="dedupdb-pg-"))
    data = base / "data"
    if prefix:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    log = base / "server.log"

    def run(*args: str) -> None:
        subprocess.run(
            [*prefix, *args],
            check=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=120,
        )

    try:
        try:
            run(
                str(bindir / "initdb"),
                "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync",
                "--locale=C",
            )  # fmt: skip
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={port} "
                f"-c unix_socket_directories='{base}' -c fsync=off "
                "-c full_page_writes=off -c synchronous_commit=off"
            )
            pg_ctl = str(bindir / "pg_ctl")
            run(pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            output = getattr(err, "output", b"") or b""
            server_log = log.read_text(errors="replace") if log.exists() else ""
            pytest.skip(
                "PostgreSQL tests: could not start a throwaway server: "
                f"{output.decode(errors='replace')[-500:]} {server_log[-500:]}"
            )
        yield PostgresServer(f"postgresql+psycopg://{user}@127.0.0.1:{port}/postgres")
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgresql_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL tests: the psycopg driver is not installed (the test extra has it)")
    given = request.config.getoption("--postgresql-url")
    if given:
        yield PostgresServer(given)
        return
    bindir = server_binaries()
    if bindir is None:
        pytest.skip(
            "PostgreSQL tests: no PostgreSQL server binaries (initdb, pg_ctl); install Debian's "
            f"`postgresql` package or set {URL_ENV}"
        )
    with throwaway_cluster(bindir) as server:
        yield server


@contextlib.contextmanager
def new_database(server: PostgresServer, template: str | None = None) -> Iterator[str]:
    name = f"dedupdb_test_{uuid.uuid4().hex[:12]}"
    server.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield server.url_for(name)
    finally:
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgresql_url(postgresql_server: PostgresServer) -> Iterator[str]:
    """A new, empty database for one test, dropped afterwards."""
    with new_database(postgresql_server) as url:
        yield url


@pytest.fixture(scope="session")
def _migrated_template(postgresql_server: PostgresServer) -> Iterator[str]:
    """A database migrated to head once per session, copied by ``migrated_postgresql_url``."""
    from dedupdb.store import open_store

    with new_database(postgresql_server) as url:
        open_store(url).close()
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def migrated_postgresql_url(
    postgresql_server: PostgresServer, _migrated_template: str
) -> Iterator[str]:
    """A new database already at the current schema (a copy of a migrated template: faster
    than running the migrations for every test)."""
    with new_database(postgresql_server, template=_migrated_template) as url:
        yield url
