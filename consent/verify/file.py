"""Reading an exported file back: its ledger entries and summary, then its records for verification.

Each record's fields are hashed again. CSV rows take a fast path: when no
value needs escaping, the canonical JSON is the values in a fixed template;
anything else, and any mismatch, is hashed again the slow, exact way.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from consent.export_formats import COLUMNS, LEDGER_MARK, from_iso27560
from consent.ledger import Checkpoint
from consent.recording import HASHED_FIELDS, record_hash
from consent.verification import Finding, Row

TRAILER_KEYS = ("checkpoint", "leaves", "labels", "export")
BLOCK = 1 << 22
# A trailer row holding a piece of leaves or labels, exactly as exports write it.
DATA_ROW = re.compile(
    rb'#ledger,"\{""(leaves|labels)"":\{""seq"":(0|[1-9][0-9]*|""export""),""data"":""([A-Za-z0-9+/=]*)""\}\}"\r\n'
)
JSON_TRAILER = tuple(f'{{"{key}"'.encode() for key in TRAILER_KEYS)
CSV_TRAILER = f"{LEDGER_MARK},".encode()
BOOLEAN_TEXT = frozenset(("true", "false"))
# The canonical JSON of HASHED_FIELDS (see consent.recording) when no value holds a control character.
TEMPLATE = '["%s","%s","%s","%s","%s",%s,%s,%s,%s,%s,"%s","%s","%s","%s","%s",%s,%s]'
QUOTES = TEMPLATE.count('"')


class ExportFileError(Exception):
    """The file is not an export this service wrote."""


@dataclass
class ExportFile:
    """An exported file: its format, ledger, summary, and malformed rows met while reading."""

    path: Path
    format: str = ""
    checkpoints: list[Checkpoint] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    tail: Checkpoint | None = None
    problems: list[Finding] = field(default_factory=list)

    def __post_init__(self) -> None:
        with self.path.open("rb") as stream:
            start = stream.read(64)
        if start.startswith(b"\xef\xbb\xbfrecord_id,") or start.startswith(b"record_id,"):
            self.format = "csv"
        elif start.startswith(b'{"record":'):
            self.format = "iso27560"
        elif start.startswith(b'{"record_id":'):
            self.format = "jsonl"
        else:
            raise ExportFileError(f"{self.path}: not a consent export (CSV, JSON Lines or ISO 27560)")
        self._read_ledger()

    def _entries(self) -> Iterator[dict[str, Any]]:
        if self.format == "csv":
            for line in lines_starting(self.path, CSV_TRAILER):
                piece = DATA_ROW.fullmatch(line)
                if piece is None:
                    yield json.loads(_ledger_cell(line))
                else:  # what the csv and json modules make of it, read directly: most of a trailer is these
                    kind, seq, data = piece.groups()
                    yield {kind.decode(): {"seq": "export" if seq == b'""export""' else int(seq), "data": data}}
            return
        with self.path.open("rb") as stream:
            for line in stream:
                if line.startswith(JSON_TRAILER):
                    yield json.loads(line)

    def _read_ledger(self) -> None:
        headers: dict[Any, tuple[dict[str, Any], str]] = {}
        data: dict[tuple[str, Any], list[bytes]] = {}
        for entry in self._entries():
            (kind, value), *_ = entry.items()
            if kind in ("checkpoint", "export"):
                header = {k: v for k, v in value.items() if k != "signature"}
                headers[value.get("seq", "export") if kind == "checkpoint" else "export"] = (header, value["signature"])
            elif kind in ("leaves", "labels"):
                data.setdefault((kind, value["seq"]), []).append(base64.b64decode(value["data"]))
        for seq, (header, signature) in headers.items():
            leaves = b"".join(data.get(("leaves", seq), []))
            labels = b"".join(data.get(("labels", seq), []))
            if seq == "export":
                self.summary = {**header, "signature": signature}
                self.tail = Checkpoint({**header, "kind": "export", "seq": "export"}, signature, leaves, labels)
            else:
                self.checkpoints.append(Checkpoint(header, signature, leaves, labels))

    def rows(self) -> Iterator[Row]:
        """The records in file order, each with its content checked against its record_hash."""
        if self.format == "csv":
            yield from self._csv_rows()
            return
        with self.path.open("rb") as stream:
            for number, line in enumerate(stream, 1):
                if line.startswith(JSON_TRAILER) or not line.strip():
                    continue
                try:
                    document = json.loads(line)
                    record = from_iso27560(document) if self.format == "iso27560" else document
                    yield _checked(record)
                except (ValueError, KeyError, TypeError, IndexError):
                    self._malformed(number)

    def _csv_rows(self) -> Iterator[Row]:
        with self.path.open(encoding="utf-8-sig", newline="") as stream:
            reader = csv.reader(stream)
            next(reader, None)
            for row in reader:
                if row and row[0] == LEDGER_MARK:
                    continue
                try:
                    yield checked_csv(row)
                except (ValueError, KeyError, TypeError, IndexError):
                    self._malformed(reader.line_num, row[0] if row else "")

    def _malformed(self, line: int, record_id: str = "") -> None:
        number = int(record_id) if record_id.isdigit() else None
        self.problems.append(Finding("changed", number, None, f"line {line} is not a well-formed record"))


def lines_starting(path: Path, mark: bytes) -> Iterator[bytes]:
    """The lines of a file that start with ``mark``, found a block at a time rather than line by line.

    Found by their first character (one ``memchr``), which in a CSV export ("#")
    is rare elsewhere.
    """
    first = mark[:1]
    with path.open("rb") as stream:
        carry = b""  # the beginning of a line that an earlier block left unfinished
        while block := stream.read(BLOCK):
            start = block.find(b"\n") + 1
            if not start:
                carry += block
                continue
            line = carry + block[:start]
            if line.startswith(mark):
                yield line
            end = block.rfind(b"\n") + 1
            found = block.find(first, start, end)
            while found >= 0:
                if block[found - 1] == 10 and block.startswith(mark, found):
                    yield block[found : block.index(b"\n", found) + 1]
                found = block.find(first, found + 1, end)
            carry = block[end:]
        if carry.startswith(mark):
            yield carry


def _ledger_cell(line: bytes) -> bytes | str:
    """The JSON of a ``#ledger,"<json>"`` row, as the csv module reads it (which it does when in doubt)."""
    body = line[len(CSV_TRAILER) + 1 : -3]
    whole = line.startswith(CSV_TRAILER + b'"') and line.endswith(b'"\r\n') and b"\r" not in body
    # Every quote in the cell doubled: then it is one quoted cell, whose quotes are the pairs.
    if whole and body.count(b'"') == 2 * body.count(b'""'):
        return body.replace(b'""', b'"')
    return next(csv.reader([line.decode()]))[1]


