"""Watch lists: supervisors' hard rules, kept in the store (changed and retired, never deleted).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "watch_list_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("lane", sa.String(length=8), nullable=False),
        sa.Column("reason_en", sa.Text(), nullable=False),
        sa.Column("reason_ru", sa.Text(), nullable=False),
        sa.Column("importer_ids", sa.JSON(), nullable=False),
        sa.Column("hs_prefixes", sa.JSON(), nullable=False),
        sa.Column("origin_countries", sa.JSON(), nullable=False),
        sa.Column("dispatch_countries", sa.JSON(), nullable=False),
        sa.Column("crossings", sa.JSON(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("changed_by", sa.String(length=64), nullable=False),
        sa.Column("retired_at", sa.DateTime(), nullable=True),
        sa.Column("retired_by", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_list_entries")),
        sa.UniqueConstraint("name", name=op.f("uq_watch_list_entries_name")),
    )
    with op.batch_alter_table("watch_list_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_watch_list_entries_retired_at"), ["retired_at"], unique=False
        )
    _refuse_deletes()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS watch_list_no_delete ON watch_list_entries")
        op.execute("DROP FUNCTION IF EXISTS watch_list_no_delete()")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS watch_list_no_delete")
    with op.batch_alter_table("watch_list_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_watch_list_entries_retired_at"))
    op.drop_table("watch_list_entries")


# An entry is retired, never deleted: the audit log names it, and a deleted rule would leave
# entries that point at nothing. The database refuses DELETE whoever sends it.
_PG_FUNCTION = """
CREATE FUNCTION watch_list_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'watch list entries are retired, never deleted: % refused', TG_OP;
END;
$$
"""


def _refuse_deletes() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER watch_list_no_delete BEFORE DELETE ON watch_list_entries "
            "FOR EACH ROW EXECUTE FUNCTION watch_list_no_delete()"
        )
    elif dialect == "sqlite":
        op.execute(
            "CREATE TRIGGER watch_list_no_delete BEFORE DELETE ON watch_list_entries BEGIN "
            "SELECT RAISE(ABORT, 'watch list entries are retired, never deleted: DELETE refused');"
            " END"
        )
