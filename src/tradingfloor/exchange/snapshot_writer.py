"""Writes state-machine snapshots off the acknowledgement path.

Two ways, chosen per writer (``mode``):

- ``"fork"`` (the default where ``os.fork`` exists): ``submit_state`` forks the process right
  after a commit. The child holds a copy-on-write image of the state at exactly that seq; it
  serialises it, validates the bytes (they must restore to a state machine at that seq whose
  own snapshot is the same bytes), writes, fsyncs and prunes through the ``SnapshotStore`` and
  exits; it runs nothing else (no logging, no garbage collection, no event loop). The batch
  thread pays only for the fork (page tables: milliseconds, where serialising a large book
  took hundreds); a worker thread waits for the child and reads its outcome from a pipe.
- ``"inline"``: the batch thread serialises the state and hands the bytes to a worker thread,
  which validates, writes, fsyncs and prunes.

One snapshot is in flight at a time; a request while one is still being written waits for it
(back-pressure: with snapshots every N commands the previous one is long done, unless N is
tiny), so snapshots stay exactly where the caller asks for them. A failure is kept and raised
(``SnapshotFailedError``) by the next ``check``: the pipeline calls it before every batch, so a
failed snapshot stops matching.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Final, Literal, Protocol

from tradingfloor.exchange.snapshot import SnapshotStore, snapshot_name

__all__ = [
    "DEFAULT_MODE",
    "SnapshotFailedError",
    "SnapshotInvalidError",
    "SnapshotMode",
    "SnapshotWriter",
    "Verify",
]

_log = logging.getLogger(__name__)

Verify = Callable[[int, bytes], None]
"""Checks that ``data`` is a valid snapshot of the state at ``seq``; raises if it is not."""

SnapshotMode = Literal["fork", "inline"]
DEFAULT_MODE: Final[SnapshotMode] = (
    "fork" if hasattr(os, "fork") and sys.platform.startswith("linux") else "inline"
)
_MAX_ERROR_BYTES: Final = 4096


class _Snapshottable(Protocol):
    def snapshot(self) -> bytes: ...


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
        mode: SnapshotMode = DEFAULT_MODE,
    ) -> None:
        """``after_write(seq)`` runs on the worker after each snapshot is durable (journal
        retention); its errors are logged, not raised: the snapshot itself succeeded."""
        if mode == "fork" and not hasattr(os, "fork"):
            raise ValueError("this platform cannot fork: use mode='inline'")
        self.mode: SnapshotMode = mode
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

    def submit_state(self, seq: int, ts: int, state: _Snapshottable) -> None:
        """Snapshot ``state`` (now at ``seq``) in the background: forked or serialised here
        (``mode``). ``state`` may change as soon as this returns."""
        if self.mode == "inline":
            self.submit(seq, ts, state.snapshot())
            return
        self.wait()
        read_fd, write_fd = os.pipe()
        try:
            pid = os.fork()
        except BaseException:
            os.close(read_fd)
            os.close(write_fd)
            raise
        if pid == 0:  # the child: never returns
            os.close(read_fd)
            self._child(seq, ts, state, write_fd)
        os.close(write_fd)
        self._pending = self._executor.submit(self._reap, seq, pid, read_fd)

    def _child(self, seq: int, ts: int, state: _Snapshottable, error_fd: int) -> None:
        code = 1
        try:
            gc.disable()  # no finalisers of the parent's objects (sockets, transports) run here
            # Ctrl-C or a group SIGTERM is the parent's business: the child finishes (in well
            # under a second) rather than fail the snapshot, and never writes a signal number
            # to the wakeup descriptor it shares with the parent's event loop.
            with contextlib.suppress(ValueError, OSError):
                signal.set_wakeup_fd(-1)
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ValueError, OSError):
                    signal.signal(signum, signal.SIG_IGN)
            data = state.snapshot()
            self._write(seq, ts, data, after=False)
            code = 0
        except BaseException as exc:
            # "<errno> <text>": an OSError is raised again as one in the parent (the real
            # cause of a fail-stop, e.g. ENOSPC); errno 0 for anything else
            number = exc.errno if isinstance(exc, OSError) and exc.errno else 0
            text = exc.strerror if number and isinstance(exc, OSError) else repr(exc)
            with contextlib.suppress(BaseException):
                message = f"{number} {text}".encode("utf-8", "replace")
                os.write(error_fd, message[:_MAX_ERROR_BYTES])
        finally:
            os._exit(code)

    def _reap(self, seq: int, pid: int, error_fd: int) -> Path:
        """Worker: wait for the child that writes the snapshot at ``seq``; its outcome."""
        try:
            with os.fdopen(error_fd, "rb") as pipe:
                error = pipe.read(_MAX_ERROR_BYTES)
            _pid, status = os.waitpid(pid, 0)
        except BaseException:
            _log.exception("waiting for the snapshot child %d failed", pid)
            raise
        code = os.waitstatus_to_exitcode(status)
        if code != 0 or error:
            number, _, text = error.decode("utf-8", "replace").partition(" ")
            if number.isdigit() and int(number):
                raise OSError(int(number), f"{text} (snapshot at seq {seq})")
            reason = text or f"exit code {code}"
            raise SnapshotInvalidError(f"the snapshot child at seq {seq} failed: {reason}")
        path = self._store.directory / snapshot_name(seq)
        _log.info("snapshot at seq %d written to %s (forked)", seq, path)
        self._run_after_write(seq)
        return path

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

    def _write(self, seq: int, ts: int, data: bytes, *, after: bool = True) -> Path:
        try:
            self._verify(seq, data)
        except Exception as exc:
            raise SnapshotInvalidError(f"snapshot at seq {seq} does not verify: {exc}") from exc
        path = self._store.write(seq, ts, data)
        if after:  # not in a forked child: it logs nothing and leaves retention to the parent
            _log.info("snapshot at seq %d written to %s", seq, path)
            self._run_after_write(seq)
        return path

    def _run_after_write(self, seq: int) -> None:
        if self._after_write is not None:
            try:
                self._after_write(seq)
            except Exception:
                _log.exception("after the snapshot at seq %d: retention failed", seq)
