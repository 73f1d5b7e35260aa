"""The packaged Alembic migrations create exactly ``tables.metadata``, on SQLite and PostgreSQL.

Each backend test starts from an empty database: a temporary SQLite file, or the emptied
scratch database on the real PostgreSQL server of tests/pg.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import UniqueConstraint, func, insert, inspect, select, table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from pg import empty_database
from tradingfloor.core.actor import ACTOR_COLUMNS, Actor
from tradingfloor.storage import db, tables

BIG = 2**62
MAX_BIGINT = 2**63 - 1
TABLES = set(tables.metadata.tables)
ALEMBIC_VERSION = table("alembic_version")


@pytest.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL in the plain spelling open_database accepts (normalised on the way)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'broker.db'}"
    # A sync session fixture: getfixturevalue cannot set up an async one from a running loop.
    postgres_url: str = request.getfixturevalue("postgres_url")
    return await empty_database(postgres_url)


@asynccontextmanager
async def opened(url: str, *, migrate: bool = True) -> AsyncIterator[AsyncEngine]:
    engine = await db.open_database(url, migrate=migrate)
    try:
        yield engine
    finally:
        await engine.dispose()


def schema(connection: Connection) -> dict[str, Any]:
    """Everything reflection tells about the tables of tables.py, names of constraints included."""
    inspector = inspect(connection)
    found = set(inspector.get_table_names()) - {"alembic_version"}
    return {
        name: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in inspector.get_columns(name)
            ],
            "pk": (
                inspector.get_pk_constraint(name)["name"],
                inspector.get_pk_constraint(name)["constrained_columns"],
            ),
            "fks": sorted(
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                )
                for fk in inspector.get_foreign_keys(name)
            ),
            "uqs": sorted(
                (uq["name"], tuple(uq["column_names"]))
                for uq in inspector.get_unique_constraints(name)
            ),
            "ixs": sorted(
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in inspector.get_indexes(name)
            ),
        }
        for name in sorted(found)
    }


async def reflect(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        return await connection.run_sync(schema)


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda c: set(inspect(c).get_table_names()))


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    diff: list[Any] = compare_metadata(context, tables.metadata)
    return diff


async def test_upgrade_head_equals_tables_metadata_and_downgrade_base_removes_it(url: str) -> None:
    async with opened(url) as engine:
        assert await db.current_revision(engine) == db.head_revision()
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
        migrated = await reflect(engine)
        assert set(migrated) == TABLES

        await db.downgrade(engine, "base")
        assert await db.current_revision(engine) is None
        assert await table_names(engine) <= {"alembic_version"}

        # compare_metadata looks past the names of primary and foreign keys; reflection does not.
        async with engine.begin() as connection:
            await connection.run_sync(tables.metadata.create_all)
        assert await reflect(engine) == migrated


async def test_upgrade_twice_is_a_no_op(url: str) -> None:
    async with opened(url) as engine:
        before = await reflect(engine)
        async with engine.begin() as connection:
            await connection.execute(insert(tables.marks).values(name="venue:TFEX", value=7))
    async with opened(url) as engine:
        await db.migrate(engine)
        assert await reflect(engine) == before
        assert await db.current_revision(engine) == db.head_revision()
        async with engine.connect() as connection:
            versions = await connection.scalar(select(func.count()).select_from(ALEMBIC_VERSION))
            assert versions == 1
            assert await connection.scalar(select(tables.marks.c.value)) == 7


async def test_orders_round_trip_big_integers(url: str) -> None:
    now = 1_700_000_000_000_000_000
    order = {
        "id": "o-1",
        "account_id": "a-1",
        "client_order_id": "c-1",
        "symbol": "ACME",
        "side": "buy",
        "order_type": "limit",
        "time_in_force": "day",
        "order_class": "simple",
        "qty": BIG,
        "filled_notional": MAX_BIGINT,
        "limit_price": -BIG,
        "venue_order_id": BIG + 1,
        "status": "new",
        "created_at": now,
        "updated_at": now,
    }
    async with opened(url) as engine:
        async with engine.begin() as connection:
            await connection.execute(
                insert(tables.customers).values(
                    id="c-1",
                    name="Ada",
                    email="ada@example.com",
                    kyc_status="approved",
                    created_at=now,
                    updated_at=now,
                )
            )
            await connection.execute(
                insert(tables.accounts).values(
                    id="a-1",
                    account_number="TF0001",
                    customer_id="c-1",
                    account_type="cash",
                    status="ACTIVE",
                    currency="USD",
                    created_at=now,
                )
            )
            await connection.execute(insert(tables.orders).values(order))
        async with engine.connect() as connection:
            row = (await connection.execute(select(tables.orders))).mappings().one()
        assert {key: row[key] for key in order} == order
        # Python-side defaults of tables.py filled in the rest.
        assert (row["filled_qty"], row["hold"], row["leg_role"], row["extended_hours"]) == (
            0,
            0,
            "",
            False,
        )

        # Foreign keys are enforced (on SQLite only with PRAGMA foreign_keys=ON).
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(
                    insert(tables.orders).values(
                        {**order, "id": "o-2", "client_order_id": "c-2", "account_id": "nobody"}
                    )
                )
        # One client order id per account.
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(insert(tables.orders).values({**order, "id": "o-3"}))


async def test_0003_actors_upgrades_a_0001_database_with_data_and_keeps_its_rows(url: str) -> None:
    now = 1_700_000_000_000_000_000
    rows = {
        tables.customers: {
            "id": "c-1",
            "name": "Ada",
            "email": "ada@example.com",
            "kyc_status": "approved",
            "kyc_note": "",
            "created_at": now,
            "updated_at": now,
        },
        tables.accounts: {
            "id": "a-1",
            "account_number": "TF0001",
            "customer_id": "c-1",
            "account_type": "cash",
            "status": "ACTIVE",
            "currency": "USD",
            "trading_blocked": False,
            "pattern_day_trader": False,
            "created_at": now,
        },
        tables.ledger: {
            "id": "l-1",
            "account_id": "a-1",
            "kind": "deposit",
            "amount": 100_000,
            "settle_at": now,
            "ref": "",
            "description": "deposit",
            "created_at": now,
        },
        tables.marks: {"name": "venue:TFEX", "value": 42},
    }
    async with opened(url, migrate=False) as engine:
        await db.migrate(engine, "0001")
        async with engine.begin() as connection:
            for target, values in rows.items():
                await connection.execute(insert(target).values(values))
        assert not {"order_events", "admin_actions"} & await table_names(engine)

        await db.migrate(engine, "0003_actors")
        assert await db.current_revision(engine) == "0003_actors"
        migrated = await reflect(engine)
        for name in ("order_events", "admin_actions"):
            columns = [column[0] for column in migrated[name]["columns"]]
            assert set(ACTOR_COLUMNS) <= set(columns), name
        async with engine.begin() as connection:
            for target, values in rows.items():
                stored = (await connection.execute(select(target))).mappings().one()
                assert {key: stored[key] for key in values} == values, target.name
            # the new tables take records
            actor = Actor.system("test", request_id="r-1").row()
            await connection.execute(
                insert(tables.admin_actions).values(
                    id="x-1",
                    seq=1,
                    ts=now,
                    kind="cash.deposit",
                    target="a-1",
                    detail="{}",
                    **actor,
                )
            )
            recorded = (await connection.execute(select(tables.admin_actions))).mappings().one()
            assert Actor.from_row(recorded) == Actor.system("test", request_id="r-1")

        await db.downgrade(engine, "0001")
        assert not {"order_events", "admin_actions"} & await table_names(engine)
        async with engine.connect() as connection:
            assert await connection.scalar(select(tables.ledger.c.amount)) == 100_000


async def test_migrating_on_a_callers_connection_joins_its_transaction(tmp_path: Path) -> None:
    # On PostgreSQL: test_postgres_migration_is_one_transaction.
    async with opened(f"sqlite:///{tmp_path / 'broker.db'}", migrate=False) as engine:
        async with engine.begin() as connection:
            await connection.run_sync(lambda c: command.upgrade(db.alembic_config(c), "head"))
        assert await db.current_revision(engine) == db.head_revision()
        assert await table_names(engine) >= TABLES


async def test_concurrent_upgrades_in_one_process_take_turns(tmp_path: Path) -> None:
    # Alembic's globals would mix the interleaved migrations up without db's per-loop lock.
    engines = [db.make_engine(f"sqlite:///{tmp_path / 'broker.db'}") for _ in range(3)]
    try:
        migrations = asyncio.gather(*(db.migrate(engine) for engine in engines))
        await asyncio.wait_for(migrations, timeout=60)
        async with engines[0].connect() as connection:
            versions = await connection.scalar(select(func.count()).select_from(ALEMBIC_VERSION))
        assert versions == 1
        assert await table_names(engines[0]) >= TABLES
    finally:
        for engine in engines:
            await engine.dispose()


async def test_postgres_migration_is_one_transaction(postgres_db_url: str) -> None:
    async with opened(postgres_db_url, migrate=False) as engine:
        async with engine.connect() as connection:
            await connection.begin()
            await connection.run_sync(lambda c: command.upgrade(db.alembic_config(c), "head"))
            await connection.rollback()
        # Transactional DDL: the caller's rollback took the whole migration back.
        assert await table_names(engine) == set()


async def test_postgres_migration_waits_for_the_advisory_lock(postgres_db_url: str) -> None:
    # Broker processes that start at once take turns (env.py's advisory lock), and the later
    # ones find the schema at head. Here a plain asyncpg connection holds the lock.
    holder = await asyncpg.connect(postgres_db_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", db.MIGRATION_LOCK_KEY)
        async with opened(postgres_db_url, migrate=False) as engine:
            migration = asyncio.ensure_future(db.migrate(engine))
            try:
                await asyncio.sleep(0.3)
                assert not migration.done()
            finally:
                await holder.execute("SELECT pg_advisory_unlock($1)", db.MIGRATION_LOCK_KEY)
                await asyncio.wait_for(migration, timeout=30)
            assert await db.current_revision(engine) == db.head_revision()
    finally:
        await holder.close()


async def test_sqlite_pragmas_are_on_for_every_connection(tmp_path: Path) -> None:
    async with opened(db.default_url(tmp_path / "data")) as engine:
        assert (tmp_path / "data" / "broker.db").is_file()
        async with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):
                pragmas = [
                    await connection.exec_driver_sql(f"PRAGMA {name}")
                    for name in ("journal_mode", "synchronous", "foreign_keys")
                ]
                assert [result.scalar() for result in pragmas] == ["wal", 2, 1]  # 2 = FULL


async def test_in_memory_sqlite_is_one_database_for_all() -> None:
    async with (
        opened("sqlite://") as engine,
        engine.connect() as first,
        engine.connect() as second,
    ):
        for connection in (first, second):
            names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert names >= TABLES
            assert await connection.scalar(select(func.count()).select_from(ALEMBIC_VERSION)) == 1


def metadata_schema() -> dict[str, Any]:
    """What tables.py declares: each table's columns (name, nullable), unique constraints (name,
    columns) and indexes (name, columns, unique), in the shape of ``declared_by_database``."""
    return {
        name: {
            "columns": [(c.name, c.nullable) for c in t.columns],
            "uqs": sorted(
                (uq.name, tuple(c.name for c in uq.columns))
                for uq in t.constraints
                if isinstance(uq, UniqueConstraint)
            ),
            "ixs": sorted(
                (ix.name, tuple(c.name for c in ix.columns), bool(ix.unique)) for ix in t.indexes
            ),
        }
        for name, t in sorted(tables.metadata.tables.items())
    }


def declared_by_database(reflected: dict[str, Any]) -> dict[str, Any]:
    """The part of ``schema``'s reflection that ``metadata_schema`` can be compared with
    (PostgreSQL also lists each unique constraint as an index of the same name)."""
    return {
        name: {
            "columns": [(c[0], c[2]) for c in found["columns"]],
            "uqs": found["uqs"],
            "ixs": [ix for ix in found["ixs"] if ix[0] not in {uq[0] for uq in found["uqs"]}],
        }
        for name, found in reflected.items()
    }


async def _at_head(url: str) -> tuple[str | None, list[Any], dict[str, Any]]:
    """The revision, alembic's differences from tables.metadata and the reflected schema."""
    engine = db.make_engine(db.normalise_url(url))
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(differences)
        return await db.current_revision(engine), diff, await reflect(engine)
    finally:
        await engine.dispose()


