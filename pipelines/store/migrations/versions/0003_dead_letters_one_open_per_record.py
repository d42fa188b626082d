"""dead letters: one open letter per record (partial unique index), reason codes, failure counts

Writing a failure looked the record's open letter up first, with a query that read every open letter
of the tenant's flow: a run with 10,388 dead letters spent 70 of its 74 s on them. From here on the
store keeps one open letter per (tenant, flow, record_key) itself, with a unique index over the rows
whose status is ``open`` (SQLite and PostgreSQL both have partial indexes), and a failure is one upsert.

Before the index can exist, duplicate open letters (two writers of the previous release racing) are
closed: the newest of each record (latest ``updated_at``, then highest id) stays open, the others
become ``superseded``. ``reason_code`` (what failures group under: kind, field and the message with
its values taken out) is filled in for existing rows; ``failures`` counts how many times a record
failed while its letter was open (1 for existing rows). ``reason_code`` stays nullable so that a
process still on the previous revision can write letters while an upgrade rolls out.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("status = 'open'")
#: rows read and updated at a time while reason codes are filled in
CHUNK = 2000


def upgrade() -> None:
    # one statement on both backends (window functions: SQLite 3.25+, PostgreSQL)
    op.execute(
        "UPDATE dead_letters SET status = 'superseded' WHERE id IN ("
        " SELECT id FROM ("
        "  SELECT id, ROW_NUMBER() OVER (PARTITION BY tenant, flow, record_key"
        "   ORDER BY updated_at DESC, id DESC) AS newest_first"
        "  FROM dead_letters WHERE status = 'open'"
        " ) ranked WHERE newest_first > 1)"
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason_code", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("failures", sa.Integer(), server_default="1", nullable=False))
        batch_op.create_index(
            "uq_dead_letters_open_record",
            ["tenant", "flow", "record_key"],
            unique=True,
            sqlite_where=OPEN,
            postgresql_where=OPEN,
        )
    _fill_reason_codes()


def _fill_reason_codes() -> None:
    from pipelines.store.deadletters import reason_code_for

    bind = op.get_bind()
    rows = sa.table(
        "dead_letters",
        sa.column("id", sa.Integer()),
        sa.column("error_kind", sa.String()),
        sa.column("field", sa.String()),
        sa.column("reason", sa.Text()),
        sa.column("reason_code", sa.String()),
    )
    last = 0
    while True:
        chunk = bind.execute(
            sa.select(rows.c.id, rows.c.error_kind, rows.c.field, rows.c.reason)
            .where(rows.c.id > last, rows.c.reason_code.is_(None))
            .order_by(rows.c.id)
            .limit(CHUNK)
        ).all()
        if not chunk:
            return
        bind.execute(
            sa.update(rows).where(rows.c.id == sa.bindparam("row_id")).values(reason_code=sa.bindparam("code")),
            [
                {"row_id": row_id, "code": reason_code_for(kind or "error", field, reason or "")}
                for row_id, kind, field, reason in chunk
            ],
        )
        last = chunk[-1][0]


def downgrade() -> None:
    # superseded letters stay closed (the previous revision reads only open ones)
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index("uq_dead_letters_open_record", sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.drop_column("failures")
        batch_op.drop_column("reason_code")
