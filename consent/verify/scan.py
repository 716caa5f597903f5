"""Checking the records of a large CSV export on every core, for ``python -m consent.verify FILE``.

The file is cut at line ends into pieces that worker processes read on their
own. Each line is taken as one whole record (split directly when its quotes
only enclose whole values, else by the csv module), its canonical JSON written
from a template and hashed, and the record reduced to its id-and-digest pair.
The pieces come back in file order as one run of pairs, which the verifier
compares with the seals' leaves a seal at a time.

The quick result stands only if every seal's pairs are byte for byte its
signed leaves. A leaf holds the first 16 bytes of SHA-256 over the record's
canonical JSON as recorded (after 0x00), so a line can only pass if the text hashed for it
is that JSON: the template escapes quotes (a block holding a backslash takes
the exact check of ``ExportFile.rows``), and a raw control character, which
that JSON never holds, can only make the hash differ.

A reading line by line is the csv module's reading only while every line is a
whole record. So the scan gives up, and the file is read again the thorough
way (which names every problem), at the first line that is not a whole record
(a value spanning lines, a stray quote or line break), a blank or malformed
line, a record whose content does not match its hash, or a record id that is
not above the one before it; and so does anything else that does not match.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import multiprocessing
import os
from binascii import hexlify
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from consent.export.formats import COLUMNS
from consent.ledger.leaves import Seal, pair_ids
from consent.verify.checker import Block, Report, Row, Verifier
from consent.verify.file import TEMPLATE, checked_csv

BYTES_TEMPLATE = TEMPLATE.encode()
SMALLEST = 32 << 20  # bytes: smaller files are read in one go, which costs less than starting workers
BLOCK = 4 << 20
PIECES_PER_WORKER = 4  # pieces are handed out as workers free up, so that none waits long for another


class GaveUp(Exception):
    """A line the quick reading cannot vouch for."""


def csv_fields(line: str, parts: list[str]) -> tuple[list[str], bool]:
    """The values of a CSV line that holds one whole record, as the csv module reads them; ``parts``: split at quotes.

    And whether a quoted value holds a (doubled) quote. Lines whose quotes are
    anything but whole quoted values are left to the csv module.
    """
    if not line:
        raise GaveUp  # a blank line: an empty row to the csv module
    if len(parts) == 1:
        return line.split(","), False
    fields = parts[0].split(",")
    inner = False
    if len(parts) % 2 == 1 and fields.pop() == "":  # the first quote opens a value
        value = parts[1]
        for index in range(2, len(parts) - 1, 2):
            between = parts[index]
            if not between:  # a doubled quote, inside the value
                value += '"' + parts[index + 1]
                inner = True
            elif between[0] == between[-1] == ",":  # the value ends; unquoted values, then the next quoted one
                fields.append(value)
                fields.extend(between[1:-1].split(",") if len(between) > 1 else ())
                value = parts[index + 1]
            else:
                break
        else:
            if parts[-1][:1] in ("", ","):
                fields.append(value)
                fields.extend(parts[-1].split(",")[1:])
                return fields, inner
    try:
        rows = list(csv.reader([line], strict=True))
    except csv.Error:
        raise GaveUp from None
    if len(rows) != 1:
        raise GaveUp
    return rows[0], '"' in "".join(rows[0])


def _pair(fields: list[str]) -> bytes:
    """The id-and-digest pair of a record whose content matches its record_hash (else GaveUp)."""
    row = checked_csv(fields)
    if not row.content_ok:
        raise GaveUp
    return row.id.to_bytes(8, "big") + bytes.fromhex(row.record_hash[:32])


def _pairs(block: bytes, previous: bytes) -> list[bytes]:
    """The id-and-digest pair of each record in ``block`` (whole lines, each ending in CRLF), ids above ``previous``.

    A line as exports write it (page_url and user_agent quoted, the latter
    perhaps holding doubled quotes) is taken apart and hashed here, as bytes:
    in a block without backslashes only quotes need escaping for JSON, and only
    in user_agent. Any other line goes through ``csv_fields`` and ``_pair``.
    """
    block.decode()  # the thorough reading takes the file as UTF-8; a block that is not is left to it
    lines = block.split(b"\r\n")
    if lines.pop():
        raise GaveUp
    plain = b"\\" not in block
    pairs = []
    sha256, template = hashlib.sha256, BYTES_TEMPLATE
    for line in lines:
        if b"\n" in line or b"\r" in line:
            raise GaveUp  # a line break inside a line: a value spanning lines, or a stray CR or LF
        parts = line.split(b'"')
        pair = None
        if plain and (len(parts) == 5 or len(parts) > 5 and len(parts) % 2 and not any(parts[4:-1:2])):
            # Doubled quotes in user_agent leave empty parts between its pieces.
            user_agent = parts[3] if len(parts) == 5 else b'\\"'.join(parts[3:-1:2])
            head, middle, tail = parts[0].split(b","), parts[2].split(b","), parts[-1].split(b",")
            if len(head) == 12 and len(middle) == 3 and len(tail) == 8:
                (record_id, consent_id, recorded_at, action, necessary, functional, analytics, advertising,
                 revision, inventory_hash, language, after_head) = head  # fmt: skip
                before_ip, ip, after_ip = middle
                before_tail, gpc, dnt, regime, region, sec_gpc, site, stored = tail
                # Values neither the csv module nor ExportFile.rows would read differently. The flags
                # and revision go in as they are: a line hashes to its leaf only if they are the JSON's.
                if not (after_head or before_ip or after_ip or before_tail) and user_agent[:1] != b"'":
                    canonical = template % (
                        site, consent_id, recorded_at, action, necessary, functional, analytics, advertising,
                        revision, inventory_hash, language, parts[1], ip, user_agent, gpc, dnt,
                    )  # fmt: skip
                    if regime or region or sec_gpc:
                        # The regional fields, as consent.ledger.canonical appends them (regime and region
                        # are letters, digits and dashes here: no backslash, no quote in this part).
                        canonical = canonical[:-1] + b",%s,%s,%s]" % (
                            b'"' + regime + b'"' if regime else b"null",
                            b'"' + region + b'"' if region else b"null",
                            sec_gpc or b"null",
                        )
                    digest = sha256(b"\x00" + canonical).digest()
                    if hexlify(digest) == stored:
                        pair = int(record_id).to_bytes(8, "big") + digest[:16]
        if pair is None:
            text = line.decode()
            fields, _ = csv_fields(text, text.split('"'))
            if len(fields) != len(COLUMNS):
                raise GaveUp
            pair = _pair(fields)
        if pair[:8] <= previous:  # big-endian: bytes compare as the ids do
            raise GaveUp
        previous = pair[:8]
        pairs.append(pair)
    return pairs


def scan_piece(path: str, start: int, end: int) -> bytes | None:
    """The pairs of the records in bytes ``[start, end)`` of the file (whole lines); None if it gave up."""
    pairs: list[bytes] = []
    previous = bytes(8)
    try:
        with open(path, "rb") as stream:
            stream.seek(start)
            while start < end:
                block = stream.read(min(BLOCK, end - start))
                cut = block.rfind(b"\r\n") + 2 if start + len(block) < end else len(block)
                if cut < 2:
                    return None
                stream.seek(start + cut)
                start += cut
                found = _pairs(block[:cut], previous)
                if found:
                    previous = found[-1][:8]
                pairs.extend(found)
    except (GaveUp, ValueError, KeyError, TypeError, IndexError, OverflowError):
        return None
    return b"".join(pairs)


def _bounds(path: Path, start: int, size: int, pieces: int) -> list[int]:
    """Offsets that cut bytes ``[start, size)`` into about ``pieces`` runs of lines, each cut just after a CRLF."""
    bounds = [start]
    with path.open("rb") as stream:
        for number in range(1, pieces):
            at = start + (size - start) * number // pieces
            stream.seek(at)
            found = stream.read(1 << 16).find(b"\r\n")
            if found >= 0 and bounds[-1] < at + found + 2 < size:
                bounds.append(at + found + 2)
    return [*bounds, size]


class CsvScan:
    """The scan of one CSV export, started at once in worker processes; ``pairs()`` waits for its result."""

    def __init__(self, path: Path) -> None:
        self.futures: list[Future[bytes | None]] = []
        self.pool: ProcessPoolExecutor | None = None
        size = path.stat().st_size
        with path.open("rb") as stream:
            head = stream.read(64 << 10)
        header_end = head.find(b"\r\n") + 2
        header = head[: header_end - 2]
        # The quick reading takes the columns in the export's order, every line ending in CRLF.
        if size < SMALLEST or header.removeprefix(b"\xef\xbb\xbf") != ",".join(COLUMNS).encode():
            return
        if "fork" not in multiprocessing.get_all_start_methods():
            return  # workers that start afresh would cost more than they save
        workers = max(1, min(os.cpu_count() or 1, 4))
        bounds = _bounds(path, header_end, size, workers * PIECES_PER_WORKER)
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        self.futures = [
            self.pool.submit(scan_piece, str(path), start, end) for start, end in zip(bounds, bounds[1:], strict=False)
        ]

    def pairs(self) -> bytes | None:
        """Every record's id-and-digest pair, in file order; None if the file needs the thorough reading."""
        if not self.futures:
            return None
        try:
            pieces = [future.result() for future in self.futures]
        except (BrokenProcessPool, OSError):
            return None  # a worker died (out of memory, perhaps): the thorough reading needs none
        finally:
            self.close()
        found = [piece for piece in pieces if piece]
        if any(piece is None for piece in pieces):
            return None
        # Each piece's ids rise; so must they from one piece to the next.
        for before, after in zip(found, found[1:], strict=False):
            if before[-24:-16] >= after[:8]:
                return None
        return b"".join(found)

    def close(self) -> None:
        """Stop the workers (at once, if the result is no longer wanted)."""
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None

    def __enter__(self) -> CsvScan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CloserLook(Exception):
    """Records the quick check could not settle: the file must be read the thorough way."""


def _closer_look() -> Iterator[Row]:
    raise CloserLook


def seal_blocks(pairs: bytes, seals: list[tuple[Seal, bool]]) -> Iterator[Block]:
    """The scanned records as one block per seal, cut by id; any record no seal takes calls for a closer look."""
    ids = pair_ids(pairs)
    taken = 0
    for seal, _ in seals:
        after, last = seal.after_id, seal.last_id
        low, high = bisect.bisect_right(ids, after), bisect.bisect_right(ids, last)
        if low != taken:
            raise CloserLook
        yield Block(after + 1, last, high - low, True, pairs[24 * low : 24 * high], _closer_look)
        taken = high
    if taken != len(ids):
        raise CloserLook


def quick_report(verifier: Verifier, pairs: bytes | None) -> Report | None:
    """The verifier's report on the scanned records, if the quick check settles every one of them."""
    if pairs is None:
        return None
    try:
        report = verifier.run(seal_blocks(pairs, verifier.seals))
    except (CloserLook, TypeError, ValueError):
        return None  # the thorough reading meets whatever is wrong in its own way
    # Only the thorough reading names problems with records (an emptied seal's, here).
    return None if report.findings else report
