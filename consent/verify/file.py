"""Reading an exported file back for verification: its records, each hashed again from its own values.

An export is a plain table (consent.export.formats): CSV with one header row,
JSON Lines or ISO/IEC TS 27560 (DPV-27560) JSON Lines with one record per line. CSV is
read the way a spreadsheet may have saved it again: quoted or not, CRLF or
LF, with a BOM or without, ``TRUE``/``FALSE`` for booleans, the columns in any
order, the regime, region and Sec-GPC columns present or (in an export
written before regions) absent, and the formula guard (a ``'`` in front of a visitor's value that
starts like a formula) taken off again. Nothing else is forgiven: any value
that differs from the one recorded makes the record's hash differ.

CSV rows take a fast path: when no value needs escaping, the canonical JSON
is the values in a fixed template; anything else, and any mismatch, is
hashed again the exact way (consent.ledger.canonical).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from consent.export.dpv import from_iso27560
from consent.export.formats import BOOLEANS, COLUMNS, FORMULA_STARTS, LEGACY_COLUMNS
from consent.ledger.canonical import ENTRY_FIELDS, HASHED_FIELDS, REGIONAL_FIELDS, record_hash
from consent.timestamps import iso
from consent.verify.checker import Finding, Row

BOOLEAN_TEXT = frozenset(("true", "false"))
# What spreadsheets write for the export's true and false.
SPREADSHEET_BOOLEANS = {"TRUE": "true", "FALSE": "false", "True": "true", "False": "false"}
# The canonical JSON of HASHED_FIELDS (consent.ledger.canonical) when no value needs escaping.
TEMPLATE = '["%s","%s","%s","%s",%s,%s,%s,%s,%s,"%s","%s","%s","%s","%s",%s,%s]'
QUOTES = TEMPLATE.count('"')
# Where each of the template's values is in a CSV row written in COLUMNS order.
TEMPLATE_COLUMNS = tuple(COLUMNS.index(name) for name in HASHED_FIELDS)
RECORD_ID, CONSENT_ID, RECORD_HASH = (COLUMNS.index(name) for name in ("record_id", "consent_id", "record_hash"))
USER_AGENT = COLUMNS.index("user_agent")
FLAG_COLUMNS = tuple(COLUMNS.index(name) for name in HASHED_FIELDS if name in BOOLEANS)
REVISION = COLUMNS.index("revision")
REGIME, REGION, SEC_GPC = (COLUMNS.index(name) for name in REGIONAL_FIELDS)
RECORD_ID_TEXT = re.compile(rb'"record_id":\s*([0-9]+)')
CSV_STARTS = (b"\xef\xbb\xbfrecord_id,", b"record_id,", b'\xef\xbb\xbf"record_id"', b'"record_id"')


class ExportFileError(Exception):
    """The file is not an export this service wrote."""


def unguard(value: str) -> str:
    """A CSV value without the formula guard that the export put in front of it (exactly the inverse)."""
    return value[1:] if value[:1] == "'" and value[1:2] and value[1] in FORMULA_STARTS else value


def file_format(start: bytes) -> str | None:
    """``csv``, ``jsonl`` or ``iso27560`` from the first bytes of a file; None if it is none of them."""
    if start.startswith(CSV_STARTS):
        return "csv"
    if start.startswith(b'{"@context":'):
        return "iso27560"
    if start.startswith(b'{"record_id":'):
        return "jsonl"
    return None


@dataclass
class ExportFile:
    """An exported file: its format, and the malformed rows met while reading it."""

    path: Path
    format: str = ""
    problems: list[Finding] = field(default_factory=list)

    def __post_init__(self) -> None:
        with self.path.open("rb") as stream:
            found = file_format(stream.read(64))
        if found is None:
            raise ExportFileError(f"{self.path}: not a consent export (CSV, JSON Lines or ISO 27560 JSON Lines)")
        self.format = found

    def rows(self) -> Iterator[Row]:
        """The records in file order, each with its content checked against its record_hash."""
        if self.format == "csv":
            with self.path.open(encoding="utf-8-sig", newline="") as stream:
                yield from self._csv_rows(stream)
            return
        with self.path.open("rb") as stream:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                try:
                    document = json.loads(line)
                    record = from_iso27560(document) if self.format == "iso27560" else document
                    yield checked(record)
                except (ValueError, KeyError, TypeError, IndexError, AttributeError):
                    self._malformed(number, _id_in(line))

    def _csv_rows(self, stream: IO[str]) -> Iterator[Row]:
        reader = csv.reader(stream)
        header = next(reader, None) or []
        if sorted(header) not in (sorted(COLUMNS), sorted(LEGACY_COLUMNS)):
            missing = sorted(set(LEGACY_COLUMNS) - set(header)) or sorted(set(COLUMNS) - set(header))
            self.problems.append(
                Finding("changed", None, None, f"the header is not the export's columns (missing: {missing})")
            )
            return
        # An export from before regions has no regional columns: they read as empty (not recorded).
        width = len(header)
        order = None if tuple(header) == COLUMNS else [header.index(n) if n in header else width for n in COLUMNS]
        for row in reader:
            if not row:
                continue  # a blank line: the csv module reads it so; a spreadsheet may add one at the end
            try:
                if order is not None:
                    if len(row) != width:
                        raise ValueError("wrong number of columns")
                    row = [row[index] if index < width else "" for index in order]
                yield checked_csv(row)
            except (ValueError, KeyError, TypeError, IndexError):
                self._malformed(reader.line_num, row[0] if row else "")

    def _malformed(self, line: int, record_id: str = "") -> None:
        number = int(record_id) if record_id.isdigit() else None
        self.problems.append(Finding("changed", number, None, f"line {line} is not a well-formed record"))


def _id_in(line: bytes) -> str:
    """The record id at the start of a JSON line, if there is one, for naming a malformed line."""
    found = RECORD_ID_TEXT.search(line)
    return found.group(1).decode() if found else ""


def _escaped(text: str) -> str:
    """JSON string escaping for text without control characters (those take the exact path)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def checked_csv(row: list[str]) -> Row:
    """A CSV row's record (COLUMNS order), its content checked against its record_hash (the template when it can)."""
    if len(row) != len(COLUMNS):
        raise ValueError("wrong number of columns")
    values = list(row)
    values[USER_AGENT] = unguard(values[USER_AGENT])
    for index in FLAG_COLUMNS:
        values[index] = SPREADSHEET_BOOLEANS.get(values[index], values[index])
    values[SEC_GPC] = SPREADSHEET_BOOLEANS.get(values[SEC_GPC], values[SEC_GPC])
    stored = values[RECORD_HASH]
    if BOOLEAN_TEXT.issuperset(values[index] for index in FLAG_COLUMNS) and values[REVISION].isdigit():
        fields = [values[index] for index in TEMPLATE_COLUMNS]
        canonical = TEMPLATE % tuple(fields)
        # The template holds exactly QUOTES quotes when no value does; then nothing needed escaping.
        if canonical.count('"') != QUOTES or "\\" in canonical:
            canonical = TEMPLATE % tuple(
                value if name in BOOLEANS or name == "revision" else _escaped(value)
                for name, value in zip(HASHED_FIELDS, fields, strict=True)
            )
        canonical = _with_regional(canonical, values[REGIME], values[REGION], values[SEC_GPC])
        if canonical.isprintable() and hashlib.sha256(b"\x00" + canonical.encode()).hexdigest() == stored:
            return Row(int(values[RECORD_ID]), values[CONSENT_ID], stored, True)
    record: dict[str, Any] = dict(zip(COLUMNS, values, strict=True))
    for name in BOOLEANS:
        record[name] = {"true": True, "false": False}.get(record[name], record[name])
    for name in REGIONAL_FIELDS:
        # An empty value is a field the record does not carry (canonical JSON null).
        record[name] = None if record[name] == "" else record[name]
    record["revision"] = int(record["revision"]) if record["revision"].isdigit() else record["revision"]
    return checked(record)


