"""idempotency keys: a retried API upload returns the first submission

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table("idempotency_keys",
                    sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("user_id", sa.Integer(), nullable=False),
                    sa.Column("key", sa.String(length=64), nullable=False),
                    sa.Column("request_hash", sa.String(length=64), nullable=False),
                    sa.Column("submission_id", sa.Integer(), nullable=False),
                    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
                    sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"], ondelete="CASCADE"),
                    sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
                    sa.PrimaryKeyConstraint("id"),
                    sa.UniqueConstraint("user_id", "key"))
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_keys_submission_id"), ["submission_id"],
                              unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_submission_id"))
    op.drop_table("idempotency_keys")
