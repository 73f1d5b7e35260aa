"""Alembic environment of the broker's schema (``tradingfloor.storage.tables``).

Alembic runs this file for every command. The database comes from, in order:

1. ``config.attributes["connection"]``: an open sync ``Connection`` (``tradingfloor.storage.db``
   passes the one ``AsyncConnection.run_sync`` hands over, so callers migrate on their own
   engine). If it is inside a transaction, the migration joins it and the caller commits.
2. a URL: ``-x url=...``, the ``sqlalchemy.url`` option or ``$TRADINGFLOOR_DATABASE_URL``. An async
   engine is opened on it (``sqlite+aiosqlite`` or ``postgresql+asyncpg``, plain spellings are
   normalised) and the migrations run through ``connection.run_sync``. With ``--sql`` the SQL is
   printed instead.

On SQLite the operations render as batch ("move and copy") and foreign-key enforcement is off
while the migration runs (a batch copy would otherwise trip over or cascade through the foreign
keys); ``PRAGMA foreign_key_check`` must come back clean afterwards. On PostgreSQL a transaction
level advisory lock (``db.MIGRATION_LOCK_KEY``) serialises migrations of one database by several
processes. Alembic keeps global state: one process runs one migration at a time.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from tradingfloor.storage import db, tables

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("TRADINGFLOOR_DATABASE_URL")
    )
    if not url:
        raise RuntimeError(
            "no database: pass a connection in config.attributes['connection'], "
            "-x url=..., sqlalchemy.url or $TRADINGFLOOR_DATABASE_URL"
        )
    return db.normalise_url(url)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=tables.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
    )


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Foreign-key enforcement off while the block runs, checked and restored afterwards.

    SQLite ignores the pragma inside a transaction, so this runs only on a connection outside
    one, and commits the autobegun transactions of its own statements.
    """
    was_on = bool(connection.exec_driver_sql("PRAGMA foreign_keys").scalar())
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
        violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        connection.commit()
        if violations:
            shown = ", ".join(str(tuple(row)) for row in violations[:10])
            raise RuntimeError(f"the migration left foreign-key violations: {shown}")
    finally:
        if was_on:
            if connection.in_transaction():
                connection.rollback()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations on ``connection`` (sync; under ``run_sync`` for async engines)."""
    if connection.dialect.name == "sqlite" and not connection.in_transaction():
        with _sqlite_foreign_keys_off(connection):
            _migrate(connection)
    else:
        _migrate(connection)


def _migrate(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({db.MIGRATION_LOCK_KEY})")
        context.run_migrations()


async def _run_async_migrations(url: str) -> None:
    engine = db.make_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    """Print the SQL of the migrations instead of running it (``alembic ... --sql``)."""
    url = _url()
    context.configure(
        url=url,
        target_metadata=tables.metadata,
        render_as_batch=url.startswith("sqlite"),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the given connection, or on an engine opened on the URL."""
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(_run_async_migrations(_url()))
    elif isinstance(connection, Connection):
        do_run_migrations(connection)
    else:
        raise TypeError(
            "config.attributes['connection'] must be a sync sqlalchemy Connection "
            f"(use AsyncConnection.run_sync), not {type(connection).__name__}"
        )


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
