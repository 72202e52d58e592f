"""Initial store: accounts, published scores, inspections, importer records, audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=160), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("crossing", sa.String(length=64), nullable=True),
        sa.Column("truck_id", sa.String(length=96), nullable=True),
        sa.Column("truck_pk", sa.Integer(), nullable=True),
        sa.Column("lane_before", sa.String(length=8), nullable=True),
        sa.Column("lane_after", sa.String(length=8), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_truck_pk"), ["truck_pk"], unique=False)

    op.create_table(
        "importer_records",
        sa.Column("importer_id", sa.String(length=64), nullable=False),
        sa.Column("declarations", sa.Integer(), nullable=False),
        sa.Column("inspected", sa.Integer(), nullable=False),
        sa.Column("violations", sa.Integer(), nullable=False),
        sa.Column("extra_duty_usd", sa.Float(), nullable=False),
        sa.Column("last_violation_at", sa.DateTime(), nullable=True),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("importer_id", name=op.f("pk_importer_records")),
    )
    op.create_table(
        "score_runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("model_run_id", sa.String(length=64), nullable=True),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.Column("published_by", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("trucks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_score_runs")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "trucks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("crossing", sa.String(length=64), nullable=False),
        sa.Column("truck_id", sa.String(length=96), nullable=False),
        sa.Column("vehicle_plate", sa.String(length=32), nullable=True),
        sa.Column("arrived_at", sa.DateTime(), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("risk", sa.Float(), nullable=False),
        sa.Column("duty_at_risk_usd", sa.Float(), nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("model_lane", sa.String(length=8), nullable=False),
        sa.Column("selection", sa.String(length=16), nullable=False),
        sa.Column("lane", sa.String(length=8), nullable=False),
        sa.Column("decided_by", sa.String(length=16), nullable=False),
        sa.Column("random_pick", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lane_set_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["score_runs.run_id"], name=op.f("fk_trucks_run_id_score_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trucks")),
    )
    with op.batch_alter_table("trucks", schema=None) as batch_op:
        batch_op.create_index("ix_trucks_crossing_truck_id", ["crossing", "truck_id"], unique=False)
        batch_op.create_index("ix_trucks_queue", ["crossing", "status", "lane"], unique=False)

    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_table(
        "declarations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("truck_pk", sa.Integer(), nullable=False),
        sa.Column("declaration_id", sa.String(length=64), nullable=False),
        sa.Column("declared_at", sa.DateTime(), nullable=False),
        sa.Column("importer_id", sa.String(length=64), nullable=False),
        sa.Column("importer_registered_on", sa.Date(), nullable=True),
        sa.Column("declarant_id", sa.String(length=64), nullable=True),
        sa.Column("procedure", sa.String(length=16), nullable=False),
        sa.Column("risk", sa.Float(), nullable=False),
        sa.Column("duty_at_risk_usd", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["truck_pk"],
            ["trucks.id"],
            name=op.f("fk_declarations_truck_pk_trucks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_declarations")),
        sa.UniqueConstraint("declaration_id", name=op.f("uq_declarations_declaration_id")),
    )
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_declarations_importer_id"), ["importer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_declarations_truck_pk"), ["truck_pk"], unique=False)

    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("truck_pk", sa.Integer(), nullable=False),
        sa.Column("officer", sa.String(length=64), nullable=False),
        sa.Column("lane", sa.String(length=8), nullable=False),
        sa.Column("selection", sa.String(length=16), nullable=False),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.Column("declaration_id", sa.String(length=64), nullable=True),
        sa.Column("extra_duty_usd", sa.Float(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["truck_pk"],
            ["trucks.id"],
            name=op.f("fk_inspections_truck_pk_trucks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspections")),
    )
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inspections_recorded_at"), ["recorded_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_inspections_truck_pk"), ["truck_pk"], unique=False)

    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("declaration_pk", sa.Integer(), nullable=False),
        sa.Column("item_no", sa.Integer(), nullable=False),
        sa.Column("hs_code", sa.String(length=10), nullable=False),
        sa.Column("goods_description", sa.Text(), nullable=True),
        sa.Column("origin_country", sa.String(length=2), nullable=False),
        sa.Column("dispatch_country", sa.String(length=2), nullable=True),
        sa.Column("net_mass_kg", sa.Float(), nullable=True),
        sa.Column("gross_mass_kg", sa.Float(), nullable=True),
        sa.Column("customs_value_usd", sa.Float(), nullable=False),
        sa.Column("duty_rate_pct", sa.Float(), nullable=True),
        sa.Column("risk", sa.Float(), nullable=False),
        sa.Column("duty_at_risk_usd", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_pk"],
            ["declarations.id"],
            name=op.f("fk_items_declaration_pk_declarations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("declaration_pk", "item_no", name="uq_items_item"),
    )

    _protect_audit_log()


def downgrade() -> None:
    _unprotect_audit_log()
    op.drop_table("items")
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inspections_truck_pk"))
        batch_op.drop_index(batch_op.f("ix_inspections_recorded_at"))

    op.drop_table("inspections")
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_declarations_truck_pk"))
        batch_op.drop_index(batch_op.f("ix_declarations_importer_id"))

    op.drop_table("declarations")
    op.drop_table("web_sessions")
    with op.batch_alter_table("trucks", schema=None) as batch_op:
        batch_op.drop_index("ix_trucks_queue")
        batch_op.drop_index("ix_trucks_crossing_truck_id")

    op.drop_table("trucks")
    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_table("score_runs")
    op.drop_table("importer_records")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_truck_pk"))
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))

    op.drop_table("audit_log")


# The audit log is append-only in the database too: an UPDATE or DELETE is refused whoever
# sends it (the console never does; a person with a SQL prompt might).
_PG_FUNCTION = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END;
$$
"""


def _protect_audit_log() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    elif dialect == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{operation.lower()} BEFORE {operation} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: {operation} refused'); END"
            )


def _unprotect_audit_log() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
