"""The broker's relational schema as SQLAlchemy Core tables (SQLite and PostgreSQL alike).

Money is stored as integer minor units (cents), prices as integer ticks of the instrument,
quantities as integer shares and times as integer nanoseconds since the epoch (UTC), so no
column is ever a float. Every record of a change made on someone's behalf (``order_events``,
``admin_actions``) stores its actor in the columns of `actor_columns` (``core.actor.Actor``).
Alembic migrations in ``storage/migrations`` create exactly this schema; a test compares the
two.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "account_configurations",
    "accounts",
    "actor_columns",
    "admin_actions",
    "api_keys",
    "customers",
    "equity_history",
    "fills",
    "ledger",
    "marks",
    "metadata",
    "opening_equity",
    "order_events",
    "orders",
    "positions",
    "refresh_tokens",
    "restricted_symbols",
    "users",
    "watchlist_assets",
    "watchlists",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

customers = Table(
    "customers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("kyc_status", String(16), nullable=False),  # pending | approved | rejected
    Column("kyc_note", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_number", String(32), nullable=False, unique=True),
    Column("customer_id", String(36), ForeignKey("customers.id"), nullable=False, index=True),
    Column("account_type", String(8), nullable=False),  # cash | margin
    Column("status", String(16), nullable=False),  # ACTIVE | ACCOUNT_CLOSED
    Column("currency", String(3), nullable=False),
    Column("trading_blocked", Boolean, nullable=False, default=False),
    Column("pattern_day_trader", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),  # admin | broker | trader | investor
    Column("customer_id", String(36), ForeignKey("customers.id"), nullable=True),
    Column("totp_secret", String(64), nullable=True),
    Column("totp_enabled", Boolean, nullable=False, default=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", BigInteger, nullable=False, default=0),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("family_id", String(36), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("replaced_by", String(36), nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False),
    Column("label", String(100), nullable=False, default=""),
    Column("rate_limit_per_minute", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    # deposit | withdrawal | buy | sell | fee
    Column("kind", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),  # signed minor units: + credits the account
    Column("settle_at", BigInteger, nullable=False),  # ns; cash counts as settled from then on
    Column("ref", String(64), nullable=False, default=""),  # e.g. the fill's id
    Column("description", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_ledger_account_created", "account_id", "created_at"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("client_order_id", String(128), nullable=False),
    Column("symbol", String(16), nullable=False),
    Column("side", String(4), nullable=False),
    Column("order_type", String(24), nullable=False),
    Column("time_in_force", String(4), nullable=False),
    Column("order_class", String(8), nullable=False),  # simple | bracket | oco | oto
    Column("leg_role", String(12), nullable=False, default=""),  # "" | take_profit | stop_loss
    Column("parent_id", String(36), nullable=True, index=True),
    Column("qty", BigInteger, nullable=False),
    Column("filled_qty", BigInteger, nullable=False, default=0),
    Column("filled_notional", BigInteger, nullable=False, default=0),  # sum(qty * price ticks)
    Column("limit_price", BigInteger, nullable=True),  # ticks
    Column("stop_price", BigInteger, nullable=True),  # ticks
    Column("trail_price", BigInteger, nullable=True),  # ticks
    Column("trail_percent_bps", BigInteger, nullable=True),
    Column("status", String(20), nullable=False),
    Column("extended_hours", Boolean, nullable=False, default=False),
    Column("hold", BigInteger, nullable=False, default=0),  # buying power reserved, minor units
    Column("venue_order_id", BigInteger, nullable=True),
    Column("replaces", String(36), nullable=True),
    Column("replaced_by", String(36), nullable=True),
    Column("reject_code", Integer, nullable=True),
    Column("reject_reason", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("submitted_at", BigInteger, nullable=True),
    Column("filled_at", BigInteger, nullable=True),
    Column("canceled_at", BigInteger, nullable=True),
    Column("expired_at", BigInteger, nullable=True),
    Column("failed_at", BigInteger, nullable=True),
    Column("replaced_at", BigInteger, nullable=True),
    UniqueConstraint("account_id", "client_order_id", name="uq_orders_account_client_order_id"),
    Index("ix_orders_account_created", "account_id", "created_at"),
)

fills = Table(
    "fills",
    metadata,
    Column("id", String(64), primary_key=True),  # "<venue trade id>-<side>"
    Column("order_id", String(36), ForeignKey("orders.id"), nullable=False, index=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("symbol", String(16), nullable=False),
    Column("side", String(4), nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("price", BigInteger, nullable=False),  # ticks
    Column("leaves_qty", BigInteger, nullable=False),
    Column("venue_seq", BigInteger, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Index("ix_fills_account_ts", "account_id", "ts"),
)

positions = Table(
    "positions",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("symbol", String(16), primary_key=True),
    Column("qty", BigInteger, nullable=False),  # signed: negative is short
    Column("cost_basis", BigInteger, nullable=False),  # signed ticks*shares of the open qty
    Column("realized_pnl", BigInteger, nullable=False),  # ticks*shares, life to date
    # The day sub-ledger: cost basis restarted at the prior close each trading day, so that
    # intraday P&L = qty * price - day_cost_basis + day_realized.
    Column("day_cost_basis", BigInteger, nullable=False),
    Column("day_realized", BigInteger, nullable=False),
    Column("day", Integer, nullable=False),  # the trading day (YYYYMMDD) the day_* refer to
    Column("updated_at", BigInteger, nullable=False),
)

watchlists = Table(
    "watchlists",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("account_id", "name", name="uq_watchlists_account_name"),
)

watchlist_assets = Table(
    "watchlist_assets",
    metadata,
    Column("watchlist_id", String(36), ForeignKey("watchlists.id"), primary_key=True),
    Column("symbol", String(16), primary_key=True),
    Column("position", Integer, nullable=False),
)

restricted_symbols = Table(
    "restricted_symbols",
    metadata,
    Column("symbol", String(16), primary_key=True),
    Column("reason", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
)

equity_history = Table(
    "equity_history",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("ts", BigInteger, primary_key=True),
    Column("equity", BigInteger, nullable=False),  # minor units
    Column("profit_loss", BigInteger, nullable=False),  # minor units since the previous point
)

marks = Table(
    "marks",
    metadata,
    # e.g. "venue:TFEX" -> the last venue event sequence number the broker has applied
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

account_configurations = Table(
    "account_configurations",
    metadata,
    # an account's settings in Alpaca's shape (GET/PATCH /v2/account/configurations)
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("settings", Text, nullable=False),  # a JSON object
    Column("updated_at", BigInteger, nullable=False),
)

opening_equity = Table(
    "opening_equity",
    metadata,
    # an account's equity when the trading day began: the previous session's close (Alpaca's
    # last_equity), stored at the day roll so that a restart keeps it
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("day", Integer, primary_key=True),  # the trading day, YYYYMMDD
    Column("equity", BigInteger, nullable=False),  # minor units
)


def actor_columns() -> list[Column[Any]]:
    """The columns of ``core.actor.ACTOR_COLUMNS``: who, with which credential, from where, in
    which request (fresh objects for each table)."""
    return [
        Column("actor_principal", String(64), nullable=False),  # user id, or "system"
        Column("actor_role", String(16), nullable=False),
        Column("credential_kind", String(16), nullable=False),  # api_key | token | fix_session...
        Column("credential_id", String(64), nullable=False),  # key id, token jti, CompID, component
        Column("source_address", String(64), nullable=False),  # "" for the system
        Column("source_port", Integer, nullable=False),  # 0 for the system
        Column("request_id", String(128), nullable=False),
    ]


order_events = Table(
    "order_events",
    metadata,
    # The order's history: one row per event the broker recorded (submitted, cancel and replace
    # requested, the venue's answers, fills, expiries, contingent legs released), with its actor.
    Column("id", String(36), primary_key=True),
    Column("seq", BigInteger, nullable=False),  # recording order within the broker
    Column("order_id", String(36), nullable=False),
    Column("account_id", String(36), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("detail", Text, nullable=False),  # a JSON object
    *actor_columns(),
    Index("ix_order_events_order_seq", "order_id", "seq"),
    Index("ix_order_events_principal_ts", "actor_principal", "ts"),
)

admin_actions = Table(
    "admin_actions",
    metadata,
    # Administrative records: operator actions on the venue, cash movements, KYC decisions,
    # customers and accounts, users, API keys, trading blocks and the restricted list.
    Column("id", String(36), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),  # e.g. venue.halt, cash.deposit, user.create
    Column("target", String(128), nullable=False),  # what it acted on: symbol, account, user...
    Column("detail", Text, nullable=False),  # a JSON object
    *actor_columns(),
    Index("ix_admin_actions_ts", "ts"),
    Index("ix_admin_actions_principal_ts", "actor_principal", "ts"),
    Index("ix_admin_actions_kind_ts", "kind", "ts"),
)
