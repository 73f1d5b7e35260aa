"""Actors on every change: the order history (``order_events``) and the administrative records
(``admin_actions``), each row with its actor (principal, role, credential kind and id, source
address and port, request id; ``core.actor``).

Two new tables only: the rows of earlier revisions are untouched. Orders placed before this
revision have no history rows (nobody recorded their actors, and none is invented here).

Revision ID: 0003_actors
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_actors"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _actor_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("actor_principal", sa.String(length=64), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("credential_kind", sa.String(length=16), nullable=False),
        sa.Column("credential_id", sa.String(length=64), nullable=False),
        sa.Column("source_address", sa.String(length=64), nullable=False),
        sa.Column("source_port", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "order_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        *_actor_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    op.create_index(
        op.f("ix_order_events_order_seq"), "order_events", ["order_id", "seq"], unique=False
    )
    op.create_index(
        op.f("ix_order_events_principal_ts"),
        "order_events",
        ["actor_principal", "ts"],
        unique=False,
    )
    op.create_table(
        "admin_actions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        *_actor_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_actions")),
    )
    op.create_index(op.f("ix_admin_actions_ts"), "admin_actions", ["ts"], unique=False)
    op.create_index(
        op.f("ix_admin_actions_principal_ts"),
        "admin_actions",
        ["actor_principal", "ts"],
        unique=False,
    )
    op.create_index(op.f("ix_admin_actions_kind_ts"), "admin_actions", ["kind", "ts"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_admin_actions_kind_ts"), table_name="admin_actions")
    op.drop_index(op.f("ix_admin_actions_principal_ts"), table_name="admin_actions")
    op.drop_index(op.f("ix_admin_actions_ts"), table_name="admin_actions")
    op.drop_table("admin_actions")
    op.drop_index(op.f("ix_order_events_principal_ts"), table_name="order_events")
    op.drop_index(op.f("ix_order_events_order_seq"), table_name="order_events")
    op.drop_table("order_events")
