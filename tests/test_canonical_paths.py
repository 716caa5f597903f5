"""Every path that hashes a record agrees, for awkward values (hypothesis), on SQLite and PostgreSQL.

Recording's record_hash (consent.ledger.canonical), the CSV and JSON Lines
exports read back by the file readers and by the multicore scan, the live
verify's SQL canonical encoding, and the live and offline verify themselves.
Records are inserted directly, so that the values are exactly those made here.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, text

from consent.ledger.canonical import record_hash
from consent.store.models import db
from consent.verify import offline
from consent.verify.file import ExportFile
from consent.verify.live import sql_canonical
from consent.verify.scan import scan_piece
from tests.support.export_files import export, insert_records, plain_record, run, seal, write_keys

# Any character the databases store (PostgreSQL refuses NUL in text; UTF-8 has no surrogates).
CHARACTERS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
AWKWARD = st.sampled_from(['"', ",", "\r\n", "\n", "\r", "'", "=", "\t", "\\", "é", "✓", "𝄞", "\u2028", "\x7f"])
FREE_TEXT = st.lists(st.one_of(AWKWARD, st.text(CHARACTERS, max_size=20)), max_size=30).map("".join)


def _user_agent(parts: tuple[str, int]) -> str:
    value, length = parts
    return (value * (length // max(len(value), 1) + 1))[:length] if length else value


RECORD = st.fixed_dictionaries(
    {
        "page_url": FREE_TEXT.map(lambda value: "https://shop.example/" + value),
        "user_agent": st.one_of(FREE_TEXT, st.tuples(st.text(CHARACTERS, min_size=1), st.just(512)).map(_user_agent)),
        "language": st.sampled_from(["en", "nl", "pt-BR"]),  # the site picks it among its own (pick_language)
        "ip": st.sampled_from(["198.51.100.0", "2001:db8::", ""]),
        "action": st.sampled_from(["accept_all", "reject_all", "custom", "withdraw"]),
        "analytics": st.booleans(),
        "gpc": st.booleans(),
        "revision": st.integers(1, 2**31 - 1),
        "recorded_at": st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
        ).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000)),
    }
)


def _empty(app: Any) -> None:
    with app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(delete(table))
        db.session.commit()


def _sql_hashes(app: Any) -> dict[int, str]:
    """Each stored record's hash over the live verify's SQL canonical encoding."""
    with app.app_context():
        dialect = db.engine.dialect.name
        query = f"SELECT id, CAST({sql_canonical(dialect)} AS {'BLOB' if dialect == 'sqlite' else 'TEXT'}) "
        rows = db.session.execute(text(query + "FROM consent_records ORDER BY id")).all()
    return {
        row[0]: hashlib.sha256(b"\x00" + (row[1] if isinstance(row[1], bytes) else row[1].encode())).hexdigest()
        for row in rows
    }


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(values=st.lists(RECORD, min_size=1, max_size=4))
def test_every_path_gives_the_same_hash(proof_app, tmp_path_factory, values):
    folder: Path = tmp_path_factory.mktemp("paths")
    _empty(proof_app)
    records = [plain_record(number, **record) for number, record in enumerate(values)]
    for number, record in enumerate(records):  # ids rise with time, as recording makes them
        record["recorded_at"] = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(milliseconds=number)
    records[0]["recorded_at"] = values[0]["recorded_at"]
    records.sort(key=lambda record: record["recorded_at"])
    insert_records(proof_app, records)
    expected = [record_hash(record) for record in records]
    seal(proof_app)

    sql = _sql_hashes(proof_app)
    for record, digest, stored in zip(records, expected, sorted(sql.items()), strict=True):
        if not any(character < " " for character in record["page_url"] + record["user_agent"]):
            assert stored[1] == digest  # with a control character the SQL text differs, and Python rechecks

    keys = write_keys(proof_app, folder / "keys.json")
    for fmt in ("csv", "jsonl"):
        path = folder / f"export.{fmt}"
        proof = export(proof_app, path, fmt)
        rows = list(ExportFile(path).rows())
        assert [row.record_hash for row in rows] == expected
        assert all(row.content_ok for row in rows), fmt
        reports, checked = offline.verify(path, proof, str(keys))
        assert checked and reports[0].intact and reports[0].sealed == len(records), reports[0].findings
        if fmt == "csv":
            data = path.read_bytes()
            pairs = scan_piece(str(path), data.index(b"\r\n") + 2, len(data))
            if pairs is not None:  # the scan gives up on a value over several lines; then the reader decides
                leaves = zip(rows, expected, strict=True)
                assert pairs == b"".join(row.id.to_bytes(8, "big") + bytes.fromhex(hex[:32]) for row, hex in leaves)
    live = run(proof_app, "verify", "--site", "demo")
    assert live.exit_code == 0, live.output
    assert f"{len(records)} records checked, {len(records)} sealed" in live.output
