"""A real QuickFIX 4.4 initiator run as a subprocess test peer, driven by JSON lines on stdin and
reporting every session and application message as JSON lines on stdout (docs/fix-testing.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import quickfix as fix

SOH = "\x01"
BEGIN_STRING = "FIX.4.4"
MSG_TYPE = 35
MSG_SEQ_NUM = 34
LOGON = "A"
USERNAME = 553
PASSWORD = 554
SPEC_NAME = "FIX44.xml"


class Output:
    """Writes one JSON object per line to stdout, flushed, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":"))
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


def parse_raw(raw: str) -> list[list[Any]]:
    """The (tag, value) pairs of a raw FIX message in wire order, repeating groups included."""
    fields: list[list[Any]] = []
    for part in raw.split(SOH):
        if not part:
            continue
        tag, _, value = part.partition("=")
        fields.append([int(tag), value])
    return fields


def describe(message: fix.Message, kind: str, direction: str) -> dict[str, Any]:
    """The JSON event for one message: its type, its raw text ('|' for SOH) and its fields."""
    raw = message.toString()
    fields = parse_raw(raw)
    msg_type = next((v for t, v in fields if t == MSG_TYPE), "")
    seq = next((v for t, v in fields if t == MSG_SEQ_NUM), "0")
    return {
        "event": kind,
        "dir": direction,
        "msg_type": msg_type,
        "seq": int(seq) if seq.isdigit() else 0,
        "raw": raw.replace(SOH, "|"),
        "fields": fields,
    }


class PeerApplication(fix.Application):
    """Reports every callback; puts the password (and username) on the outgoing Logon."""

    def __init__(self, out: Output, username: str, password: str) -> None:
        super().__init__()
        self.out = out
        self.username = username
        self.password = password
        self.session_id: fix.SessionID | None = None

    def _guard(self, what: str, func: Any) -> None:
        try:
            func()
        except Exception:  # a crash inside a QuickFIX callback must not kill the session thread
            self.out.emit({"event": "error", "where": what, "error": traceback.format_exc()})

    def onCreate(self, session_id: fix.SessionID) -> None:
        self.session_id = session_id
        self.out.emit({"event": "create", "session": session_id.toString()})

    def onLogon(self, session_id: fix.SessionID) -> None:
        self.out.emit({"event": "logon", "session": session_id.toString()})

    def onLogout(self, session_id: fix.SessionID) -> None:
        self.out.emit({"event": "logout", "session": session_id.toString()})

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        def run() -> None:
            if message.getHeader().getField(MSG_TYPE) == LOGON:
                if self.username:
                    message.setField(USERNAME, self.username)
                if self.password:
                    message.setField(PASSWORD, self.password)
            self.out.emit(describe(message, "admin", "out"))

        self._guard("toAdmin", run)

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        self._guard("fromAdmin", lambda: self.out.emit(describe(message, "admin", "in")))

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        self._guard("toApp", lambda: self.out.emit(describe(message, "app", "out")))

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        self._guard("fromApp", lambda: self.out.emit(describe(message, "app", "in")))


def add_fields(target: fix.FieldMap, fields: list[list[Any]]) -> None:
    """Set ``[tag, value]`` pairs on a message body or group; a list value is a repeating group:
    ``[count_tag, [[[tag, value], ...], ...]]`` (one list of pairs per entry, delimiter first)."""
    for tag, value in fields:
        if isinstance(value, list):
            for entry in value:
                group = fix.Group(int(tag), int(entry[0][0]))
                add_fields(group, entry)
                target.addGroup(group)
        else:
            target.setField(int(tag), str(value))


def build_message(command: dict[str, Any]) -> fix.Message:
    """A FIX 4.4 message from a ``send`` command (header fields other than 8/35/49/56/34/52 may be
    given in ``header``)."""
    message = fix.Message()
    header = message.getHeader()
    header.setField(fix.BeginString(BEGIN_STRING))
    header.setField(fix.MsgType(str(command["msg_type"])))
    for tag, value in command.get("header", []):
        header.setField(int(tag), str(value))
    add_fields(message, command.get("fields", []))
    return message


def default_dictionary() -> Path | None:
    """The FIX 4.4 data dictionary the quickfix wheel installs under ``<prefix>/share/quickfix``."""
    for prefix in (sys.prefix, sys.base_prefix):
        path = Path(prefix) / "share" / "quickfix" / SPEC_NAME
        if path.is_file():
            return path
    return None


