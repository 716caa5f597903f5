"""PostgreSQL ``COPY … TO STDOUT`` read by two connections at once, in order, in one snapshot.

libpq hands COPY data over one row at a time, so reading a large export costs
the client about as much as the server. Two connections, each in a
REPEATABLE READ transaction on the exporting transaction's snapshot
(``pg_export_snapshot``), read alternate ranges of ids; the caller gets the
rows in id order, with at most a few batches per connection held in memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import pq, sql

STREAMS = 2
SPAN = 4_000  # ids per range: a connection reads a whole range ahead while the other's is written
WAIT = 0.5
END = object()


def read_copy(raw: psycopg.Connection[Any], statement: str, batch_size: int) -> Iterator[tuple[bytes, int]]:
    """One COPY TO STDOUT on ``raw``, as (bytes, rows) batches, read at the pq level."""
    pgconn = raw.pgconn
    pgconn.send_query(statement.encode())
    started = pgconn.get_result()
    if started is None or started.status != pq.ExecStatus.COPY_OUT:
        raise psycopg.OperationalError(pgconn.get_error_message().decode(errors="replace"))
    batch: list[memoryview] = []
    read, keep = pgconn.get_copy_data, batch.append
    while True:
        size, data = read(0)
        if size < 0:
            break
        keep(data)
        if len(batch) == batch_size:
            yield b"".join(batch), batch_size
            batch.clear()
    if batch:
        yield b"".join(batch), len(batch)
    while (finished := pgconn.get_result()) is not None:
        if finished.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.OperationalError(finished.error_message.decode(errors="replace"))


class CopyStreams:
    """Rows of ``statement_for(low, high)`` for every id range in ``[first, last]``, in order."""

    def __init__(
        self,
        conninfo: str,
        snapshot: str,
        first: int,
        last: int,
        statement_for: Callable[[psycopg.Connection[Any], int, int], str],
        batch_size: int,
    ) -> None:
        self.conninfo, self.snapshot, self.statement_for, self.batch_size = (
            conninfo,
            snapshot,
            statement_for,
            batch_size,
        )
        self.ranges = [(low, min(low + SPAN - 1, last)) for low in range(first, last + 1, SPAN)]
        ahead = SPAN // batch_size + 2  # batches of one range, and its end
        self.queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=ahead) for _ in range(STREAMS)]
        self.stop = threading.Event()

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        workers = [threading.Thread(target=self._work, args=(n,), daemon=True) for n in range(STREAMS)]
        for worker in workers:
            worker.start()
        try:
            for number in range(len(self.ranges)):
                while (item := self.queues[number % STREAMS].get()) is not END:
                    if isinstance(item, BaseException):
                        raise item
                    yield item
        finally:
            self.stop.set()
            for worker in workers:
                worker.join(timeout=10)

    def _put(self, stream: int, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queues[stream].put(item, timeout=WAIT)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, stream: int) -> None:
        try:
            with psycopg.connect(self.conninfo, connect_timeout=10) as raw:
                raw.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                raw.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(self.snapshot)))
                for low, high in self.ranges[stream::STREAMS]:
                    for item in read_copy(raw, self.statement_for(raw, low, high), self.batch_size):
                        if not self._put(stream, item):
                            raw.close()  # stopped in the middle of a COPY: drop the connection
                            return
                    if not self._put(stream, END):
                        return
                raw.rollback()
        except Exception as error:  # noqa: BLE001 - handed to the reading thread, which raises it
            self._put(stream, error)
