"""BatchWriter: batching, bounded concurrency, and failures reaching every waiter."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from service.ingest.batcher import BatchWriter


class Recorder:
    def __init__(self, gate: asyncio.Event | None = None, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.gate = gate
        self.fail = fail
        self.started = asyncio.Event()

    async def write(self, items: Sequence[int]) -> None:
        self.in_flight += 1
        self.started.set()
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.fail:
                raise ConnectionError("database away")
            self.batches.append(list(items))
        finally:
            self.in_flight -= 1


async def test_concurrent_submits_share_a_write() -> None:
    recorder = Recorder()
    writer = BatchWriter(recorder.write, window_seconds=0.01)
    writer.start()
    await asyncio.gather(*(writer.submit(n) for n in range(20)))
    await writer.stop()

    assert sorted(n for batch in recorder.batches for n in batch) == list(range(20))
    assert len(recorder.batches) < 20


async def test_writes_in_flight_are_bounded_and_the_backlog_becomes_one_batch() -> None:
    gate = asyncio.Event()
    recorder = Recorder(gate)
    writer = BatchWriter(recorder.write, window_seconds=0, max_writes_in_flight=2)
    writer.start()
    first = [asyncio.create_task(writer.submit(n)) for n in range(2)]
    await recorder.started.wait()
    more = [asyncio.create_task(writer.submit(n)) for n in range(2, 30)]
    for _ in range(50):
        await asyncio.sleep(0)
    assert recorder.in_flight <= 2
    gate.set()
    await asyncio.gather(*first, *more)
    await writer.stop()

    assert recorder.most_in_flight == 2
    assert sorted(n for batch in recorder.batches for n in batch) == list(range(30))
    assert len(recorder.batches) <= 4


async def test_a_failed_write_fails_every_submit_in_it() -> None:
    writer = BatchWriter(Recorder(fail=True).write, window_seconds=0.01)
    writer.start()
    results = await asyncio.gather(*(writer.submit(n) for n in range(5)), return_exceptions=True)
    await writer.stop()

    assert all(isinstance(r, ConnectionError) for r in results)


async def test_submit_before_start_is_refused() -> None:
    writer = BatchWriter(Recorder().write, window_seconds=0)
    with pytest.raises(RuntimeError, match="not started"):
        await writer.submit(1)
