"""Merkle ledger: seals, tiles, signed heads and erasure events replace the HMAC checkpoints

Records get their leaf hash (SHA-256 over 0x00 and their canonical bytes,
which no longer hold the event_id) in ``record_hash``. The HMAC checkpoints
are dropped: the first seal after the upgrade puts every record then in the
log into the new tree, and its signed head covers them all. SQLite's record
ids become AUTOINCREMENT, so that an id is never given out twice.

Revision ID: 7d3e91c4b8a0
Revises: 5c1e0f7a9d42
Create Date: 2026-12-02 06:10:00.000000

"""

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "7d3e91c4b8a0"
down_revision = "5c1e0f7a9d42"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# The canonical record of this revision (consent.ledger.canonical), frozen here as it was.
FIELDS = (
    "site", "consent_id", "recorded_at", "action", "necessary", "functional", "analytics", "advertising",
    "revision", "inventory_hash", "language", "page_url", "ip", "user_agent", "gpc", "dnt",
)  # fmt: skip
BOOLEANS = {"necessary", "functional", "analytics", "advertising", "gpc", "dnt"}
BATCH = 5000


def _rehash(bind) -> None:
    if bind.dialect.name == "postgresql":
        moment = """to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
    else:
        moment = "substr(recorded_at, 1, 10) || 'T' || substr(recorded_at, 12, 12) || 'Z'"
    columns = ", ".join(moment if name == "recorded_at" else name for name in FIELDS)
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
    after = 0
    while True:
        rows = bind.execute(
            sa.text(f"SELECT id, {columns} FROM consent_records WHERE id > :after ORDER BY id LIMIT {BATCH}"),
            {"after": after},
        ).all()
        if not rows:
            return
        updates = []
        for row in rows:
            values = [bool(value) if name in BOOLEANS else value for name, value in zip(FIELDS, row[1:], strict=True)]
            digest = hashlib.sha256(b"\x00" + encoder.encode(values).encode()).hexdigest()
            updates.append({"id": row[0], "digest": digest})
        bind.execute(sa.text("UPDATE consent_records SET record_hash = :digest WHERE id = :id"), updates)
        after = rows[-1][0]


def upgrade():
    op.drop_table("ledger_checkpoints")
    op.create_table(
        "ledger_seals",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("site", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("first_index", sa.BigInteger(), nullable=False),
        sa.Column("leaf_count", sa.Integer(), nullable=False),
        sa.Column("after_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leaves", sa.LargeBinary(), nullable=False),
        sa.Column("labels", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_seals")),
        sa.UniqueConstraint("site", "seq", name=op.f("uq_ledger_seals_site")),
        sa.UniqueConstraint("site", "first_index", name="uq_ledger_seals_site_first_index"),
    )
    op.create_index("ix_ledger_seals_site_last_at", "ledger_seals", ["site", "last_at"])
    op.create_table(
        "ledger_tiles",
        sa.Column("site", sa.String(length=40), nullable=False),
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("site", "level", "idx", name=op.f("pk_ledger_tiles")),
    )
    op.create_table(
        "ledger_heads",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("site", sa.String(length=40), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_heads")),
        sa.UniqueConstraint("site", "tree_size", name=op.f("uq_ledger_heads_site")),
    )
    op.create_table(
        "ledger_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("site", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_events")),
    )
    op.create_index("ix_ledger_events_site", "ledger_events", ["site"])
    bind = op.get_bind()
    _rehash(bind)
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table(
            "consent_records", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ) as batch:
            batch.alter_column("id", existing_type=sa.Integer(), autoincrement=True)


def downgrade():
    raise NotImplementedError("the HMAC checkpoints cannot be rebuilt: restore the backup taken before the upgrade")
