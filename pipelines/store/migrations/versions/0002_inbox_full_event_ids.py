"""inbox: full event ids beside a digest key, unbounded event types

Event ids longer than the key column were cut to 200 characters, so two distinct ids with the same
first 200 collapsed into one row; event types over 100 characters could not be stored on PostgreSQL.
From here on ``inbox.event_id`` is the dedupe key (the id itself up to 200 characters, else
``sha256:<hex>`` of it), ``original_event_id`` keeps the id in full, and ``event_type`` is text.

Existing rows get their key as their original id (an id cut before this revision stays cut; a
redelivery of one within the dedupe window is stored once more, which processing absorbs). The column
stays nullable so that a gateway still on the previous revision can store deliveries while an upgrade
rolls out. SQLite rebuilds the table to change the column type (batch mode); PostgreSQL changes
``varchar(100)`` to ``text`` in place, without rewriting the table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("original_event_id", sa.Text(), nullable=True))
        batch_op.alter_column(
            "event_type", existing_type=sa.String(length=100), type_=sa.Text(), existing_nullable=True
        )
    op.execute("UPDATE inbox SET original_event_id = event_id WHERE original_event_id IS NULL")


def downgrade() -> None:
    # digest keys stay as they are (they fit the column); event types are cut back to 100 characters
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.alter_column(
            "event_type",
            existing_type=sa.Text(),
            type_=sa.String(length=100),
            existing_nullable=True,
            postgresql_using="left(event_type, 100)",
        )
        batch_op.drop_column("original_event_id")
