"""The database engine: open it, creating or upgrading the schema through Alembic. SQLite by
default (one file, WAL mode); any SQLAlchemy URL otherwise.

The schema is only ever created and changed by Alembic migrations: an older database is backed
up and upgraded on open, a newer one is refused with a message naming the fix. A database
already at the head revision (every open but the first after an upgrade) is recognised without
importing Alembic, which costs a quarter of a second at every start of the command.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..defaults import ENV_VAR, default_database_path
from ..errors import DatabaseBusyError, DatabaseError
from .schema import Setting

if TYPE_CHECKING:
    from alembic.config import Config

BUSY_TIMEOUT_S = 30.0
# The settings row that records the hash parameters the database was indexed with.
HASH_PARAMS_KEY = "hash_params"


def database_url(db: str | os.PathLike[str] | None) -> str:
    """A SQLAlchemy URL from a file path, a URL, $DEDUPDB_DB, or the default location."""
    value = os.fspath(db) if db is not None else os.environ.get(ENV_VAR) or ""
    if not value:
        value = os.fspath(default_database_path())
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().absolute()}"


def migrations_dir() -> Path:
    """The Alembic scripts: inside the installed package, or at the source tree's top."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise DatabaseError(  # pragma: no cover - a broken installation
        "dedupdb's database migrations are missing from this installation",
        "reinstall dedupdb",
    )


def alembic_config(connection: Any = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this dedupdb knows (read cheaply, else asked of Alembic)."""
    quick = quick_head_revision()
    if quick is not None:
        return quick
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


# ``revision = "0006"`` and ``down_revision = "0005"`` (or None), as Alembic writes them, with
# or without a type annotation.
_REVISION_LINE = re.compile(
    r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:['"]([^'"]+)['"]|None)\s*$""",
    re.MULTILINE,
)


def quick_head_revision() -> str | None:
    """The head revision read from the migration files' own lines, without Alembic.

    None when the files do not give one clear head (several heads, a line written another
    way): the caller then asks Alembic, the authority (a test checks that the two agree).
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (migrations_dir() / "versions").glob("*.py"):
        try:
            found = dict(_REVISION_LINE.findall(path.read_text("utf-8")))
        except (OSError, UnicodeDecodeError):
            return None
        if "revision" not in found or "down_revision" not in found:
            return None
        revisions.add(found["revision"])
        if found["down_revision"]:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


@dataclass
class Store:
    """An open database: the engine, and a session factory for the stages."""

    engine: Engine
    url: str
    schema_version: str
    # Set when a SQLite database that cannot be written was opened for reading only: says why
    # and how, for the command to tell the user (None: opened for reading and writing).
    read_only: str | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def sqlite_path(self) -> Path | None:
        if self.dialect != "sqlite":
            return None
        database = make_url(self.url).database
        return Path(database) if database and database != ":memory:" else None

    def session(self) -> Session:
        return sessionmaker(self.engine, expire_on_commit=False)()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on error."""
        with self.session() as session, session.begin():
            yield session

    def insert(self, table: Any) -> Any:
        """The dialect's INSERT, which has ``on_conflict_do_update`` on SQLite and PostgreSQL."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            return postgresql.insert(table)
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)

    def get_setting(self, key: str) -> Any:
        with self.session() as session:
            row = session.get(Setting, key)
            return None if row is None else json.loads(row.value)

    def set_setting(self, session: Session, key: str, value: Any) -> None:
        """Insert or replace a setting in one statement: two processes writing the same key at
        once (two reports) must not both find it absent and both insert it."""
        statement = self.insert(Setting).values(key=key, value=_json_text(value))
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["key"], set_={"value": statement.excluded.value}
            )
        )

    def size_bytes(self) -> int | None:
        """The database's size: the SQLite file with its WAL, or what PostgreSQL reports for
        the database; None when unknown (an in-memory database, another server)."""
        if self.dialect == "postgresql":
            with self.engine.connect() as conn:
                size = conn.execute(text("SELECT pg_database_size(current_database())"))
                return int(size.scalar_one())
        path = self.sqlite_path
        if path is None or not path.exists():
            return None
        wal = path.with_name(path.name + "-wal")
        return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable at checkpoint
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_read_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """A read-only connection: no journal mode to set, nothing to make durable."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise DatabaseError(f"not a database path or URL: {url}") from err
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except NoSuchModuleError as err:
        raise DatabaseError(
            f"unknown kind of database in {_safe(url)}: {parsed.drivername}",
            "give a file path, or a URL such as sqlite:///path or postgresql://user@host/db",
        ) from err
    except ImportError as err:
        raise DatabaseError(
            f"the database driver for {parsed.get_backend_name()} is not installed: {err.name}",
            "for PostgreSQL: pip install 'dedupdb[postgres]'",
        ) from err


