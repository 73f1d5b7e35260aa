"""Test helpers that run ``tradingfloor serve`` and QuickFIX initiator peers as subprocesses and
wait on the JSON events the peers print (docs/fix-testing.md).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tradingfloor.exchange.config import DEFAULT_CONFIG_PATH

__all__ = [
    "DEFAULT_TIMEOUT",
    "PASSWORDS",
    "Event",
    "Peer",
    "PeerTimeout",
    "ProcessGroup",
    "Venue",
    "fix_time",
    "write_config",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds a single wait may take before the test fails."""
START_TIMEOUT = 30.0
"""Seconds ``serve`` may take to print its listening lines."""
STOP_TIMEOUT = 10.0
"""Seconds a process may take to exit after SIGTERM or a ``stop`` command."""
INITIATOR = Path(__file__).resolve().with_name("initiator.py")
VENUE_COMP_ID = "TFEX"
PASSWORDS = {"MEMBER1": "member1-secret", "MEMBER2": "member2-secret", "BROKER": "broker-secret"}
"""Credentials of the members in the default venue configuration."""

ISOLATION_ARGS = ("--no-udp-feed", "--retransmission-port", "0", "--broker-port", "0")
"""Keep test venues off the shared multicast group and fixed ports, so several can run."""

SERVE_ENV = "TF_SERVE_COMMAND"
"""Environment variable: the command that stands for ``tradingfloor`` (default: this Python's
``-m tradingfloor``), e.g. to test an installed build."""

PEER_ARGS_ENV = "TF_FIXPEER_ARGS"
"""Environment variable: extra initiator arguments for every peer, for diagnosis only (e.g.
``--dictionary none`` to see what a gateway does past a message QuickFIX would reject)."""

_LISTEN_RE = re.compile(r"(FIX|HTTP) listening on ([0-9.]+):(\d+)")


def fix_time(delta: timedelta = timedelta(0)) -> str:
    """A FIX UTCTimestamp with milliseconds, now plus ``delta``."""
    return (datetime.now(UTC) + delta).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def write_config(
    path: Path,
    instruments: Iterable[tuple[str, int]] = (),
    members: Iterable[tuple[str, str, bool]] = (),
) -> Path:
    """The default venue configuration plus extra instruments ``(symbol, reference ticks)``
    (tick 0.01, band 10%) and members ``(comp_id, password, cancel_on_disconnect)``, so that
    each test can trade a book and use a session of its own.

    The logon limits are raised: every peer of a run connects from 127.0.0.1 and a peer with
    a wrong password reconnects every second. Brute-force protection itself is tested in
    tests/fix/test_acceptor.py, and against QuickFIX on the default venue."""
    text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
    for key, value in (("address_attempts_per_minute", 10_000), ("lockout_threshold", 1000)):
        text, found = re.subn(rf"^{key} = \d+", f"{key} = {value}", text, flags=re.M)
        if found != 1:
            raise AssertionError(f"{key} not found in {DEFAULT_CONFIG_PATH}")
    for symbol, reference in instruments:
        text += (
            f'\n[[instruments]]\nsymbol = "{symbol}"\ntick_size = "0.01"\n'
            f"reference_price = {reference}\nband_bps = 1000\n"
        )
    for comp_id, password, cancel_on_disconnect in members:
        text += (
            f'\n[[members]]\ncomp_id = "{comp_id}"\npassword = "{password}"\n'
            f"cancel_on_disconnect = {str(cancel_on_disconnect).lower()}\n"
        )
    path.write_text(text, encoding="utf-8")
    return path


class _Lines:
    """Collects a child's output lines on a thread; waiters block on a condition."""

    def __init__(self, stream: Any, log_path: Path, parse: Callable[[str], Any]) -> None:
        self.items: list[Any] = []
        self.closed = False
        self._cond = threading.Condition()
        self._parse = parse
        self._log = log_path.open("a", encoding="utf-8")
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        try:
            for line in stream:
                self._log.write(line)
                self._log.flush()
                item = self._parse(line.rstrip("\n"))
                if item is None:
                    continue
                with self._cond:
                    self.items.append(item)
                    self._cond.notify_all()
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()
            self._log.close()

    def wait(self, pred: Callable[[Any], bool], timeout: float, start: int = 0) -> Any | None:
        """The first item at index >= start matching pred, or None on timeout / end of stream."""
        deadline = time.monotonic() + timeout
        index = start
        with self._cond:
            while True:
                while index < len(self.items):
                    item = self.items[index]
                    index += 1
                    if pred(item):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    return None
                self._cond.wait(remaining)

    def snapshot(self) -> list[Any]:
        with self._cond:
            return list(self.items)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


