"""server hardening: shared rate limits, idempotency keys per caller, hashed session ids, the
server's date of unsigned ratings, encrypted uploads

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 09:40:00
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _sid_hash(sid: str) -> str:
    # the same function as hall_server.security.session_key (kept here: a migration is frozen)
    return hashlib.sha256(sid.encode()).hexdigest()[:40]


def upgrade() -> None:
    # Rate limits shared by every server process (sign-in failures per staff number, per
    # address, hall-wide): one row per bucket, a fixed window from its first attempt.
    op.create_table(
        "rate_limits",
        sa.Column("bucket", sa.String(length=120), nullable=False),
        sa.Column("window_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_rate_limits")),
    )
    with op.batch_alter_table("rate_limits", schema=None) as batch_op:
        batch_op.create_index("ix_rate_limits_window_start", ["window_start_ms"], unique=False)
    # Sign-in attempts being checked right now (counted before the password check).
    op.create_table(
        "rate_pending",
        sa.Column("attempt", sa.String(length=32), nullable=False),
        sa.Column("bucket", sa.String(length=120), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("attempt", "bucket", name=op.f("pk_rate_pending")),
    )
    with op.batch_alter_table("rate_pending", schema=None) as batch_op:
        batch_op.create_index("ix_rate_pending_bucket_at", ["bucket", "at_ms"], unique=False)

    # Idempotency keys belong to a caller: (scope, key). Rows from before get the scope ""
    # that no caller has, so they are never replayed to anybody.
    with op.batch_alter_table("idempotency_keys", schema=None, recreate="always") as batch_op:
        batch_op.add_column(sa.Column("scope", sa.String(length=80), nullable=False, server_default=""))
        batch_op.drop_constraint("pk_idempotency_keys", type_="primary")
        batch_op.create_primary_key("pk_idempotency_keys", ["scope", "key"])

    # Session ids are stored hashed (the token carries the id itself) and sealed under the
    # server secret in `sid_sealed` (new sessions; sessions from before cannot be refreshed
    # and sign in again when their access token runs out).
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sid_sealed", sa.String(length=200), nullable=True))
    conn = op.get_bind()
    for (sid,) in conn.execute(sa.text("SELECT id FROM sessions")).all():
        h = _sid_hash(str(sid))
        conn.execute(sa.text("UPDATE sessions SET id = :h WHERE id = :s"), {"h": h, "s": sid})
        conn.execute(sa.text("UPDATE windows SET session_id = :h WHERE session_id = :s"), {"h": h, "s": sid})

    # The server dates unsigned ratings; what the desk claimed is kept apart.
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_rated_ms", sa.BigInteger(), nullable=True))

    # Uploads are stored encrypted: `stored_bytes` is the file's length at the committed offset.
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stored_bytes", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("encryption", sa.String(length=16), nullable=True))
    # An unfinished upload from before was stored in plain: it starts again (HEAD answers 0).
    conn.execute(sa.text('UPDATE uploads SET "offset" = 0 WHERE document_id IS NULL'))


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("encryption")
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_column("stored_bytes")
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_column("claimed_rated_ms")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("sid_sealed")
    op.execute("DELETE FROM idempotency_keys WHERE scope <> ''")
    with op.batch_alter_table("idempotency_keys", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint("pk_idempotency_keys", type_="primary")
        batch_op.create_primary_key("pk_idempotency_keys", ["key"])
        batch_op.drop_column("scope")
    with op.batch_alter_table("rate_pending", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_pending_bucket_at")
    op.drop_table("rate_pending")
    with op.batch_alter_table("rate_limits", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_limits_window_start")
    op.drop_table("rate_limits")
