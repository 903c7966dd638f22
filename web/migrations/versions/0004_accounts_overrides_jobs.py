"""accounts that hold, grading tools, background work: server-side sessions, forced password
changes, score overrides with their audit trail, revocable extensions kept beside new grants,
background jobs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Names for unnamed unique constraints as a SQLite batch copy reflects them.
UNIQUE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
PG_UNIQUE = "extensions_user_id_assignment_key"  # PostgreSQL's name for 0001's constraint

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _extensions_unique_name() -> str:
    """The name of the unique constraint on extensions (user_id, assignment), as the batch copy sees it."""
    for uc in sa.inspect(op.get_bind()).get_unique_constraints("extensions"):
        if uc["column_names"] == ["user_id", "assignment"]:
            return uc["name"] or "uq_extensions_user_id"  # unnamed on SQLite: UNIQUE_NAMES names it
    raise RuntimeError("extensions has no unique constraint on (user_id, assignment) to replace")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("users", schema=None) as batch_op:
        # Existing accounts keep the password they have: false for every row already there.
        batch_op.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True))
    # One extension per (student, assignment) becomes one *in force*: a revoked one stays beside
    # a new grant. 0001's unique constraint has no name of its own: PostgreSQL's default name, and
    # on SQLite a name given by a naming convention as the batch copy reflects the table.
    unique = _extensions_unique_name()
    with op.batch_alter_table("extensions", schema=None, naming_convention=UNIQUE_NAMES) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("revoked_by", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_extensions_revoked_by_users", "users", ["revoked_by"], ["id"],
                                    ondelete="SET NULL")
        batch_op.drop_constraint(unique, type_="unique")
    live = sa.text("revoked_at IS NULL")
    op.create_index("uq_extensions_live", "extensions", ["user_id", "assignment"], unique=True,
                    sqlite_where=live, postgresql_where=live)
    op.create_table("user_sessions",
                    sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("user_id", sa.Integer(), nullable=False),
                    sa.Column("token_hash", sa.String(length=64), nullable=False),
                    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
                    sa.Column("address", sa.String(length=64), nullable=False),
                    sa.Column("user_agent", sa.String(length=200), nullable=False),
                    sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
                    sa.PrimaryKeyConstraint("id"),
                    sa.UniqueConstraint("token_hash"))
    op.create_index(op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"], unique=False)
    op.create_table("score_overrides",
                    sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("user_id", sa.Integer(), nullable=False),
                    sa.Column("assignment", sa.String(length=200), nullable=False),
                    sa.Column("score", sa.Float(), nullable=True),
                    sa.Column("comment", sa.Text(), nullable=False),
                    sa.Column("by_id", sa.Integer(), nullable=True),
                    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
                    sa.ForeignKeyConstraint(["by_id"], ["users.id"], ondelete="SET NULL"),
                    sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
                    sa.PrimaryKeyConstraint("id"))
    op.create_index(op.f("ix_score_overrides_user_id"), "score_overrides", ["user_id"], unique=False)
    op.create_index(op.f("ix_score_overrides_assignment"), "score_overrides", ["assignment"], unique=False)
    op.create_table("background_jobs",
                    sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("kind", sa.String(length=32), nullable=False),
                    sa.Column("state", sa.String(length=16), nullable=False),
                    sa.Column("total", sa.Integer(), nullable=False),
                    sa.Column("done", sa.Integer(), nullable=False),
                    sa.Column("message", sa.Text(), nullable=False),
                    sa.Column("result", sa.JSON(), nullable=True),
                    sa.Column("created_by", sa.Integer(), nullable=True),
                    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
                    sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL"),
                    sa.PrimaryKeyConstraint("id"))


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("background_jobs")
    op.drop_index(op.f("ix_score_overrides_assignment"), table_name="score_overrides")
    op.drop_index(op.f("ix_score_overrides_user_id"), table_name="score_overrides")
    op.drop_table("score_overrides")
    op.drop_index(op.f("ix_user_sessions_user_id"), table_name="user_sessions")
    op.drop_table("user_sessions")
    op.drop_index("uq_extensions_live", table_name="extensions")
    # Back to one row per (student, assignment): the newest of each stays (revoked ones go).
    op.execute("DELETE FROM extensions WHERE id NOT IN "
               "(SELECT MAX(id) FROM extensions GROUP BY user_id, assignment)")
    with op.batch_alter_table("extensions", schema=None) as batch_op:
        batch_op.drop_constraint("fk_extensions_revoked_by_users", type_="foreignkey")
        batch_op.drop_column("revoked_by")
        batch_op.drop_column("revoked_at")
        batch_op.create_unique_constraint(PG_UNIQUE, ["user_id", "assignment"])
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("password_changed_at")
        batch_op.drop_column("must_change_password")