def settings_text(args: argparse.Namespace, store_dir: Path) -> str:
    """The QuickFIX session settings for one FIX 4.4 initiator session."""
    dictionary = None
    if args.dictionary != "none":
        dictionary = Path(args.dictionary) if args.dictionary else default_dictionary()
    lines = [
        "[DEFAULT]",
        "ConnectionType=initiator",
        f"ReconnectInterval={args.reconnect_interval}",
        f"FileStorePath={store_dir / 'store'}",
        f"FileLogPath={store_dir / 'log'}",
        "NonStopSession=Y",
        f"HeartBtInt={args.heartbeat}",
        f"SocketConnectHost={args.host}",
        f"SocketConnectPort={args.port}",
        f"ResetOnLogon={'Y' if args.reset else 'N'}",
        "ResetOnLogout=N",
        "ResetOnDisconnect=N",
        "PersistMessages=Y",
        "LogonTimeout=5",
        "LogoutTimeout=2",
        "SocketNodelay=Y",
    ]
    if dictionary is not None:
        lines += [
            "UseDataDictionary=Y",
            f"DataDictionary={dictionary}",
            # Tags from 5000 up (20001-20003 here) are user-defined by the FIX spec.
            "ValidateUserDefinedFields=N",
        ]
    else:
        lines.append("UseDataDictionary=N")
    lines += [
        "",
        "[SESSION]",
        f"BeginString={BEGIN_STRING}",
        f"SenderCompID={args.sender}",
        f"TargetCompID={args.target}",
        "",
    ]
    return "\n".join(lines)


class Peer:
    """The running initiator and the stdin command loop that drives it."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.out = Output()
        store_dir = Path(args.store_dir).resolve()
        store_dir.mkdir(parents=True, exist_ok=True)
        cfg = store_dir / "initiator.cfg"
        cfg.write_text(settings_text(args, store_dir), encoding="utf-8")
        self.session_id = fix.SessionID(BEGIN_STRING, args.sender, args.target)
        self.app = PeerApplication(self.out, args.username, args.password)
        self.settings = fix.SessionSettings(str(cfg))
        self.initiator = fix.SocketInitiator(
            self.app,
            fix.FileStoreFactory(self.settings),
            self.settings,
            fix.FileLogFactory(self.settings),
        )

    def session(self) -> fix.Session:
        session = fix.Session.lookupSession(self.session_id)
        if session is None:
            raise RuntimeError("session not found")
        return session

    def handle(self, command: dict[str, Any]) -> bool:
        """Run one command; False when the peer should exit."""
        op = command.get("op")
        if op == "send":
            message = build_message(command)
            fix.Session.sendToTarget(message, self.session_id)
        elif op == "logout":
            self.session().logout(str(command.get("text", "")))
        elif op == "disconnect":
            self.session().disconnect()
        elif op == "set_next_sender_seq":
            self.session().setNextSenderMsgSeqNum(int(command["n"]))
        elif op == "set_next_target_seq":
            self.session().setNextTargetMsgSeqNum(int(command["n"]))
        elif op == "seqnums":
            session = self.session()
            self.out.emit(
                {
                    "event": "seqnums",
                    "next_sender": session.getExpectedSenderNum(),
                    "next_target": session.getExpectedTargetNum(),
                    "logged_on": bool(session.isLoggedOn()),
                }
            )
        elif op == "stop":
            return False
        else:
            raise ValueError(f"unknown op {op!r}")
        return True

    def run(self) -> int:
        self.initiator.start()
        self.out.emit({"event": "started"})
        try:
            for line in sys.stdin:
                if not line.strip():
                    continue
                try:
                    command = json.loads(line)
                    keep_going = self.handle(command)
                except Exception as exc:
                    self.out.emit({"event": "error", "where": "command", "error": repr(exc)})
                    continue
                if "id" in command:
                    self.out.emit({"event": "done", "id": command["id"]})
                if not keep_going:
                    break
        finally:
            self.initiator.stop()
            self.out.emit({"event": "stopped"})
        return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sender", required=True, help="our SenderCompID")
    parser.add_argument("--target", default="TFEX", help="the venue's CompID")
    parser.add_argument("--username", default="", help="Username (553) on Logon")
    parser.add_argument("--password", default="", help="Password (554) on Logon")
    parser.add_argument("--store-dir", required=True, help="FileStore and FileLog directory")
    parser.add_argument("--reset", action="store_true", help="ResetSeqNumFlag=Y on Logon")
    parser.add_argument("--heartbeat", type=int, default=30)
    parser.add_argument("--reconnect-interval", type=int, default=1)
    parser.add_argument(
        "--dictionary",
        default="",
        help="FIX44.xml path; default: the one the quickfix wheel installs; 'none': no validation",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dictionary == "" and default_dictionary() is None:
        args.dictionary = "none"
    return Peer(args).run()


if __name__ == "__main__":
    sys.exit(main())
