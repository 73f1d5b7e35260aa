"""The broker's view of the venue's market: listings, last trade prices and the trailing stops
it follows, and the checkpoint of that view (``broker.market``).

The broker applies a venue event to its own state (orders, fills, cash) only if its database
has not seen it (its seq is above the database's mark), but every event to this view: it is
kept in memory only. Without a checkpoint, start-up therefore replays the whole journal into
the broker. With one (``exchange/checkpoint.py``), the venue restores this view as it was
after some event ``E`` at or below the broker's mark and replays only the events after ``E``:
those up to the mark update the view alone, the later ones everything. So the view must hold
exactly what the broker's handling of events at or below its mark builds:

- ``instruments``: every listing (``InstrumentAdded``) as the broker's ``Instrument``;
- ``last_price``: each symbol's last trade price (ticks);
- ``trails``: the venue's trailing stops of the broker's own open orders with their reference
  (high-water mark of a sell, low of a buy) and trail (``oms/trailing.py``).

A checkpoint taken while the broker runs may name a trailing stop whose order closed before
the broker's mark; such an entry is never looked up (venue order ids are not reused) and
``retain_trails`` drops it once the replay is done, so that the view equals one rebuilt from
the whole journal.

The checkpoint is msgspec msgpack of typed structs with a version; prices, sizes and trails are
integers (the tick size is the venue's own decimal string). ``restore_checkpoint`` decodes and
validates everything before it changes anything: on ``CheckpointError`` the view stays fresh.
The venue's name is configuration, not state: the restored instruments take the current one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from decimal import Decimal, InvalidOperation
from typing import Annotated, Final

import msgspec

from tradingfloor.broker.instruments import Instrument
from tradingfloor.broker.oms.trailing import Trail, TrailTracker
from tradingfloor.core.limits import INT64_MAX, MAX_TRAIL_BPS
from tradingfloor.exchange.checkpoint import CheckpointError, decode_versioned
from tradingfloor.exchange.engine.events import InstrumentAdded

__all__ = ["MARKET_VIEW_CHECKPOINT", "MARKET_VIEW_VERSION", "MarketView"]

MARKET_VIEW_CHECKPOINT: Final = "broker.market/1"
MARKET_VIEW_VERSION: Final = 1

_Positive = Annotated[int, msgspec.Meta(gt=0, le=INT64_MAX)]
_NonNegative = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
_Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class _Listing(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    symbol: _Symbol
    tick_size: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    lot_size: _Positive
    currency: Annotated[str, msgspec.Meta(min_length=1, max_length=8)]


class _TrailPart(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    venue_order_id: _Positive
    symbol: _Symbol
    is_buy: bool
    amount: _NonNegative  # ticks; 0 when the trail is a percentage
    bps: Annotated[int, msgspec.Meta(ge=0, le=MAX_TRAIL_BPS)]
    ref: _Positive


class _State(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: int
    instruments: list[_Listing]  # in listing order
    last_price: list[tuple[_Symbol, _Positive]]  # in the order symbols first traded
    trails: list[_TrailPart]  # by venue order id


_encoder: Final = msgspec.msgpack.Encoder()


class MarketView:
    """See module docstring. The containers are the broker's own (it reads and updates them in
    place); a restore refills them rather than replacing them."""

    def __init__(self, venue_name: str) -> None:
        self.venue_name = venue_name
        self.instruments: dict[str, Instrument] = {}
        self.last_price: dict[str, int] = {}
        self.trails = TrailTracker()
        self._tick_sizes: dict[str, str] = {}  # symbol -> the venue's tick size string

    @property
    def checkpoint_name(self) -> str:
        return MARKET_VIEW_CHECKPOINT

    def list_instrument(self, added: InstrumentAdded) -> None:
        """A listing (a symbol listed again replaces its entry, as the engine never does)."""
        self.instruments[added.symbol] = self._instrument(
            added.symbol, added.tick_size, added.lot_size, added.currency
        )
        self._tick_sizes[added.symbol] = added.tick_size

    def _instrument(self, symbol: str, tick_size: str, lot_size: int, currency: str) -> Instrument:
        return Instrument(
            symbol=symbol,
            tick_size=Decimal(tick_size),
            lot_size=lot_size,
            currency=currency,
            venue=self.venue_name,
        )

    def retain_trails(self, venue_order_ids: Collection[int]) -> int:
        """After the replay: forget trailing stops of orders no longer open (see module doc)."""
        return self.trails.retain(venue_order_ids)

    # --- checkpoint --------------------------------------------------------------------------

    def _state(self) -> _State:
        return _State(
            version=MARKET_VIEW_VERSION,
            instruments=[
                _Listing(symbol, self._tick_sizes[symbol], inst.lot_size, inst.currency)
                for symbol, inst in self.instruments.items()
            ],
            last_price=list(self.last_price.items()),
            trails=[
                _TrailPart(oid, tr.symbol, tr.is_buy, tr.amount, tr.bps, tr.ref)
                for oid, tr in self.trails.items()
            ],
        )

    def checkpoint(self) -> bytes:
        return _encoder.encode(self._state())

    def state_hash(self) -> str:
        """SHA-256 of the view's state (what a checkpoint holds)."""
        return hashlib.sha256(self.checkpoint()).hexdigest()

    def restore_checkpoint(self, data: bytes) -> None:
        if self.instruments or self.last_price or self.trails.items():
            raise CheckpointError("broker.market: restore into a view that has applied events")
        state = _decode(data)
        instruments: dict[str, Instrument] = {}
        tick_sizes: dict[str, str] = {}
        for listing in state.instruments:
            if listing.symbol in instruments:
                raise CheckpointError(f"broker.market: {listing.symbol!r} listed twice")
            try:
                tick = Decimal(listing.tick_size)
            except InvalidOperation:
                raise CheckpointError(
                    f"broker.market: tick size {listing.tick_size!r} is not a number"
                ) from None
            if not tick.is_finite() or tick <= 0:
                raise CheckpointError(f"broker.market: tick size {listing.tick_size!r}")
            instruments[listing.symbol] = self._instrument(
                listing.symbol, listing.tick_size, listing.lot_size, listing.currency
            )
            tick_sizes[listing.symbol] = listing.tick_size
        last_price = dict(state.last_price)
        if len(last_price) != len(state.last_price) or not last_price.keys() <= instruments.keys():
            raise CheckpointError("broker.market: last prices of unknown or repeated symbols")
        trails: dict[int, Trail] = {}
        for part in state.trails:
            if part.symbol not in instruments or part.venue_order_id in trails:
                raise CheckpointError(f"broker.market: trailing stop {part.venue_order_id}")
            if (part.amount == 0) == (part.bps == 0):
                raise CheckpointError(
                    f"broker.market: trailing stop {part.venue_order_id} has no valid trail"
                )
            trails[part.venue_order_id] = Trail(
                part.symbol, part.is_buy, part.amount, part.bps, part.ref
            )
        # everything is checked: now fill the broker's containers in place
        self.instruments.update(instruments)
        self._tick_sizes.update(tick_sizes)
        self.last_price.update(last_price)
        self.trails.load(sorted(trails.items()))


def _decode(data: bytes) -> _State:
    return decode_versioned(data, _State, MARKET_VIEW_VERSION, MARKET_VIEW_CHECKPOINT)
