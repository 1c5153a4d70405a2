-- A cheaper claim for the webhook inbox.
--
-- Measured under load (docs/PERFORMANCE.md): the claim cost more Postgres
-- time per event than inserting its message. Two causes:
--   1. `(pending and due) or (processing and lease over)` was planned as a
--      BitmapOr of two partial indexes. Bitmap scans never mark dead index
--      entries, so every claim revisited every event claimed or finished
--      since the last vacuum.
--   2. Moving an event to 'processing' changed an indexed column, so each
--      claim wrote a new version of the row and its raw body into every index.
-- A lease is now `locked_until` on a pending event: the claim reads the ready
-- index in order and updates only unindexed columns, which Postgres can do in
-- place (a HOT update) when the page has room; fillfactor leaves it that room.

-- The whole file is one transaction holding webhook_events exclusively
-- while the new check reads every stored event: deliveries wait meanwhile (or
-- get a 503 and are redelivered). Give up rather than queue every delivery
-- behind a long transaction that holds the table.
set local lock_timeout = '5s';

update public.webhook_events set status = 'pending' where status = 'processing';

drop index public.idx_webhook_events_leased;

alter table public.webhook_events drop constraint webhook_events_status_check;
alter table public.webhook_events
    add constraint webhook_events_status_check check (status in ('pending', 'done', 'dead'));

-- Applies to pages written from now on; earlier ones fill up as they are pruned.
alter table public.webhook_events set (fillfactor = 50);

-- Leases up to p_limit due events, the longest due first. An event whose lease
-- ran out (its worker died) is due again; a retried one waits for its backoff.
create or replace function public.claim_webhook_events(p_limit integer, p_lease_seconds integer)
returns table (
    id bigint, workspace_id uuid, channel_id uuid, phone_number_id text, body text, attempts integer
)
    language sql
    set search_path = ''
as $$
    with due as (
        select e.id
        from public.webhook_events e
        where e.status = 'pending'
          and e.next_attempt_at <= now()
          and (e.locked_until is null or e.locked_until < now())
        order by e.next_attempt_at, e.id
        limit p_limit
        for update skip locked
    ), claimed as (
        update public.webhook_events e
        set attempts = e.attempts + 1,
            locked_until = now() + make_interval(secs => p_lease_seconds)
        from due
        where e.id = due.id
        returning e.id, e.workspace_id, e.channel_id, e.body, e.attempts
    )
    select c.id, c.workspace_id, c.channel_id, ch.phone_number_id, c.body, c.attempts
    from claimed c
    left join public.whatsapp_channels ch on ch.id = c.channel_id
    order by c.id
$$;

-- A replay must not take an event from under the worker that holds its lease
-- (before this migration such an event was 'processing' and not replayable).
create or replace function public.replay_webhook_events(p_event_id bigint default null)
returns integer
    language sql
    set search_path = ''
as $$
    with replayed as (
        update public.webhook_events
        set status = 'pending', attempts = 0, next_attempt_at = now(), locked_until = null
        where (p_event_id is null and status = 'dead')
           or (id = p_event_id
               and (status in ('dead', 'done')
                    or (status = 'pending' and (locked_until is null or locked_until < now()))))
        returning 1
    )
    select count(*)::integer from replayed
$$;

revoke execute on function
    public.claim_webhook_events(integer, integer),
    public.replay_webhook_events(bigint)
from public, anon, authenticated;
grant execute on function
    public.claim_webhook_events(integer, integer),
    public.replay_webhook_events(bigint)
to service_role;
