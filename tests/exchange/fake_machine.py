"""A tiny deterministic state machine for journal, snapshot and recovery tests.

Its state is a hash chain over every (seq, ts, command) applied plus per-type counts, so any
missing, extra or reordered command changes ``state_hash()``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from tradingfloor.exchange.engine.commands import Command, Halt

POISON = Halt(symbol="BOOM")
"""Applying this command raises, like an engine bug would."""


class FakeMachine:
    def __init__(self) -> None:
        self.last_seq = 0
        self.chain = b"\x00" * 32
        self.counts: dict[str, int] = {}

    def apply(self, seq: int, ts: int, cmd: Command) -> list[Any]:
        if seq != self.last_seq + 1:
            raise RuntimeError(f"seq {seq} after {self.last_seq}")
        if cmd == POISON:
            raise RuntimeError("poison command")
        self.chain = hashlib.sha256(self.chain + msgspec.msgpack.encode((seq, ts, cmd))).digest()
        tag = str(type(cmd).__struct_config__.tag)
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.last_seq = seq
        return [("applied", seq, ts, tag)]

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode([self.last_seq, self.chain, sorted(self.counts.items())])

    @classmethod
    def restore(cls, data: bytes) -> FakeMachine:
        last_seq, chain, counts = msgspec.msgpack.decode(data)
        machine = cls()
        machine.last_seq, machine.chain = last_seq, chain
        machine.counts = {tag: n for tag, n in counts}
        return machine

    def state_hash(self) -> str:
        return hashlib.sha256(self.snapshot()).hexdigest()


def replay(records: list[tuple[int, int, Command]]) -> list[str]:
    """state_hash after 0, 1, ..., n of the given records, from a fresh machine."""
    machine = FakeMachine()
    hashes = [machine.state_hash()]
    for seq, ts, cmd in records:
        machine.apply(seq, ts, cmd)
        hashes.append(machine.state_hash())
    return hashes