@dataclass(frozen=True)
class Event:
    """One JSON line from the peer; for ``app``/``admin`` events a FIX message with accessors."""

    kind: str
    data: dict[str, Any]
    index: int = -1
    fields: tuple[tuple[int, str], ...] = field(default=())

    @classmethod
    def parse(cls, line: str, index: int) -> Event:
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            data = {"event": "stray", "line": line}
        fields = tuple((int(t), str(v)) for t, v in data.get("fields", ()))
        return cls(kind=str(data.get("event", "")), data=data, index=index, fields=fields)

    @property
    def direction(self) -> str:
        return str(self.data.get("dir", ""))

    @property
    def msg_type(self) -> str:
        return str(self.data.get("msg_type", ""))

    @property
    def seq(self) -> int:
        return int(self.data.get("seq", 0))

    @property
    def raw(self) -> str:
        return str(self.data.get("raw", ""))

    @property
    def incoming(self) -> bool:
        return self.kind in ("app", "admin") and self.direction == "in"

    @property
    def poss_dup(self) -> bool:
        return self.get(43) == "Y"

    def get(self, tag: int, default: str | None = None) -> str | None:
        """The first value of ``tag`` in wire order, or ``default``."""
        for t, v in self.fields:
            if t == tag:
                return v
        return default

    def __getitem__(self, tag: int) -> str:
        value = self.get(tag)
        if value is None:
            raise KeyError(f"tag {tag} not in {self.raw}")
        return value

    def all(self, tag: int) -> list[str]:
        """Every value of ``tag`` (repeating groups), in wire order."""
        return [v for t, v in self.fields if t == tag]

    def entries(self, count_tag: int, delim: int) -> list[dict[int, str]]:
        """The entries of the repeating group ``count_tag`` whose first field is ``delim``."""
        out: list[dict[int, str]] = []
        inside = False
        count = 0
        for t, v in self.fields:
            if t == count_tag:
                inside, count = True, int(v)
                continue
            if not inside:
                continue
            if t == delim:
                if len(out) == count:
                    break
                out.append({t: v})
            elif out and t not in out[-1]:
                out[-1][t] = v
            elif out:
                break  # a repeated tag outside the group's known fields ends it
        return out

    def __str__(self) -> str:
        if self.kind in ("app", "admin"):
            return f"{self.kind}/{self.direction} {self.raw}"
        return json.dumps(self.data)


def _entry_point() -> list[str]:
    override = os.environ.get(SERVE_ENV)
    if override:
        return shlex.split(override)
    if importlib.util.find_spec("tradingfloor.__main__") is not None:
        return [sys.executable, "-m", "tradingfloor"]
    return [sys.executable, "-c", "from tradingfloor.cli import main; main()"]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Venue:
    """``tradingfloor serve`` as a subprocess; ``start`` returns once both ports are known."""

    def __init__(
        self,
        data_dir: Path,
        config: Path | None = None,
        fix_port: int = 0,
        http_port: int = 0,
        log_dir: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.config = config
        self.fix_port = fix_port
        self.http_port = http_port
        self.log_path = (log_dir or data_dir.parent) / f"serve-{data_dir.name}.log"
        self.proc: subprocess.Popen[str] | None = None
        self._lines: _Lines | None = None

    def command(self) -> list[str]:
        cmd = [*_entry_point(), "serve", "--data-dir", str(self.data_dir)]
        cmd += ["--fix-port", str(self.fix_port), "--http-port", str(self.http_port)]
        cmd += ISOLATION_ARGS
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        return cmd

    def start(self, timeout: float = START_TIMEOUT) -> Venue:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"--- start {self.command()}\n")
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_child_env(),
            start_new_session=True,
        )
        self._lines = _Lines(self.proc.stdout, self.log_path, lambda line: line)
        ports: dict[str, int] = {}

        def ready(line: str) -> bool:
            for m in _LISTEN_RE.finditer(line):
                ports[m.group(1)] = int(m.group(3))
            return len(ports) == 2

        found = self._lines.wait(ready, timeout)
        if found is None:
            self.kill()
            raise RuntimeError(f"serve did not report its ports:\n{self.output_tail()}")
        self.fix_port, self.http_port = ports["FIX"], ports["HTTP"]
        return self

    def output(self) -> list[str]:
        return self._lines.snapshot() if self._lines is not None else []

    def output_tail(self, lines: int = 40) -> str:
        return "\n".join(self.output()[-lines:])

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in time. The exit code (None if killed)."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        self._finish()
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL (a crash): nothing is flushed or closed."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait(STOP_TIMEOUT)
        self._finish()

    def _finish(self) -> None:
        if self._lines is not None:
            self._lines.join(STOP_TIMEOUT)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


