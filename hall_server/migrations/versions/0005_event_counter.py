"""event log in commit order: the `event_counter` row that numbers events at COMMIT
(PostgreSQL), and an index on events.at_ms for the 24 h pruning and `hall-server check-db`

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-03 09:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_counter")),
    )
    bind = op.get_bind()
    # Start past every id a desk may already hold as Last-Event-ID: the highest event id, or
    # on PostgreSQL the old sequence's position (ids of rolled-back or pruned events too).
    start = bind.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM events")).scalar() or 0
    if bind.dialect.name == "postgresql":
        seq = bind.execute(sa.text("SELECT pg_get_serial_sequence('events', 'id')")).scalar()
        if seq:
            called = bind.execute(sa.text(f"SELECT last_value, is_called FROM {seq}")).first()  # noqa: S608
            if called is not None and called[1]:
                start = max(int(start), int(called[0]))
    bind.execute(sa.text("INSERT INTO event_counter (id, last_id) VALUES (1, :s)"), {"s": int(start)})
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_at_ms", ["at_ms"], unique=False)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Back to the sequence: continue after the counter so no id is handed out twice.
        seq = bind.execute(sa.text("SELECT pg_get_serial_sequence('events', 'id')")).scalar()
        last = bind.execute(sa.text("SELECT last_id FROM event_counter WHERE id = 1")).scalar()
        if seq and last:
            bind.execute(sa.text("SELECT setval(CAST(:s AS regclass), :v)"), {"s": seq, "v": int(last)})
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_at_ms")
    op.drop_table("event_counter")
