"""record regions: the regime, region and Sec-GPC each record was made under; opt-out counts

Revision ID: f3c9a7d2b514
Revises: e5a8c3f1d270
Create Date: 2026-12-06 10:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f3c9a7d2b514"
down_revision = "e5a8c3f1d270"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN (no table copy): nullable, so every existing record keeps its content and hash.
    # On a partitioned log PostgreSQL adds the columns to every partition.
    op.add_column("consent_records", sa.Column("regime", sa.String(length=16), nullable=True))
    op.add_column("consent_records", sa.Column("region", sa.String(length=8), nullable=True))
    op.add_column("consent_records", sa.Column("sec_gpc", sa.Boolean(), nullable=True))
    op.add_column("daily_rollups", sa.Column("opt_out", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    op.drop_column("daily_rollups", "opt_out")
    op.drop_column("consent_records", "sec_gpc")
    op.drop_column("consent_records", "region")
    op.drop_column("consent_records", "regime")
