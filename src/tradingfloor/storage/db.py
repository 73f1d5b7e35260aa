"""Opening the broker's database: an async SQLAlchemy engine on SQLite or PostgreSQL, migrated.

``open_database(url)`` is the one call the broker needs: it creates the engine and brings the
schema to the newest Alembic revision (``storage/migrations``, shipped inside the package and
configured from code, so no ``alembic.ini`` has to be found). URLs in the common spellings are
accepted and given the async drivers (``sqlite+aiosqlite``, ``postgresql+asyncpg``).

SQLite connections run with ``journal_mode=WAL``, ``synchronous=FULL`` (a committed transaction
survives a power cut) and ``foreign_keys=ON``, set on every new connection. An in-memory SQLite
URL gets a single shared connection, so every user of the engine sees the same database.

Alembic is not re-entrant: the migrations of this module take turns within a process (and, on
PostgreSQL, across processes through an advisory lock). Do not run Alembic commands of your own
concurrently with them on the same event loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

__all__ = [
    "MIGRATION_LOCK_KEY",
    "alembic_config",
    "current_revision",
    "default_url",
    "downgrade",
    "head_revision",
    "make_engine",
    "migrate",
    "normalise_url",
    "open_database",
    "sync_writer_engine",
]

# The PostgreSQL advisory lock a migration holds for its transaction ("tfmigrat" as a bigint), so
# that processes starting at once migrate one after the other.
MIGRATION_LOCK_KEY = 0x7466_6D69_6772_6174

_MIGRATIONS = Path(__file__).resolve().with_name("migrations")

_DATABASE_FILE = "broker.db"

# Alembic keeps the running migration in module globals (alembic.context, alembic.op), so two
# migrations must not interleave on one event loop: each loop has a lock they take in turn.
_loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)

# Spelling -> the async driver's spelling. Only the scheme is rewritten; the rest stays verbatim.
_SCHEMES = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def normalise_url(url: str) -> str:
    """The URL with the async driver: ``postgres[ql]://`` and ``sqlite://`` get asyncpg/aiosqlite.

    URLs that already name a driver, and other databases, are returned unchanged.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    return f"{_SCHEMES.get(scheme, scheme)}://{rest}"


def default_url(data_dir: Path) -> str:
    """The URL of the embedded database: ``sqlite+aiosqlite:///<data_dir>/broker.db``."""
    return f"sqlite+aiosqlite:///{(data_dir / _DATABASE_FILE).as_posix()}"


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or url.query.get("mode") == "memory"
    )


def _sqlite_pragmas(*, file_database: bool) -> Callable[[Any, Any], None]:
    """The connect listener that configures each new SQLite connection."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if file_database:
                cursor.execute("PRAGMA journal_mode=WAL")
                mode = cursor.fetchone()
                if mode is None or str(mode[0]).lower() != "wal":
                    raise RuntimeError(f"SQLite refused journal_mode=WAL (got {mode!r})")
                cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    return on_connect


def make_engine(url: str) -> AsyncEngine:
    """An async engine for ``url`` (normalised first), without touching the schema.

    SQLite connections get the pragmas of the module docstring; an in-memory SQLite database
    lives on one connection shared by all (``StaticPool``).
    """
    sa_url = make_url(normalise_url(url))
    if not _is_sqlite(sa_url):
        return create_async_engine(sa_url)
    memory = _is_sqlite_memory(sa_url)
    engine = (
        create_async_engine(sa_url, poolclass=StaticPool) if memory else create_async_engine(sa_url)
    )
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas(file_database=not memory))
    return engine


def sync_writer_engine(engine: AsyncEngine) -> Engine | None:
    """A blocking engine on the same SQLite file, for a writer thread; None for other databases.

    One commit through aiosqlite costs a thread hand-off per statement; the write-behind writer
    runs its whole transaction in one worker-thread call on this engine instead.
    """
    url = engine.url
    if not _is_sqlite(url) or _is_sqlite_memory(url):
        return None
    sync = create_engine(
        url.set(drivername="sqlite"),
        poolclass=StaticPool,
        connect_args={"check_same_thread": False},
    )
    event.listen(sync, "connect", _sqlite_pragmas(file_database=True))
    return sync


def alembic_config(connection: Connection | None = None, *, url: str | None = None) -> Config:
    """An Alembic configuration for the packaged migrations, built in code (no ini file).

    With ``connection`` (a sync ``Connection``, e.g. the one ``AsyncConnection.run_sync`` hands
    over) commands migrate on it; else ``url`` names the database and ``env.py`` opens it.
    """
    config = Config()
    # ConfigParser interpolation: a literal % is written %%.
    config.set_main_option("script_location", str(_MIGRATIONS).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision of the packaged migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations in {_MIGRATIONS}")
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for an unmigrated (or fully downgraded) one."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def _run(engine: AsyncEngine, direction: str, revision: str) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config(connection)
        if direction == "upgrade":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)

    loop = asyncio.get_running_loop()
    lock = _loop_locks.get(loop)
    if lock is None:
        lock = _loop_locks[loop] = asyncio.Lock()
    # A connection outside any transaction: env.py begins and commits the migration's own.
    async with lock, engine.connect() as connection:
        await connection.run_sync(run)
        await connection.commit()


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the newest); a no-op when it is there."""
    await _run(engine, "upgrade", revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    """Downgrade the database to ``revision`` (default ``base``: no tables at all)."""
    await _run(engine, "downgrade", revision)


async def open_database(url: str, *, migrate: bool = True) -> AsyncEngine:
    """An async engine on ``url`` whose schema is at the newest revision (unless ``migrate=False``).

    A SQLite file database's directory is created if missing. The caller disposes of the engine.
    """
    engine = make_engine(url)
    sa_url = engine.url
    if (
        _is_sqlite(sa_url)
        and not _is_sqlite_memory(sa_url)
        and sa_url.database
        and "uri" not in sa_url.query
    ):
        Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
    if migrate:
        try:
            await _run(engine, "upgrade", "head")
        except BaseException:
            await engine.dispose()
            raise
    return engine
