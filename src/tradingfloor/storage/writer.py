"""Write-behind group commit for the broker's SQL tables.

State changes are applied in memory first and queued here as row operations; one writer task
commits everything queued so far in one transaction (the SQL twin of the venue's group commit).
Several changes to the same row within a batch merge into one statement. ``flush()`` waits until
what was queued before the call is committed; callers that must not acknowledge before their
change is durable (a deposit, an order with a client order id) await it. Changes nobody waits
for gather for up to ``COALESCE_S``. SQLite commits run on a writer thread (one call per
transaction), PostgreSQL's through asyncpg. A failed commit is fatal: the writer stops,
``failure`` is set, ``on_failure`` (if set: ``serve`` stops the venue's matching with it) is
called with the real error, and every later ``flush()`` raises, so the process can stop and
recover.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Table, and_, bindparam, delete, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from tradingfloor.storage.db import sync_writer_engine

__all__ = ["MAX_OPS_PER_COMMIT", "StoreFailedError", "WriteBehind"]

_log = logging.getLogger(__name__)

MAX_OPS_PER_COMMIT: Final = 5_000
COALESCE_S: Final = 0.01  # how long unawaited changes may wait for company before a commit


class StoreFailedError(RuntimeError):
    """A commit failed; the in-memory state is ahead of the database. Restart to recover."""


@dataclass(slots=True)
class _Op:
    kind: str  # insert | update | upsert | delete
    table: Table
    key: tuple[Any, ...]
    values: dict[str, Any]


class WriteBehind:
    """See module docstring."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._pending: dict[tuple[str, tuple[Any, ...]], _Op] = {}
        self._anonymous: int = 0
        self._wakeup = asyncio.Event()
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Future[None] | None = None  # resolved when the running commit ends
        self.failure: BaseException | None = None
        self.on_failure: Callable[[BaseException], None] | None = None
        """Called once, with the error, when a commit fails (before flush waiters learn it)."""
        self._failed = asyncio.Event()
        self._flush_requested = asyncio.Event()
        self.commits = 0
        self._pk_cache: dict[str, tuple[str, ...]] = {}
        self._statements: dict[tuple[Any, ...], Any] = {}
        self._rank: dict[str, int] = {}  # table name -> position in foreign-key order
        self._sql: dict[tuple[Any, ...], tuple[str, tuple[str, ...]]] = {}  # SQLite fast path
        # SQLite files: the whole transaction in one blocking call (see db.py and _commit)
        self._sync = sync_writer_engine(engine)
        self._executor = (
            ThreadPoolExecutor(1, thread_name_prefix="sql-writer") if self._sync else None
        )

    # --- queueing ------------------------------------------------------------------------------

    def _pk(self, table: Table) -> tuple[str, ...]:
        names = self._pk_cache.get(table.name)
        if names is None:
            if table.name not in self._rank:
                for n, known in enumerate(table.metadata.sorted_tables):
                    self._rank[known.name] = n
            names = self._pk_cache[table.name] = tuple(c.name for c in table.primary_key.columns)
        return names

    def _queue(self, kind: str, table: Table, values: Mapping[str, Any]) -> None:
        if self.failure is not None:
            raise StoreFailedError("the broker's database writer has failed") from self.failure
        key = tuple(values[name] for name in self._pk(table))
        slot = (table.name, key)
        op = self._pending.get(slot)
        if op is None or kind == "delete":
            self._pending[slot] = _Op(kind, table, key, dict(values))
        else:
            op.values.update(values)
            if op.kind == "delete":
                op.kind = "upsert"
        self._wakeup.set()

    def insert(self, table: Table, values: Mapping[str, Any]) -> None:
        self._queue("insert", table, values)

    def update(self, table: Table, values: Mapping[str, Any]) -> None:
        """Update the row named by the primary-key columns in ``values``."""
        self._queue("update", table, values)

    def upsert(self, table: Table, values: Mapping[str, Any]) -> None:
        self._queue("upsert", table, values)

    def delete(self, table: Table, key: Mapping[str, Any]) -> None:
        self._queue("delete", table, key)

    @property
    def queued(self) -> int:
        return len(self._pending)

    # --- committing ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sql-write-behind")

    async def stop(self) -> None:
        """Commit what is queued, then stop the writer."""
        if self._task is None:
            return
        if self.failure is None:
            await self.flush()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self._sync is not None:
            self._sync.dispose()

    async def wait_failed(self) -> BaseException:
        await self._failed.wait()
        assert self.failure is not None
        return self.failure

    async def flush(self) -> None:
        if self.failure is not None:
            raise StoreFailedError("the broker's database writer has failed") from self.failure
        if not self._pending:
            if self._inflight is not None:
                await asyncio.shield(self._inflight)
            return
        if self._task is None:
            await self._commit(self._take())
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self._wakeup.set()
        self._flush_requested.set()
        await future

    def _take(self) -> list[_Op]:
        ops = list(self._pending.values())
        self._pending = {}
        return ops

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            if not self._waiters:
                # Nobody waits: let more changes gather (until someone flushes, at most
                # COALESCE_S) so that one commit carries many.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush_requested.wait(), COALESCE_S)
            self._wakeup.clear()
            self._flush_requested.clear()
            waiters, self._waiters = self._waiters, []
            ops = self._take()
            inflight = self._inflight = asyncio.get_running_loop().create_future()
            waiters.append(inflight)
            try:
                if ops:
                    await self._commit(ops)
            except Exception as exc:
                _log.exception("broker database commit failed")
                self.failure = exc
                self._failed.set()
                if self.on_failure is not None:
                    try:
                        self.on_failure(exc)
                    except Exception:
                        _log.exception("the write-behind failure hook failed")
                for waiter in waiters + self._waiters:
                    if not waiter.done():
                        waiter.set_exception(StoreFailedError(str(exc)))
                inflight.exception()  # mark retrieved: nobody may be waiting on it
                return
            finally:
                self._inflight = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            if self._pending:
                self._wakeup.set()

    async def _commit(self, ops: list[_Op]) -> None:
        """One transaction, with one executemany per statement shape.

        Statements are built once per (operation, table, columns) and executed with bound
        parameters, so SQLAlchemy compiles each shape once. Rows of one shape go together:
        deletes first, children before parents; then inserts, updates and upserts, parents
        before children, each in the order they were queued. (Two changes to one row were
        merged when queued, so no row depends on the order of two groups.)
        """
        groups: dict[tuple[Any, ...], tuple[Any, list[dict[str, Any]]]] = {}
        for op in ops:
            key, stmt, params = self._prepared(op)
            group = groups.get(key)
            if group is None:
                groups[key] = (stmt, [params])
            else:
                group[1].append(params)
        rank = self._rank
        ordered = sorted(
            groups.items(),
            key=lambda item: (
                (0, -rank[item[0][1]]) if item[0][0] == "delete" else (1, rank[item[0][1]])
            ),
        )
        batches = [
            (key, stmt, rows[start : start + MAX_OPS_PER_COMMIT])
            for key, (stmt, rows) in ordered
            for start in range(0, len(rows), MAX_OPS_PER_COMMIT)
        ]
        if self._sync is not None:
            # One call on the writer thread per transaction: the fsync and sqlite3's work run
            # off the loop (measured: about 4% more orders/s and a lower p99 than committing
            # on the loop thread, now that requests rarely wait for a commit).
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._commit_sync, batches)
        else:
            async with self.engine.begin() as conn:
                for _key, stmt, rows in batches:
                    await conn.execute(stmt, rows)
        self.commits += 1

    def _commit_sync(
        self, batches: list[tuple[tuple[Any, ...], Any, list[dict[str, Any]]]]
    ) -> None:
        """SQLite: each statement compiled once to SQL text, rows handed to sqlite3's
        ``executemany`` as tuples (the values are ints, strings, bools and None already)."""
        assert self._sync is not None
        with self._sync.begin() as conn:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                for key, stmt, rows in batches:
                    sql, names = self._sqlite_sql(key, stmt)
                    cursor.executemany(sql, [tuple(row[n] for n in names) for row in rows])
            finally:
                cursor.close()

    def _sqlite_sql(self, key: tuple[Any, ...], stmt: Any) -> tuple[str, tuple[str, ...]]:
        compiled = self._sql.get(key)
        if compiled is None:
            assert self._sync is not None
            kind, table_name, columns = key
            pk = self._pk_cache[table_name]
            keys = [c for c in columns if not (kind == "update" and c in pk)]
            if kind == "delete":
                keys = []
            done = stmt.compile(dialect=self._sync.dialect, column_keys=keys)
            compiled = self._sql[key] = (done.string, tuple(done.positiontup or ()))
        return compiled

    def _prepared(self, op: _Op) -> tuple[tuple[Any, ...], Any, dict[str, Any]]:
        table = op.table
        pk = self._pk(table)
        columns = tuple(sorted(op.values))
        key = (op.kind, table.name, columns)
        stmt = self._statements.get(key)
        if op.kind in ("update", "delete"):
            params = {f"pk_{name}": value for name, value in zip(pk, op.key, strict=True)}
            if op.kind == "update":
                params.update((k, v) for k, v in op.values.items() if k not in pk)
        else:
            params = op.values
        if stmt is None:
            stmt = self._statements[key] = self._statement(op.kind, table, pk, columns)
        return key, stmt, params

    def _statement(
        self, kind: str, table: Table, pk: tuple[str, ...], columns: tuple[str, ...]
    ) -> Any:
        if kind == "insert":
            return insert(table)
        where = and_(*(table.c[name] == bindparam(f"pk_{name}") for name in pk))
        if kind == "update":
            return update(table).where(where)
        if kind == "delete":
            return delete(table).where(where)
        dialect = self.engine.dialect.name
        module: Any = postgresql if dialect == "postgresql" else sqlite
        stmt = module.insert(table)
        changes = {k: stmt.excluded[k] for k in columns if k not in pk}
        if not changes:
            return stmt.on_conflict_do_nothing(index_elements=list(pk))
        return stmt.on_conflict_do_update(index_elements=list(pk), set_=changes)