def open_store(
    db: str | os.PathLike[str] | None = None,
    *,
    migrate: bool = True,
    create: bool = True,
    reading: bool = False,
) -> Store:
    """Open (and create or upgrade) the database named by a path or URL.

    Raises ``DatabaseError`` for a database written by a newer dedupdb, a file that is not a
    dedupdb database, or a database that cannot be reached; with ``create`` False, also for a
    SQLite file that does not exist (a command that only reads or acts on what ``index``
    stored would otherwise leave an empty database behind a mistyped ``--db``).

    A SQLite file that cannot be written (read-only media, no permission) is opened read-only
    when the caller only reads (``reading``; ``Store.read_only`` then says so), and refused
    with a clear message otherwise.
    """
    url = database_url(db)
    missing = None if create else _missing_sqlite_file(url)
    if missing is not None:
        raise DatabaseError(
            f"no database at {missing}",
            "index a folder into it first (dedupdb index FOLDER"
            + ("" if db is None and not os.environ.get(ENV_VAR) else f" --db {missing}")
            + "), or point --db or DEDUPDB_DB at your database",
        )
    path = _sqlite_file(url)
    why = _unwritable(path) if path is not None else None
    if why is not None and path is not None:
        if reading and path.exists():
            return _open_read_only(url, path, why)
        raise DatabaseError(
            f"the database {path} cannot be written: it is {why}",
            "this command changes the database; status, report, history and not-duplicate "
            "--list can read it where it is, or copy it to a writable place and use --db",
        )
    engine = create_db_engine(url)
    try:
        version = _migrate(engine, url) if migrate else _current_revision(engine)
    except OperationalError as err:
        engine.dispose()
        raise translate_operational_error(err, url) from err
    except DBAPIError as err:
        engine.dispose()
        if "not a database" in str(err.orig):
            raise translate_operational_error(err, url) from err
        raise DatabaseError(f"cannot use the database {_safe(url)}: {err.orig}") from err
    return Store(engine=engine, url=url, schema_version=version or "none")


def _missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL when it does not exist (None for other databases)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # a URI filename: SQLite parses it, not us
        return None
    path = Path(database)
    return None if path.exists() else path


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases, memory and URI filenames)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # not a URL: ``create_db_engine`` says so
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else Path(database)


def _unwritable(path: Path) -> str | None:
    """Why this process cannot write (or create) the SQLite database at ``path``, or None.

    SQLite writes the file and, beside it, its journal (``-wal``, ``-shm``): the file must be
    writable, and the folder too unless both journal files are there and writable. ``access``
    sees read-only mounts and immutable files even for root, whom permission bits do not stop.
    """
    folder = path.parent
    if not folder.is_dir():
        return None  # created with its parents, or reported by SQLite
    statvfs = getattr(os, "statvfs", None)
    if statvfs is not None:
        try:
            if statvfs(folder).f_flag & os.ST_RDONLY:
                return _READ_ONLY_FS
        except OSError:
            pass
    journal = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    if (path.exists() and not os.access(path, os.W_OK)) or not (
        os.access(folder, os.W_OK) or all(os.access(j, os.W_OK) for j in journal)
    ):
        return "not writable by this user (permissions, or an immutable file)"
    return None


_READ_ONLY_FS = "on a read-only filesystem"


def _open_read_only(url: str, path: Path, why: str) -> Store:
    """Open a SQLite database that cannot be written for reading only.

    ``mode=ro`` reads it as usual, seeing what another process writes meanwhile; it needs the
    WAL's shared-memory file (``-shm``), which cannot be created on read-only media when the
    last writer removed it. ``immutable=1`` then reads the file as it is, without locks or
    journal: right when nothing can write it (read-only media), and otherwise the last resort.
    """
    modes = ["immutable=1"] if why == _READ_ONLY_FS else ["mode=ro", "immutable=1"]
    for mode in modes:
        uri = f"file:{quote(str(path.absolute()))}?{mode}"
        engine = create_engine(url, creator=_connector(uri))
        event.listen(engine, "connect", _sqlite_read_pragmas)
        try:
            stored = _stored_revisions(engine)
        except (OperationalError, DBAPIError) as err:
            engine.dispose()
            if mode == modes[-1]:
                raise translate_operational_error(err, url) from err
            continue
        break
    head = head_revision()
    if stored != [head]:
        engine.dispose()
        current = ", ".join(stored) or "none"
        raise DatabaseError(
            f"the database {path} (schema {current}) is not at this dedupdb's schema {head} "
            f"and cannot be upgraded where it is: it is {why}",
            "copy it to a writable place and use --db there (an older database is upgraded "
            "on open; a newer one needs a newer dedupdb)",
        )
    if mode == "mode=ro":
        how = "read-only"
    elif why == _READ_ONLY_FS:
        how = "read-only, as immutable (nothing can write it there)"
    else:
        how = "read-only, as immutable: changes another process makes meanwhile are not seen"
    return Store(
        engine=engine,
        url=url,
        schema_version=head,
        read_only=f"the database {path} is {why}: opened {how}",
    )