class PeerTimeout(AssertionError):
    """A wait on a peer's events timed out; the message shows what the peer did see."""


class Peer:
    """A QuickFIX initiator subprocess (tests/fixpeer/initiator.py) and its event stream."""

    def __init__(
        self,
        sender: str,
        port: int,
        store_dir: Path,
        password: str | None = None,
        reset: bool = False,
        target: str = VENUE_COMP_ID,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.sender = sender
        self.port = port
        self.store_dir = store_dir
        self.password = PASSWORDS.get(sender, "") if password is None else password
        self.reset = reset
        self.target = target
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[str] | None = None
        self.context: Callable[[], str] | None = None  # more text for timeout messages
        self._lines: _Lines | None = None
        self._counter = 0

    def start(self) -> Peer:
        if importlib.util.find_spec("quickfix") is None:
            raise RuntimeError("the QuickFIX peer needs quickfix: pip install -e '.[peers]'")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(INITIATOR), "--port", str(self.port), "--sender", self.sender]
        cmd += ["--target", self.target, "--store-dir", str(self.store_dir)]
        cmd += ["--password", self.password, *self.extra_args]
        cmd += shlex.split(os.environ.get(PEER_ARGS_ENV, ""))
        if self.reset:
            cmd.append("--reset")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_child_env(),
            start_new_session=True,
        )
        self._counter = 0

        def parse(line: str) -> Event:
            self._counter += 1
            return Event.parse(line, self._counter - 1)

        self._lines = _Lines(self.proc.stdout, self.store_dir / "peer-stdout.log", parse)
        return self

    # --- commands ---------------------------------------------------------------------------

    def command(self, op: str, **args: Any) -> None:
        proc = self.proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            raise RuntimeError(f"peer {self.sender} is not running")
        proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        proc.stdin.flush()

    def send(
        self,
        msg_type: str,
        fields: Sequence[Sequence[Any]],
        header: Sequence[Sequence[Any]] = (),
    ) -> None:
        """Send an application message; ``fields`` are ``[tag, value]`` pairs (a list value is a
        repeating group, see ``initiator.add_fields``)."""
        self.command("send", msg_type=msg_type, fields=[list(f) for f in fields], header=header)

    def seqnums(self, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, int]:
        """(next sender seq, next target seq) of the peer's session."""
        mark = self.mark()
        self.command("seqnums")
        event = self.wait_for(lambda e: e.kind == "seqnums", timeout, start=mark)
        return int(event.data["next_sender"]), int(event.data["next_target"])

    def wait_seqnums(
        self, pred: Callable[[int, int], bool], timeout: float = DEFAULT_TIMEOUT
    ) -> tuple[int, int]:
        """Poll ``seqnums`` until ``pred(next_sender, next_target)`` holds. QuickFIX advances
        its counters only after the callback that reported a message has returned."""
        deadline = time.monotonic() + timeout
        while True:
            nums = self.seqnums(timeout)
            if pred(*nums):
                return nums
            if time.monotonic() >= deadline:
                raise PeerTimeout(f"{self.sender}: sequence numbers stuck at {nums}")
            time.sleep(0.02)

    # --- events -----------------------------------------------------------------------------

    def events(self, start: int = 0) -> list[Event]:
        return self._lines.snapshot()[start:] if self._lines is not None else []

    def mark(self) -> int:
        """The index of the next event: pass it as ``start`` to wait only for later events."""
        return len(self.events())

    def messages(self, pred: Callable[[Event], bool] | None = None, start: int = 0) -> list[Event]:
        """The incoming FIX messages so far (optionally filtered)."""
        return [e for e in self.events(start) if e.incoming and (pred is None or pred(e))]

    def wait_for(
        self,
        pred: Callable[[Event], bool],
        timeout: float = DEFAULT_TIMEOUT,
        start: int = 0,
        what: str = "",
    ) -> Event:
        """The first event from ``start`` on that matches; PeerTimeout after ``timeout``."""
        if self._lines is None:
            raise RuntimeError("peer not started")
        event = self._lines.wait(pred, timeout, start)
        if event is None:
            raise PeerTimeout(self._explain(what or "event", timeout, start))
        return event

    def wait_msg(
        self,
        msg_type: str,
        pred: Callable[[Event], bool] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        start: int = 0,
        what: str = "",
    ) -> Event:
        """The first incoming message of ``msg_type`` from ``start`` on that matches ``pred``."""

        def match(e: Event) -> bool:
            return e.incoming and e.msg_type == msg_type and (pred is None or pred(e))

        return self.wait_for(match, timeout, start, what or f"incoming 35={msg_type}")

    def wait_er(
        self,
        cl_ord_id: str,
        exec_type: str,
        timeout: float = DEFAULT_TIMEOUT,
        start: int = 0,
    ) -> Event:
        """The first ExecutionReport for ``cl_ord_id`` (tag 11) with ExecType ``exec_type``."""
        return self.wait_msg(
            "8",
            lambda e: e.get(11) == cl_ord_id and e.get(150) == exec_type,
            timeout,
            start,
            f"ExecutionReport 11={cl_ord_id} 150={exec_type}",
        )

    def wait_logon(self, timeout: float = DEFAULT_TIMEOUT, start: int = 0) -> Event:
        return self.wait_for(lambda e: e.kind == "logon", timeout, start, "logon")

    def quiet(self, pred: Callable[[Event], bool], seconds: float, start: int = 0) -> None:
        """Assert that no event matching ``pred`` arrives within ``seconds``."""
        if self._lines is None:
            raise RuntimeError("peer not started")
        event = self._lines.wait(pred, seconds, start)
        if event is not None:
            raise AssertionError(f"{self.sender}: unexpected {event}")

    def _explain(self, what: str, timeout: float, start: int) -> str:
        seen = self.events(start)[-25:]
        lines = [f"{self.sender}: no {what} within {timeout:.1f}s; events since #{start}:"]
        lines += [f"  #{e.index} {e}" for e in seen] or ["  (none)"]
        for log in sorted((self.store_dir / "log").glob("*.event*.log")):
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-10:]
            lines.append(f"QuickFIX event log {log.name}:")
            lines += [f"  {t}" for t in tail]
        if self.context is not None:
            lines.append(self.context())
        return "\n".join(lines)

    # --- shutdown ---------------------------------------------------------------------------

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Ask the peer to stop its initiator (QuickFIX logs out first) and exit."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                self.command("stop")
                proc.wait(timeout)
            except (RuntimeError, OSError, subprocess.TimeoutExpired):
                self.kill()
        self._finish()

    def kill(self) -> None:
        """SIGKILL: the TCP connection drops without a Logout."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait(STOP_TIMEOUT)
        self._finish()

    def _finish(self) -> None:
        if self._lines is not None:
            self._lines.join(STOP_TIMEOUT)
        if self.proc is not None:
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()


class ProcessGroup:
    """Owns every venue and peer a fixture started, and stops them all in ``close``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.venues: list[Venue] = []
        self.peers: list[Peer] = []

    def venue(
        self,
        name: str = "venue",
        config: Path | None = None,
        fix_port: int = 0,
        data_dir: Path | None = None,
    ) -> Venue:
        """Start ``serve`` on ``root/name`` (or ``data_dir``) and return once it listens."""
        venue = Venue(data_dir or self.root / name, config, fix_port, log_dir=self.root)
        self.venues.append(venue)
        return venue.start()

    def peer(
        self,
        sender: str,
        port: int,
        store: str | None = None,
        password: str | None = None,
        reset: bool = False,
        logon: bool = True,
    ) -> Peer:
        """Start a peer with its FileStore in ``root/store`` (default: the sender's name)."""
        peer = Peer(sender, port, self.root / (store or f"peer-{sender}"), password, reset)
        peer.context = self._venue_output
        self.peers.append(peer)
        peer.start()
        if logon:
            peer.wait_logon()
        return peer

    def _venue_output(self) -> str:
        running = [v for v in self.venues if v.proc is not None]
        if not running:
            return "(no venue)"
        venue = running[-1]
        return f"last lines of {venue.log_path.name}:\n{venue.output_tail(25)}"

    def close(self) -> None:
        for peer in self.peers:
            peer.kill()
        for venue in self.venues:
            venue.stop()
