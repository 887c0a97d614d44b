"""evaluator pads: pairings, paired pads (public keys, counters), pad flags; challenges close

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pad_pairings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("window_no", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("used_ms", sa.BigInteger(), nullable=True),
        sa.Column("code_attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pad_pairings")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_pad_pairings_token_hash")),
    )
    with op.batch_alter_table("pad_pairings", schema=None) as batch_op:
        batch_op.create_index("ix_pad_pairings_window", ["window_no"], unique=False)
    op.create_table(
        "pads",
        sa.Column("pad_id", sa.String(length=64), nullable=False),
        sa.Column("window_no", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("paired_ms", sa.BigInteger(), nullable=False),
        sa.Column("paired_by", sa.String(length=32), nullable=False),
        sa.Column("unpaired_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_counter", sa.BigInteger(), nullable=False),
        sa.Column("gaps", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("pad_id", name=op.f("pk_pads")),
    )
    with op.batch_alter_table("pads", schema=None) as batch_op:
        batch_op.create_index("ix_pads_window", ["window_no"], unique=False)
    op.create_table(
        "pad_flags",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("pad_id", sa.String(length=64), nullable=False),
        sa.Column("window_no", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("rating_id", sa.String(length=64), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pad_flags")),
    )
    with op.batch_alter_table("rating_challenges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rating_challenges", schema=None) as batch_op:
        batch_op.drop_column("closed_ms")
    op.drop_table("pad_flags")
    with op.batch_alter_table("pads", schema=None) as batch_op:
        batch_op.drop_index("ix_pads_window")
    op.drop_table("pads")
    with op.batch_alter_table("pad_pairings", schema=None) as batch_op:
        batch_op.drop_index("ix_pad_pairings_window")
    op.drop_table("pad_pairings")
