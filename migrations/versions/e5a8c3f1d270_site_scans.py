"""site scans: the newest consent scan report of each site

Revision ID: e5a8c3f1d270
Revises: d4b7e2a91c63
Create Date: 2026-12-05 10:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e5a8c3f1d270"
down_revision = "d4b7e2a91c63"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "site_scans",
        sa.Column("site", sa.String(length=40), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_site_scans")),
    )


def downgrade():
    op.drop_table("site_scans")
