"""region rollups: consent counts per day, regime and country

Revision ID: 0b7e4d2c9a61
Revises: f3c9a7d2b514
Create Date: 2026-12-06 12:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0b7e4d2c9a61"
down_revision = "f3c9a7d2b514"
branch_labels = None
depends_on = None

COUNTS = ("records", "accept_all", "reject_all", "custom", "withdraw", "opt_out",
          "functional", "analytics", "advertising", "gpc")  # fmt: skip


def upgrade():
    op.create_table(
        "region_rollups",
        sa.Column("site", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("regime", sa.String(length=16), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.PrimaryKeyConstraint("site", "day", "regime", "country", name=op.f("pk_region_rollups")),
    )
    # The day roll-ups are a cache of the log: emptied, every day is counted again, by region too.
    op.execute("DELETE FROM daily_rollups")


def downgrade():
    op.drop_table("region_rollups")
