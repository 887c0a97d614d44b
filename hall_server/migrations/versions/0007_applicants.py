"""the applicant on a case: encrypted applicant records with keyed-hash indexes, access audit

Revision ID: 0007
Revises: 0002
Create Date: 2026-12-03 10:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_applicants",
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("data_enc", sa.Text(), nullable=False),
        sa.Column("id_hash", sa.String(length=64), nullable=True),
        sa.Column("phone_hash", sa.String(length=64), nullable=True),
        sa.Column("green_suggested", sa.Boolean(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_applicants_case_id_cases")),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_applicants")),
    )
    with op.batch_alter_table("case_applicants", schema=None) as batch_op:
        batch_op.create_index("ix_case_applicants_id_hash", ["id_hash"], unique=False)
        batch_op.create_index("ix_case_applicants_phone_hash", ["phone_hash"], unique=False)
    op.create_table(
        "applicant_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("staff_no", sa.String(length=32), nullable=False),
        sa.Column("window_no", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applicant_audit")),
    )
    with op.batch_alter_table("applicant_audit", schema=None) as batch_op:
        batch_op.create_index("ix_applicant_audit_case", ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("applicant_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_applicant_audit_case")
    op.drop_table("applicant_audit")
    with op.batch_alter_table("case_applicants", schema=None) as batch_op:
        batch_op.drop_index("ix_case_applicants_phone_hash")
        batch_op.drop_index("ix_case_applicants_id_hash")
    op.drop_table("case_applicants")
