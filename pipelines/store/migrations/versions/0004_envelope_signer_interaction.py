"""envelope signers: the interaction of each signer (sign, approve, receive_copy)

The tenant's signer chain says, per role, whether the person signs, approves (DocuSign certified
delivery, Clicksign approval role) or only receives a copy (DocuSign carbon copy, Clicksign signature
watcher). Back-sync needs it to end the row as signed, approved or copy_delivered, and the notifier to
leave copy recipients out of the chain. Existing rows were all sent as signers: ``sign``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("envelope_signers") as batch:
        batch.add_column(sa.Column("interaction", sa.String(20), nullable=False, server_default="sign"))


def downgrade() -> None:
    with op.batch_alter_table("envelope_signers") as batch:
        batch.drop_column("interaction")
