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
down_revision = "0002"
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
    if bind.dialect.name == "postgresql":
        # Numbering at COMMIT, inside the server: rows are inserted with a temporary negative id;
        # a deferred constraint trigger (it runs while the transaction commits) bumps the counter
        # row and gives this transaction's rows their real ids. The counter's row lock is thus
        # held for microseconds, never across a client round trip.
        op.execute(_NUMBER_FN)
        op.execute(
            "CREATE CONSTRAINT TRIGGER events_number_at_commit AFTER INSERT ON events "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id < 0) "
            "EXECUTE FUNCTION hall_events_number()"
        )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_at_ms", ["at_ms"], unique=False)


_NUMBER_FN = """
CREATE OR REPLACE FUNCTION hall_events_number() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    last bigint;
BEGIN
    -- Fired once per inserted row; the first firing numbers every row of this transaction
    -- (the only negative ids it can see: other transactions' are invisible until they commit,
    -- and committed ones were numbered), the later firings find nothing left.
    SELECT count(*) INTO n FROM events WHERE id < 0;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    UPDATE event_counter SET last_id = last_id + n WHERE id = 1 RETURNING last_id INTO last;
    -- Temporary ids are -nextval(...): the later an event was emitted, the lower its id.
    UPDATE events e SET id = last - n + r.rn
      FROM (SELECT id AS tmp, row_number() OVER (ORDER BY id DESC) AS rn FROM events WHERE id < 0) r
     WHERE e.id = r.tmp;
    PERFORM pg_notify('hall_events', last::text);
    RETURN NULL;
END
$$
"""


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_number_at_commit ON events")
        op.execute("DROP FUNCTION IF EXISTS hall_events_number()")
    if bind.dialect.name == "postgresql":
        # Back to the sequence: continue after the counter so no id is handed out twice.
        seq = bind.execute(sa.text("SELECT pg_get_serial_sequence('events', 'id')")).scalar()
        last = bind.execute(sa.text("SELECT last_id FROM event_counter WHERE id = 1")).scalar()
        if seq and last:
            bind.execute(sa.text("SELECT setval(CAST(:s AS regclass), :v)"), {"s": seq, "v": int(last)})
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_at_ms")
    op.drop_table("event_counter")
