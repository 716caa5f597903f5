"""admin users' session epoch: sessions that end on the server

Revision ID: d4b7e2a91c63
Revises: 7d3e91c4b8a0
Create Date: 2026-11-23 10:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d4b7e2a91c63"
down_revision = "7d3e91c4b8a0"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("admin_users") as batch:
        batch.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    with op.batch_alter_table("admin_users") as batch:
        batch.drop_column("session_epoch")