def _connector(uri: str) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)

    return connect


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def translate_operational_error(err: DBAPIError, url: str) -> DatabaseError:
    text = str(err.orig)
    if "locked" in text or "busy" in text:
        return DatabaseBusyError(
            f"the database {_safe(url)} is busy: another dedupdb process is writing to it",
            "wait for it to finish, then run the command again",
        )
    if "not a database" in text or "malformed" in text:
        return DatabaseError(
            f"{_safe(url)} is not a dedupdb database or is damaged ({text})",
            "point --db at another file, or restore a backup",
        )
    return DatabaseError(f"cannot open the database {_safe(url)}: {text}")


def _current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _stored_revisions(engine: Engine) -> list[str]:
    """The revisions in the database's ``alembic_version`` table (none: a new database),
    read with plain SQLAlchemy."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return []
        rows = conn.execute(text("SELECT version_num FROM alembic_version"))
        return [str(row[0]) for row in rows]


def _migrate(engine: Engine, url: str) -> str:
    quick = quick_head_revision()
    if quick is not None and _stored_revisions(engine) == [quick]:
        return quick  # at head: nothing to do, and no need to load Alembic to know it
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None
    with _schema_lock(engine) as conn:
        # Looked at again under the lock: another process may have created or upgraded the
        # database since the look above (two index runs started on one new database).
        current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return head
        if current is not None:
            try:
                script.get_revision(current)
            except CommandError as err:
                raise DatabaseError(
                    f"the database {_safe(url)} was written by a newer dedupdb (schema "
                    f"{current}; this dedupdb knows up to {head})",
                    "upgrade dedupdb (pip install -U dedupdb) or use another --db",
                ) from err
            _backup_sqlite(engine, url, current)
        elif inspect(conn).get_table_names():
            raise DatabaseError(
                f"{_safe(url)} already holds tables that are not a dedupdb database",
                "point --db at a new file",
            )
        command.upgrade(alembic_config(conn), "head")
    return head


# The PostgreSQL advisory lock key under which the schema is created or upgraded: any number
# that other programs on the same database are unlikely to use ("dedupdb" in ASCII).
_SCHEMA_LOCK_KEY = 0x646564757064_62


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the database's lock for writing the schema, committed at the
    end: two processes opening one new (or old) database at once create (or upgrade) it one
    after the other, the second finding it done. SQLite: ``BEGIN IMMEDIATE`` takes the write
    lock at once (waiting up to the busy timeout for another writer); PostgreSQL: a
    transaction-scoped advisory lock. Index runs then exclude each other as usual (the runs
    table, which this creates)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # pysqlite would begin only at the first INSERT, and not at all for CREATE TABLE.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def _backup_sqlite(engine: Engine, url: str, revision: str) -> Path | None:
    """Copy a SQLite database before migrating it (SQLite's online backup, so WAL is included)."""
    database = make_url(url).database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    target = Path(f"{database}.before-{revision}.bak")
    source = sqlite3.connect(database)
    try:
        dest = sqlite3.connect(target)
        with dest:
            source.backup(dest)
        dest.close()
    finally:
        source.close()
    return target


def backup(store: Store, target: Path) -> Path:
    """A consistent copy of a SQLite database while it may be in use."""
    path = store.sqlite_path
    if path is None:
        raise DatabaseError("backup works on SQLite databases", "use pg_dump for PostgreSQL")
    if target.resolve() in {
        path.resolve(),
        *(path.resolve().with_name(path.name + s) for s in ("-wal", "-shm")),
    }:
        raise DatabaseError(f"{target} is the database itself", "give another file name")
    tmp = target.with_name(target.name + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Read through the store's own connection: one opened read-only when the database is
        # on read-only media, where a plain connection could not open it.
        source, dest = store.engine.raw_connection(), sqlite3.connect(tmp)
        try:
            with dest:
                source.driver_connection.backup(dest)  # type: ignore[union-attr]
        finally:
            source.close()
            dest.close()
        shutil.move(tmp, target)
    except (OSError, sqlite3.Error) as err:
        tmp.unlink(missing_ok=True)
        raise DatabaseError(f"cannot write the backup {target}: {err}") from err
    return target


def select_one(session: Session, statement: Any) -> Any:
    return session.execute(statement).scalar_one_or_none()


def driver_rows(conn: Connection, statement: Any, parameters: Any = None) -> Sequence[Any]:
    """The rows of a Core select as the database driver returns them: plain tuples, without
    SQLAlchemy's row objects and result processing (a third of the time for 100,000 rows).
    For columns that need no processing: integers, floats, text and bytes; a boolean comes
    as 0 or 1 from SQLite."""
    result = conn.execute(statement, parameters)
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    return rows


__all__ = [
    "ENV_VAR",
    "HASH_PARAMS_KEY",
    "Store",
    "backup",
    "database_url",
    "default_database_path",
    "driver_rows",
    "head_revision",
    "open_store",
    "select",
    "select_one",
]


def _json_text(value: Any) -> str:
    """A setting as JSON text: orjson (the last report's clusters can be megabytes: several
    times faster), or the standard library for what orjson refuses (integers beyond 64 bits,
    keys that are not text)."""
    import orjson  # here: `dedupdb status` and `--help` load no more than they need

    try:
        return orjson.dumps(value).decode("utf-8")
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value)
