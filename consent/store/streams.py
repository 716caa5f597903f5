"""PostgreSQL reads of id ranges by two connections at once, handed over in order, all in one snapshot.

Each connection runs in a REPEATABLE READ transaction on the snapshot of the
caller's transaction (``pg_export_snapshot``) and reads every other range, so
that two server backends do the work of one read while the caller consumes
the results in id order, with at most a few ranges per connection held in
memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import sql

STREAMS = 2
WAIT = 0.5
END = object()
Item = TypeVar("Item")
Reader = Callable[[psycopg.Connection[Any], int, int], Iterator[Item]]


def id_ranges(first: int, last: int, span: int) -> list[tuple[int, int]]:
    """``[first, last]`` cut into ranges of ``span`` ids."""
    return [(low, min(low + span - 1, last)) for low in range(first, last + 1, span)]


class SnapshotStreams(Generic[Item]):
    """The items ``read(connection, low, high)`` yields for each id range, range after range, in order."""

    def __init__(
        self, conninfo: str, snapshot: str, ranges: list[tuple[int, int]], read: Reader[Item], ahead: int = 2
    ) -> None:
        self.conninfo, self.snapshot, self.ranges, self.read = conninfo, snapshot, ranges, read
        # Room for the items of ``ahead`` ranges per connection, and their ends.
        self.queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=ahead) for _ in range(STREAMS)]
        self.stop = threading.Event()

    def __iter__(self) -> Iterator[Item]:
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
                    for item in self.read(raw, low, high):
                        if not self._put(stream, item):
                            raw.close()  # stopped in the middle of a read: drop the connection
                            return
                    if not self._put(stream, END):
                        return
                raw.rollback()
        except Exception as error:  # noqa: BLE001 - handed to the reading thread, which raises it
            self._put(stream, error)