def _with_regional(canonical: str, regime: str, region: str, sec_gpc: str) -> str:
    """The template's canonical JSON with the regional fields appended, if the record carries any of them."""
    if not (regime or region or sec_gpc):
        return canonical
    if sec_gpc not in ("true", "false", ""):
        return ""  # not a boolean: the exact check decides (and finds the hash differs)
    strings = [f'"{_escaped(value)}"' if value else "null" for value in (regime, region)]
    return f"{canonical[:-1]},{strings[0]},{strings[1]},{sec_gpc or 'null'}]"


def checked(record: dict[str, Any]) -> Row:
    """The exact check: the service's own record_hash over the typed values.

    The regional fields may be absent (an export from before regions): the
    record then does not carry them, as it did not when it was recorded.
    """
    try:
        values = {name: record[name] for name in HASHED_FIELDS}
        values.update({name: record.get(name) for name in ENTRY_FIELDS if name not in values})
        moment = datetime.fromisoformat(str(values["recorded_at"]).replace("Z", "+00:00"))
        values["recorded_at"] = iso(moment) if moment.tzinfo is not None else None
        content_ok = values["recorded_at"] is not None and record_hash(values) == record["record_hash"]
    except (ValueError, TypeError, KeyError):
        content_ok = False
    return Row(int(record["record_id"]), str(record.get("consent_id")), str(record.get("record_hash")), content_ok)
