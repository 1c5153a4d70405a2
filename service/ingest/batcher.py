"""Gathers concurrent webhook deliveries into one database write.

One PostgREST call per delivery tops out far below what 360dialog can send
at peak; one call for everything that arrived in the last few milliseconds
keeps the ACK both durable and fast (see docs/PERFORMANCE.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


class BatchWriter(Generic[T]):
    """`await submit(item)` returns once `write` stored the batch holding it, or raises."""

    def __init__(
        self,
        write: Callable[[Sequence[T]], Awaitable[None]],
        *,
        window_seconds: float,
        # Larger batches cost less per delivery but let every waiting delivery
        # hang on one commit while the rest of the machine idles; 128 measured
        # best under a saturating load (docs/PERFORMANCE.md).
        max_batch: int = 128,
        max_writes_in_flight: int = 4,
    ) -> None:
        self._write = write
        self._window = window_seconds
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        # One write at a time would cap throughput at batch size / round trip
        # however idle the machine; a few in flight let Postgres group commits.
        self._in_flight = asyncio.Semaphore(max_writes_in_flight)
        self._writes: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="webhook-batch-writer")

    async def stop(self) -> None:
        """Writes what is queued, then stops."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, item: T) -> None:
        if self._task is None:
            raise RuntimeError("BatchWriter is not started")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # The permit first: while every write is busy, deliveries pile up
            # in the queue and the next batch takes them all.
            await self._in_flight.acquire()
            batch = [await self._queue.get()]
            deadline = loop.time() + self._window
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            write = asyncio.create_task(self._flush(batch))
            self._writes.add(write)
            write.add_done_callback(self._written)

    def _written(self, write: asyncio.Task[None]) -> None:
        self._writes.discard(write)
        self._in_flight.release()

    async def _flush(self, batch: list[tuple[T, asyncio.Future[None]]]) -> None:
        try:
            await self._write([item for item, _ in batch])
        except Exception as exc:  # every waiter must learn the write failed
            log.warning("batch write of %d deliveries failed: %s", len(batch), type(exc).__name__)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
        finally:
            for _ in batch:
                self._queue.task_done()
