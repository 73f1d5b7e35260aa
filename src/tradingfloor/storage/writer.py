"""Write-behind group commit for the broker's SQL tables.

State changes are applied in memory first and queued here as row operations; one writer task
commits everything queued so far in one transaction (the SQL twin of the venue's group commit).
Several changes to the same row within a batch merge into one statement. ``flush()`` waits until
what was queued before the call is committed; callers that must not acknowledge before their
change is durable (a new order, a deposit) await it. A failed commit is fatal: the writer stops,
``failure`` is set, and every later ``flush()`` raises, so the process can stop and recover.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Table, and_, delete, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["MAX_OPS_PER_COMMIT", "StoreFailedError", "WriteBehind"]

_log = logging.getLogger(__name__)

MAX_OPS_PER_COMMIT: Final = 5_000


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
        self._failed = asyncio.Event()
        self.commits = 0
        self._pk_cache: dict[str, tuple[str, ...]] = {}

    # --- queueing ------------------------------------------------------------------------------

    def _pk(self, table: Table) -> tuple[str, ...]:
        names = self._pk_cache.get(table.name)
        if names is None:
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
        await future

    def _take(self) -> list[_Op]:
        ops = list(self._pending.values())
        self._pending = {}
        return ops

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
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
        async with self.engine.begin() as conn:
            for start in range(0, len(ops), MAX_OPS_PER_COMMIT):
                for op in ops[start : start + MAX_OPS_PER_COMMIT]:
                    await conn.execute(self._statement(op))
        self.commits += 1

    def _statement(self, op: _Op) -> Any:
        table = op.table
        pk = self._pk(table)
        if op.kind == "insert":
            return insert(table).values(**op.values)
        where = and_(*(table.c[name] == value for name, value in zip(pk, op.key, strict=True)))
        if op.kind == "update":
            values = {k: v for k, v in op.values.items() if k not in pk}
            return update(table).where(where).values(**values)
        if op.kind == "delete":
            return delete(table).where(where)
        dialect = self.engine.dialect.name
        module: Any = postgresql if dialect == "postgresql" else sqlite
        stmt = module.insert(table).values(**op.values)
        changes = {k: stmt.excluded[k] for k in op.values if k not in pk}
        if not changes:
            return stmt.on_conflict_do_nothing(index_elements=list(pk))
        return stmt.on_conflict_do_update(index_elements=list(pk), set_=changes)
