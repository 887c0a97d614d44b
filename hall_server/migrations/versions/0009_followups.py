"""bad-rating follow-ups, appeals, the provincial push outbox; ratings.excluded_from_figures

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 12:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("excluded_from_figures", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table(
        "followups",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("rating_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("window_no", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_ms", sa.BigInteger(), nullable=False),
        sa.Column("due_day", sa.String(length=10), nullable=False),
        sa.Column("assignee", sa.String(length=32), nullable=True),
        sa.Column("valid", sa.Boolean(), nullable=True),
        sa.Column("callback_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("reached", sa.Boolean(), nullable=True),
        sa.Column("closed_ms", sa.BigInteger(), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["rating_id"], ["ratings.id"], name=op.f("fk_followups_rating_id_ratings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followups")),
        sa.UniqueConstraint("rating_id", name=op.f("uq_followups_rating_id")),
    )
    with op.batch_alter_table("followups", schema=None) as batch_op:
        batch_op.create_index("ix_followups_state_due", ["state", "due_day"], unique=False)
        batch_op.create_index("ix_followups_window", ["window_no"], unique=False)
    op.create_table(
        "followup_steps",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("followup_id", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_steps")),
    )
    with op.batch_alter_table("followup_steps", schema=None) as batch_op:
        batch_op.create_index("ix_followup_steps_followup", ["followup_id"], unique=False)
    op.create_table(
        "appeals",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("rating_id", sa.String(length=64), nullable=False),
        sa.Column("window_no", sa.Integer(), nullable=False),
        sa.Column("filed_by", sa.String(length=32), nullable=False),
        sa.Column("filed_ms", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_ms", sa.BigInteger(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False, server_default=""),
        sa.ForeignKeyConstraint(["rating_id"], ["ratings.id"], name=op.f("fk_appeals_rating_id_ratings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeals")),
        sa.UniqueConstraint("rating_id", name=op.f("uq_appeals_rating_id")),
    )
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.create_index("ix_appeals_window_state", ["window_no", "state"], unique=False)
    op.create_table(
        "rating_push_outbox",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=False),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("sent_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rating_push_outbox")),
    )
    with op.batch_alter_table("rating_push_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_rating_push_outbox_due", ["sent_ms", "next_attempt_ms"], unique=False)


def downgrade() -> None:
    op.drop_table("rating_push_outbox")
    op.drop_table("appeals")
    op.drop_table("followup_steps")
    op.drop_table("followups")
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_column("excluded_from_figures")
