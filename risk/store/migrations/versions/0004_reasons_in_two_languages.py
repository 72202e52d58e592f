"""Reasons in Russian and in English beside ``reasons`` (trucks, declarations, items).

Existing rows hold one language: it is copied into the column its script names (Cyrillic:
``reasons_ru``, else ``reasons_en``); the other stays empty, and pages fall back to it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("trucks", "declarations", "items")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
BATCH = 5000


def upgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name, schema=None) as batch_op:
            for column in ("reasons_ru", "reasons_en"):
                # Added with a default for the rows already there; the model sets it from then.
                batch_op.add_column(
                    sa.Column(column, sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
                )
        with op.batch_alter_table(name, schema=None) as batch_op:
            for column in ("reasons_ru", "reasons_en"):
                batch_op.alter_column(column, server_default=None)
        _copy_by_script(name)


def _copy_by_script(name: str) -> None:
    """Each row's ``reasons`` into ``reasons_ru`` or ``reasons_en``, by their script."""
    table = sa.table(
        name,
        sa.column("id", sa.Integer()),
        sa.column("reasons", sa.JSON()),
        sa.column("reasons_ru", sa.JSON()),
        sa.column("reasons_en", sa.JSON()),
    )
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(table.c.id, table.c.reasons)
            .where(table.c.id > last)
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1][0]
        for row_id, reasons in rows:
            if not reasons:
                continue
            russian = any(_CYRILLIC.search(str(text)) for text in reasons)
            column = "reasons_ru" if russian else "reasons_en"
            connection.execute(
                table.update().where(table.c.id == row_id).values({column: list(reasons)})
            )


def downgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_column("reasons_en")
            batch_op.drop_column("reasons_ru")
