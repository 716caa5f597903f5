"""idempotency keys of a partitioned consent log

Revision ID: 5c1e0f7a9d42
Revises: 108b6a2189a4
Create Date: 2026-11-22 01:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5c1e0f7a9d42"
down_revision = "108b6a2189a4"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "consent_event_keys",
        sa.Column("site", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", "event_id", name=op.f("pk_consent_event_keys")),
    )


def downgrade():
    op.drop_table("consent_event_keys")