def test_env_opens_the_url_itself_without_a_connection(url: str) -> None:
    # The path of the alembic command line: env.py opens an async engine on the URL (its own
    # event loop, so this test is synchronous). Each upgrade must build the schema of tables.py.
    command.upgrade(db.alembic_config(url=url), "head")
    revision, diff, first = asyncio.run(_at_head(url))
    assert revision == db.head_revision()
    assert diff == []
    assert set(first) == TABLES
    assert declared_by_database(first) == metadata_schema()

    command.downgrade(db.alembic_config(url=url), "base")
    revision, _, emptied = asyncio.run(_at_head(url))
    assert revision is None
    assert emptied == {}

    command.upgrade(db.alembic_config(url=url), "head")
    revision, diff, again = asyncio.run(_at_head(url))
    assert (revision, diff, again) == (db.head_revision(), [], first)


def test_offline_mode_prints_the_sql(capsys: pytest.CaptureFixture[str]) -> None:
    command.upgrade(db.alembic_config(url="postgresql://nobody@127.0.0.1:1/x"), "head", sql=True)
    sql = capsys.readouterr().out
    for name in TABLES:
        assert f"CREATE TABLE {name} (" in sql
    assert "CONSTRAINT fk_fills_order_id_orders FOREIGN KEY(order_id) REFERENCES orders (id)" in sql


def test_revisions() -> None:
    assert db.head_revision() == "0003_actors"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5/d", "postgresql+asyncpg://u:p@h:5/d"),
        ("postgresql://u@h/d?ssl=require", "postgresql+asyncpg://u@h/d?ssl=require"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("sqlite:///var/broker.db", "sqlite+aiosqlite:///var/broker.db"),
        ("sqlite:////abs/broker.db", "sqlite+aiosqlite:////abs/broker.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_normalise_url(given: str, expected: str) -> None:
    assert db.normalise_url(given) == expected


def test_normalise_url_rejects_non_urls() -> None:
    with pytest.raises(ValueError, match="not a database URL"):
        db.normalise_url("broker.db")


def test_default_url() -> None:
    assert db.default_url(Path("/srv/tf")) == "sqlite+aiosqlite:////srv/tf/broker.db"
    assert db.default_url(Path("var")) == "sqlite+aiosqlite:///var/broker.db"
