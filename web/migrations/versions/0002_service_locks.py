"""service locks: one sweep at a time across the cluster

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table("service_locks",
                    sa.Column("name", sa.String(length=64), nullable=False),
                    sa.Column("owner", sa.String(length=255), nullable=True),
                    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
                    sa.PrimaryKeyConstraint("name"))


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("service_locks")
