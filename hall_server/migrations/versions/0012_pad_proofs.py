"""pad proofs remembered by every server process: `pad_proofs` (one row per proof seen) and
`pads.newest_proof_ms` (the newest proof time, the floor for the replay window)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pad_proofs",
        sa.Column("pad_id", sa.String(length=64), nullable=False),
        sa.Column("pad_time", sa.BigInteger(), nullable=False),
        sa.Column("seen_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pad_id", "pad_time", name=op.f("pk_pad_proofs")),
    )
    with op.batch_alter_table("pad_proofs", schema=None) as batch_op:
        batch_op.create_index("ix_pad_proofs_seen", ["seen_ms"], unique=False)
    with op.batch_alter_table("pads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("newest_proof_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pads", schema=None) as batch_op:
        batch_op.drop_column("newest_proof_ms")
    with op.batch_alter_table("pad_proofs", schema=None) as batch_op:
        batch_op.drop_index("ix_pad_proofs_seen")
    op.drop_table("pad_proofs")
