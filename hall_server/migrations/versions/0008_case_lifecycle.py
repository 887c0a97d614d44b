"""case lifecycle after the window (deadline, conclusion 办结, on-the-spot) and entered ratings

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as b:
        b.add_column(sa.Column("time_limit_days", sa.Integer(), nullable=True))
        b.add_column(sa.Column("deadline_day", sa.String(length=10), nullable=True))
        b.add_column(sa.Column("conclusion", sa.String(length=16), nullable=True))
        b.add_column(sa.Column("concluded_day", sa.String(length=10), nullable=True))
        b.add_column(sa.Column("concluded_ms", sa.BigInteger(), nullable=True))
        b.add_column(sa.Column("concluded_by", sa.String(length=32), nullable=True))
        b.add_column(sa.Column("on_the_spot", sa.Boolean(), nullable=True))
        b.create_index("ix_cases_open_deadline", ["conclusion", "deadline_day"], unique=False)
    # The old constant: on_time was true for every case closed at the window. It measured
    # nothing, so it is cleared; cases closed before 0008 have no deadline and count nowhere.
    op.execute("UPDATE cases SET on_time = NULL")
    with op.batch_alter_table("ratings", schema=None) as b:
        b.add_column(sa.Column("entered_by", sa.String(length=32), nullable=True))
        b.add_column(sa.Column("form_document_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ratings", schema=None) as b:
        b.drop_column("form_document_id")
        b.drop_column("entered_by")
    with op.batch_alter_table("cases", schema=None) as b:
        b.drop_index("ix_cases_open_deadline")
        for c in ("on_the_spot", "concluded_by", "concluded_ms", "concluded_day", "conclusion",
                  "deadline_day", "time_limit_days"):
            b.drop_column(c)
