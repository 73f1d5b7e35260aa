"""Writes state-machine snapshots on a worker thread, off the acknowledgement path.

The batch thread serialises the state right after a commit (``snapshot()`` of a state whose
every command is durable: a consistent state at a known seq) and hands the bytes here. The
worker validates them -- they must restore to a state machine at that seq whose own snapshot is
the same bytes -- then writes, fsyncs and prunes through the ``SnapshotStore``. One snapshot is
in flight at a time; a request while one is still being written waits for it (back-pressure:
with snapshots every N commands the previous one is long done, unless N is tiny), so snapshots
stay exactly where the caller asks for them. A failure is kept and raised
(``SnapshotFailedError``) by the next ``check``: the pipeline calls it before every batch, so a
failed snapshot stops matching.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tradingfloor.exchange.snapshot import SnapshotStore

__all__ = ["SnapshotFailedError", "SnapshotInvalidError", "SnapshotWriter", "Verify"]

_log = logging.getLogger(__name__)

Verify = Callable[[int, bytes], None]
"""Checks that ``data`` is a valid snapshot of the state at ``seq``; raises if it is not."""


class SnapshotInvalidError(ValueError):
    """Snapshot bytes that do not restore to the state they claim (never written)."""


class SnapshotFailedError(RuntimeError):
    """A snapshot could not be validated or written; the pipeline stops. Restart and recover."""


class SnapshotWriter:
    """See module docstring. ``close()`` waits for the snapshot in flight."""

    def __init__(
        self,
        store: SnapshotStore,
        verify: Verify,
        *,
        after_write: Callable[[int], None] | None = None,
    ) -> None:
        """``after_write(seq)`` runs on the worker after each snapshot is durable (journal
        retention); its errors are logged, not raised: the snapshot itself succeeded."""
        self._store = store
        self._verify = verify
        self._after_write = after_write
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot-writer")
        self._pending: Future[Path] | None = None
        self._failure: BaseException | None = None
        self.last_path: Path | None = None
        """The last snapshot written (by either path)."""

    @property
    def busy(self) -> bool:
        """Whether a snapshot is being validated or written now."""
        return self._pending is not None and not self._pending.done()

    def check(self) -> None:
        """Raise ``SnapshotFailedError`` if a snapshot failed (now or earlier)."""
        pending = self._pending
        if pending is not None and pending.done():
            self._pending = None
            error = pending.exception()
            if error is not None:
                self._failure = error
            else:
                self.last_path = pending.result()
        if self._failure is not None:
            raise SnapshotFailedError(f"snapshot failed: {self._failure!r}") from self._failure

    def submit(self, seq: int, ts: int, data: bytes) -> None:
        """Validate and write in the background (after the one in flight, if any)."""
        self.wait()
        self._pending = self._executor.submit(self._write, seq, ts, data)

    def write_now(self, seq: int, ts: int, data: bytes) -> Path:
        """Validate and write on the calling thread (after the one in flight)."""
        self.wait()
        path = self._write(seq, ts, data)
        self.last_path = path
        return path

    def wait(self) -> None:
        """Wait for the snapshot in flight; raise ``SnapshotFailedError`` if it failed."""
        pending = self._pending
        if pending is not None:
            pending.exception()  # waits; the outcome is read by check()
        self.check()

    def close(self) -> None:
        """Finish the snapshot in flight and stop the worker; raises if it failed."""
        try:
            self.wait()
        finally:
            self._executor.shutdown(wait=True)

    def _write(self, seq: int, ts: int, data: bytes) -> Path:
        try:
            self._verify(seq, data)
        except Exception as exc:
            raise SnapshotInvalidError(f"snapshot at seq {seq} does not verify: {exc}") from exc
        path = self._store.write(seq, ts, data)
        _log.info("snapshot at seq %d written to %s", seq, path)
        if self._after_write is not None:
            try:
                self._after_write(seq)
            except Exception:
                _log.exception("after the snapshot at seq %d: retention failed", seq)
        return path
