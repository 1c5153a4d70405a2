"""The worker: claims stored deliveries in batches and ingests them, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass

from postgrest import APIError

from service.ingest.limits import MAX_ROWS_PER_INGEST
from service.ingest.normalize import Undeliverable, normalize_event
from service.repositories import inbox
from service.repositories import messages as messages_repo
from service.repositories.inbox import ClaimedEvent, IngestBatch
from service.repositories.roles import ServiceClient, ServiceDb
from service.settings import Settings
from service.template_refresh import TemplateRefresher

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 600.0
# Replies failed per sweep call; a backlog larger than this takes a few calls.
SWEEP_BATCH = 500

Normalized = tuple[ClaimedEvent, IngestBatch]


@dataclass
class BatchReport:
    claimed: int = 0
    ingested: int = 0
    failed: int = 0


class Worker:
    def __init__(
        self, db: ServiceClient, settings: Settings, *, templates: TemplateRefresher | None = None
    ) -> None:
        self._db = db
        self._settings = settings
        self._last_prune = 0.0
        self._templates = templates
        self._last_template_refresh: float | None = None
        self._template_refresh: asyncio.Task[None] | None = None
        # Never swept: a (re)started worker sweeps in its first round.
        self._last_sweep: float | None = None

    async def run_once(self) -> BatchReport:
        """One claim-normalize-ingest round; what it did."""
        return await self._process(await self._claim())

    async def _claim(self) -> list[ClaimedEvent]:
        return await inbox.claim(
            self._db,
            limit=self._settings.worker_batch_size,
            lease_seconds=self._settings.worker_lease_seconds,
        )

    async def _process(self, events: list[ClaimedEvent]) -> BatchReport:
        report = BatchReport(claimed=len(events))
        if not events:
            return report
        ready: list[Normalized] = []
        failures: list[tuple[ClaimedEvent, inbox.Failure]] = []
        for event in events:
            try:
                ready.append((event, normalize_event(event)))
            except Undeliverable as exc:
                # The payload will not change: straight to the dead letters.
                failures.append((event, self._failure(event, exc, max_attempts=0)))
            except Exception as exc:
                failures.append((event, self._failure(event, exc)))
        # An event whose messages could none be filed has no row to write:
        # it is dead-lettered while the others are ingested, not after them.
        unfiled = [(e, b) for e, b in ready if b.problems and b.rows == 0]
        failures += [(event, self._dead_letter_failure(event, batch)) for event, batch in unfiled]
        ready = [(e, b) for e, b in ready if not (b.problems and b.rows == 0)]

        async def ingest_ready() -> None:
            for part in ingest_parts(ready):
                await self._ingest(part, report)

        # Every failure of the batch in one call, beside the ingest: a
        # tenant's poison adds no round trip to anyone's batch (docs/SECURITY.md).
        await asyncio.gather(
            ingest_ready(), self._fail_all(failures, frozenset(e.id for e, _ in unfiled))
        )
        report.failed += len(failures)
        return report

    async def _ingest(self, part: list[Normalized], report: BatchReport) -> None:
        """One ingest call for `part`; when it fails, halves until the bad event is alone.

        So one event the database refuses costs its batch a few extra calls
        (about two per halving), never the others' ingestion, and is failed
        on its own.
        """
        merged = IngestBatch()
        for _, batch in part:
            merged.extend(batch)
        try:
            await inbox.ingest(self._db, merged)
        except Exception as exc:
            if len(part) == 1:
                # A constraint's answer will not change on retry (the rule
                # normalize applies missed a case): dead-letter it now.
                event = part[0][0]
                await self._fail_all(
                    [(event, self._failure(event, exc, max_attempts=0 if _refused(exc) else None))]
                )
                report.failed += 1
                return
            log.warning("batch of %d events failed (%s); splitting it", len(part), exc)
            half = len(part) // 2
            await self._ingest(part[:half], report)
            await self._ingest(part[half:], report)
            return
        report.ingested += len(part)
        await self._report_problems(part)

    async def drain(self) -> BatchReport:
        """Runs rounds until nothing is due; for tests and one-shot runs."""
        total = BatchReport()
        while True:
            report = await self.run_once()
            total.claimed += report.claimed
            total.ingested += report.ingested
            total.failed += report.failed
            if report.claimed == 0:
                return total

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Rounds until `stop`; while one batch is ingested, the next is claimed.

        A round's two round trips (claim, ingest) then overlap instead of
        adding up, which is what kept one worker behind a busy webhook
        (docs/PERFORMANCE.md). Only one ingest is ever in flight. A batch
        claimed ahead is still processed after `stop`; if the process dies
        instead, its lease runs out and it is claimed again.
        """
        backoff = 0.0
        ahead: asyncio.Task[list[ClaimedEvent]] | None = None
        try:
            while ahead is not None or not stop.is_set():
                # A claim made while the last batch was still being ingested
                # can miss what arrived meanwhile: only an empty fresh claim
                # means the inbox is idle.
                fresh = ahead is None
                claim, ahead = ahead or asyncio.ensure_future(self._claim()), None
                try:
                    events = await claim
                    # Not after a failed round: claiming ahead would lease the
                    # inbox batch after batch while processing keeps failing.
                    if events and not stop.is_set() and backoff == 0.0:
                        ahead = asyncio.create_task(self._claim())
                    report = await self._process(events)
                    await self._maybe_prune()
                    self._maybe_refresh_templates()
                    await self._maybe_sweep()
                    backoff = 0.0
                except Exception as exc:  # database away: keep the worker alive, back off
                    backoff = min(max(backoff * 2, 0.5), 30.0)
                    if ahead is not None:  # a batch in hand goes first: its lease runs
                        log.warning(
                            "worker round failed (%s); finishing the batch in hand first",
                            type(exc).__name__,
                        )
                        continue
                    log.warning(
                        "worker round failed (%s); retrying in %.1fs", type(exc).__name__, backoff
                    )
                    await _wait(stop, backoff)
                    continue
                if report.claimed == 0 and fresh:
                    await _wait(stop, self._settings.worker_idle_poll_seconds)
        finally:
            if ahead is not None:  # cancelled: its events wait for their lease to run out
                ahead.cancel()
            if self._template_refresh is not None:
                # One channel's list is replaced in one transaction: stopping midway
                # leaves every channel's copy whole.
                self._template_refresh.cancel()

    async def _report_problems(self, ingested: list[Normalized]) -> None:
        """Events whose other rows landed but some messages could not be filed.

        Retrying cannot help (the payload is what it is), so they go straight
        to the dead letters, where an operator sees them and can replay them
        after a fix; replaying is safe because every row is idempotent.
        """
        partial = [(event, batch) for event, batch in ingested if batch.problems]
        await self._fail_all(
            [(event, self._dead_letter_failure(event, batch)) for event, batch in partial],
            frozenset(event.id for event, _ in partial),
        )

    @staticmethod
    def _dead_letter_failure(event: ClaimedEvent, batch: IngestBatch) -> inbox.Failure:
        error = "; ".join(batch.problems)[:2000]
        log.warning(
            "event %s dead-lettered (%d of its rows stored): %s", event.id, batch.rows, error
        )
        return inbox.Failure(id=event.id, error=error, max_attempts=0)

    def _failure(
        self, event: ClaimedEvent, exc: BaseException, *, max_attempts: int | None = None
    ) -> inbox.Failure:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        attempts = self._settings.worker_max_attempts if max_attempts is None else max_attempts
        return inbox.Failure(id=event.id, error=error, max_attempts=attempts)

    async def _fail_all(
        self,
        failures: list[tuple[ClaimedEvent, inbox.Failure]],
        logged: frozenset[int] = frozenset(),
    ) -> None:
        """One call for all; `logged` already said why they went to the dead letters."""
        if not failures:
            return
        statuses = await inbox.fail_many(self._db, [failure for _, failure in failures])
        for event, failure in failures:
            if event.id not in logged:
                log.warning(
                    "event %s failed (attempt %s, now %s): %s",
                    event.id,
                    event.attempts,
                    statuses.get(event.id),
                    failure.error,
                )

    async def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < PRUNE_EVERY_SECONDS:
            return
        self._last_prune = now
        pruned = await inbox.prune(
            self._db, older_than_hours=self._settings.worker_prune_done_after_hours
        )
        if pruned:
            log.info("pruned %d processed webhook events", pruned)

    def _maybe_refresh_templates(self) -> None:
        """Every TEMPLATE_REFRESH_SECONDS (and at start), beside ingesting, never in its way."""
        if self._templates is None:
            return
        if self._template_refresh is not None and not self._template_refresh.done():
            return
        now = time.monotonic()
        last = self._last_template_refresh
        if last is not None and now - last < self._settings.template_refresh_seconds:
            return
        self._last_template_refresh = now
        self._template_refresh = asyncio.create_task(self._refresh_templates(self._templates))

    async def _refresh_templates(self, templates: TemplateRefresher) -> None:
        try:
            report = await templates.refresh_all()
        except Exception as exc:  # the channel list itself could not be read
            log.warning("template refresh failed: %s", type(exc).__name__)
            return
        log.info(
            "templates refreshed: %d channel(s), %d failed", len(report.stored), len(report.failed)
        )

    async def sweep_replies(self) -> list[uuid.UUID]:
        """Fails the replies whose sender died mid-send; their ids.

        A reply still `pending` past REPLY_PENDING_TIMEOUT_SECONDS (longer
        than any live send, retries included) has no one left to record its
        outcome. Nothing is sent again: whether the customer got it cannot be
        known here, so it is failed with a reason the agent sees (migration
        014), and a sender that was only frozen can still record what
        360dialog answered.
        """
        swept: list[uuid.UUID] = []
        while True:
            batch = await messages_repo.sweep_pending_replies(
                ServiceDb(self._db.postgrest),
                older_than_seconds=self._settings.reply_pending_timeout_seconds,
                limit=SWEEP_BATCH,
            )
            swept.extend(batch)
            if len(batch) < SWEEP_BATCH:
                break
        for message_id in swept:
            log.warning(
                "reply %s was pending past its timeout: failed as outcome unknown", message_id
            )
        return swept

    async def _maybe_sweep(self) -> None:
        now = time.monotonic()
        if (
            self._last_sweep is not None
            and now - self._last_sweep < self._settings.reply_sweep_interval_seconds
        ):
            return
        self._last_sweep = now
        await self.sweep_replies()


def ingest_parts(ready: list[Normalized]) -> list[list[Normalized]]:
    """The claimed events, in claim order, as ingest calls of at most MAX_ROWS_PER_INGEST rows.

    An event that failed before goes alone: if it fails again it fails no
    other event with it.
    """
    parts: list[list[Normalized]] = []
    current: list[Normalized] = []
    rows = 0
    for event, batch in ready:
        alone = event.attempts > 1
        if current and (alone or rows + batch.rows > MAX_ROWS_PER_INGEST):
            parts.append(current)
            current, rows = [], 0
        if alone:
            parts.append([(event, batch)])
            continue
        current.append((event, batch))
        rows += batch.rows
    if current:
        parts.append(current)
    return parts


def _refused(exc: BaseException) -> bool:
    """Postgres refused the data itself: a data exception (22) or a constraint (23)."""
    code = getattr(exc, "code", None)
    return isinstance(exc, APIError) and isinstance(code, str) and code[:2] in ("22", "23")


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