def _escaped(text: str) -> str:
    """JSON string escaping for text without control characters (those take the slow path)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def checked_csv(row: list[str]) -> Row:
    """A CSV row's record, its content checked against its record_hash (the template's quick way when it can)."""
    if len(row) != len(COLUMNS):
        raise ValueError("wrong number of columns")
    (record_id, consent_id, recorded_at, action, necessary, functional, analytics, advertising, revision,
     inventory_hash, language, page_url, ip, user_agent, gpc, dnt, site, event_id, stored) = row  # fmt: skip
    # Undo the spreadsheet guard on the columns that carry it (GUARDED).
    user_agent = user_agent[1:] if user_agent[:1] == "'" else user_agent
    event_id = event_id[1:] if event_id[:1] == "'" else event_id
    flags = (necessary, functional, analytics, advertising, gpc, dnt)
    if BOOLEAN_TEXT.issuperset(flags) and revision.isdigit():
        strings = [site, event_id, consent_id, recorded_at, action, inventory_hash, language, page_url, ip, user_agent]
        canonical = TEMPLATE % (*strings[:5], *flags[:4], revision, *strings[5:], *flags[4:])
        # The template holds exactly QUOTES quotes when no value does; then nothing needed escaping.
        if canonical.count('"') != QUOTES or "\\" in canonical:
            canonical = TEMPLATE % (
                *map(_escaped, strings[:5]),
                *flags[:4],
                revision,
                *map(_escaped, strings[5:]),
                *flags[4:],
            )
        if canonical.isprintable() and hashlib.sha256(canonical.encode()).hexdigest() == stored:
            return Row(int(record_id), consent_id, stored, True)
    values: dict[str, Any] = dict(zip(COLUMNS, row, strict=True)) | {"user_agent": user_agent, "event_id": event_id}
    for name, flag in zip(("necessary", "functional", "analytics", "advertising", "gpc", "dnt"), flags, strict=True):
        values[name] = {"true": True, "false": False}.get(flag, flag)
    values["revision"] = int(revision) if revision.isdigit() else revision
    return _checked(values)


def _checked(record: dict[str, Any]) -> Row:
    """The slow, exact check: the service's own record_hash over the typed values."""
    values = {name: record[name] for name in HASHED_FIELDS}
    try:
        values["recorded_at"] = datetime.fromisoformat(str(values["recorded_at"]).replace("Z", "+00:00"))
        content_ok = record_hash(values) == record["record_hash"]
    except (ValueError, TypeError):
        content_ok = False
    return Row(int(record["record_id"]), str(record["consent_id"]), str(record["record_hash"]), content_ok)
