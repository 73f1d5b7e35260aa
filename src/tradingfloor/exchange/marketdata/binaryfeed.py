"""The venue's binary feed: engine events translated to ITCH messages and sent as MoldUDP64 packets.

``BinaryFeed.on_events`` is a venue listener. It always keeps the ``ItchTranslator`` up to
date (also while the venue replays its history at start), and once ``open`` has been awaited
it publishes every command's messages in one call, so a command never spans two sends that
another command's messages could interleave. Each run of the venue is a new MoldUDP64 session
(named from the start time) whose first messages are the translator's state: start of
messages, every listed symbol and its trading state, every displayed order. A receiver that
starts at message 1 (directly or by retransmission) therefore sees the whole book.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from tradingfloor.exchange.checkpoint import CheckpointError, decode_versioned
from tradingfloor.exchange.engine.commands import Command
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.marketdata.checkpoint_state import (
    ITCH_STATE_VERSION,
    ItchFeedState,
    encode_state,
)
from tradingfloor.exchange.marketdata.itch import ItchTranslator, encode
from tradingfloor.exchange.marketdata.udpfeed import (
    Address,
    FeedPublisher,
    RetransmissionServer,
)

__all__ = ["DEFAULT_FEED_ADDRESS", "BinaryFeed", "session_name"]

DEFAULT_FEED_ADDRESS: Final = ("239.255.42.99", 31001)


def session_name(start_ns: int) -> str:
    """A 10-character MoldUDP64 session name unique per second of start time."""
    return f"TF{start_ns // 1_000_000_000 & 0xFFFFFFFF:08X}"


class BinaryFeed:
    """See module docstring."""

    def __init__(self) -> None:
        self.translator = ItchTranslator()
        self.publisher: FeedPublisher | None = None
        self.server: RetransmissionServer | None = None
        self.messages_sent = 0
        self._last_ts = 0

    def on_events(self, command: Command, events: Sequence[Event]) -> None:
        messages = self.translator.translate(events)
        if events:
            self._last_ts = events[-1].ts
        if self.publisher is not None and messages:
            self.publisher.publish([encode(m) for m in messages])
            self.messages_sent += len(messages)

    @property
    def last_ts(self) -> int:
        """``ts`` of the last event seen (a session opened now starts its state at or after it)."""
        return self._last_ts

    # ``Checkpointed`` (exchange.checkpoint); the format is ``checkpoint_state.ItchFeedState``.

    @property
    def checkpoint_name(self) -> str:
        return "itch/1"

    def checkpoint(self) -> bytes:
        """The translator's state and the last event time (not the session or its numbers)."""
        state = ItchFeedState(ITCH_STATE_VERSION, self.translator.export_state(), self._last_ts)
        return encode_state(state)

    def restore_checkpoint(self, data: bytes) -> None:
        """Continue from ``checkpoint()``'s bytes: call before ``open`` and before any event.
        ``CheckpointError``, and the feed stays fresh, for unusable bytes."""
        if self.publisher is not None or self._last_ts:
            raise RuntimeError("restore_checkpoint needs a fresh binary feed")
        state = decode_versioned(data, ItchFeedState, ITCH_STATE_VERSION, "itch")
        if state.last_ts < 0:
            raise CheckpointError(f"itch checkpoint: last ts {state.last_ts} < 0")
        try:
            self.translator.restore_state(state.translator)
        except CheckpointError as exc:
            raise CheckpointError(f"itch checkpoint: {exc}") from None
        self._last_ts = state.last_ts

    async def open(
        self,
        target: Address = DEFAULT_FEED_ADDRESS,
        *,
        start_ns: int,
        retransmission_bind: Address = ("127.0.0.1", 0),
        heartbeat_ms: int = 1000,
    ) -> None:
        """Start publishing: a new session whose first messages are the current state."""
        if self.publisher is not None:
            raise RuntimeError("the binary feed is open already")
        publisher = await FeedPublisher.open(
            session_name(start_ns), target, heartbeat_ms=heartbeat_ms
        )
        try:
            self.server = await RetransmissionServer.open(publisher.store, retransmission_bind)
        except BaseException:
            await publisher.close(end_session=False)
            raise
        state = self.translator.state_messages(max(start_ns, self._last_ts))
        publisher.publish([encode(m) for m in state])
        self.messages_sent += len(state)
        self.publisher = publisher

    async def close(self) -> None:
        """Send end of session and close both sockets."""
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.publisher is not None:
            publisher, self.publisher = self.publisher, None
            await publisher.close(end_session=True)
