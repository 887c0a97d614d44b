"""pad trust chain: pairings confirmed by fingerprint, pad last seen, rate-later issuance log

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-03 09:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pad_pairings", schema=None) as batch_op:
        # The key a pad registered with the one-time token waits here (not bound) until a
        # supervisor confirms its fingerprint on their own device.
        batch_op.add_column(sa.Column("pad_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("public_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("confirmed_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("confirmed_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("rejected_ms", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("pads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen_ms", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("rating_challenges", schema=None) as batch_op:
        batch_op.create_index("ix_rating_challenges_issued", ["issued_ms"], unique=False)
    op.create_table(
        "rate_later_issues",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("issued_to", sa.String(length=16), nullable=False),
        sa.Column("staff_no", sa.String(length=32), nullable=True),
        sa.Column("pad_id", sa.String(length=64), nullable=True),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_later_issues")),
    )
    with op.batch_alter_table("rate_later_issues", schema=None) as batch_op:
        batch_op.create_index("ix_rate_later_issues_case", ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rate_later_issues", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_later_issues_case")
    op.drop_table("rate_later_issues")
    with op.batch_alter_table("rating_challenges", schema=None) as batch_op:
        batch_op.drop_index("ix_rating_challenges_issued")
    with op.batch_alter_table("pads", schema=None) as batch_op:
        batch_op.drop_column("last_seen_ms")
    with op.batch_alter_table("pad_pairings", schema=None) as batch_op:
        batch_op.drop_column("rejected_ms")
        batch_op.drop_column("confirmed_by")
        batch_op.drop_column("confirmed_ms")
        batch_op.drop_column("public_key")
        batch_op.drop_column("pad_id")
