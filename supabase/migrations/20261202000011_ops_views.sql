-- Views an operator watches (docs/OPERATIONS.md "What to monitor"): inbox lag,
-- dead letters, parked updates, replies left pending. One row each, cheap
-- enough to poll every minute. They read every workspace, so only the service
-- role (and `postgres`, their owner, from the SQL editor) may read them;
-- `security_invoker` makes a read run with the reader's own rights, so even a
-- wrong grant would show a member nothing (the tables underneath are RLS'd or
-- not granted to them at all).
--
-- The index below is built while this file's transaction holds a SHARE lock on
-- messages: reads go on, writes (new messages, statuses) wait for the build, a
-- scan of the table. Give up rather than hold ingestion for long; retry the
-- push at a quiet hour if it gives up.
set local lock_timeout = '5s';

-- Replies stored as pending before 360dialog answered; only a handful at any time.
create index idx_messages_pending_outbound on public.messages (created_at)
    where status = 'pending' and direction = 'outbound';

-- Inbox lag: what waits for the worker, and how long the oldest has waited.
-- `leased` counts events a worker holds now; `retrying` those waiting for a
-- backoff after a failed attempt.
create view public.ops_inbox_lag with (security_invoker = true) as
select
    count(*)::integer as pending,
    count(*) filter (where e.next_attempt_at <= now()
                       and (e.locked_until is null or e.locked_until < now()))::integer as due,
    count(*) filter (where e.locked_until >= now())::integer as leased,
    count(*) filter (where e.attempts > 0 and e.next_attempt_at > now())::integer as retrying,
    min(e.received_at) as oldest_received_at,
    coalesce(extract(epoch from now() - min(e.received_at)), 0)::integer as oldest_age_seconds
from public.webhook_events e
where e.status = 'pending';

-- Dead letters: deliveries that failed every attempt (replay them with
-- `events replay`). No body: it holds customers' messages.
create view public.ops_dead_letters with (security_invoker = true) as
select
    count(*)::integer as dead,
    max(e.id) as newest_id,
    (array_agg(e.last_error order by e.id desc))[1] as newest_error
from public.webhook_events e
where e.status = 'dead';

-- Statuses and reactions parked for a message not stored yet. They are
-- normally applied within seconds; old ones mean the message never arrived
-- (pruned after 7 days).
create view public.ops_parked_updates with (security_invoker = true) as
select
    count(*)::integer as parked,
    coalesce(extract(epoch from now() - min(p.received_at)), 0)::integer as oldest_age_seconds
from public.pending_message_updates p;

-- Agents' replies still `pending`: the send to 360dialog is under way, or the
-- service stopped between storing the reply and recording 360dialog's answer.
-- `stale` ones (over 2 minutes) will not move by themselves.
create view public.ops_pending_replies with (security_invoker = true) as
select
    count(*)::integer as pending,
    count(*) filter (where m.created_at < now() - interval '2 minutes')::integer as stale,
    coalesce(extract(epoch from now() - min(m.created_at)), 0)::integer as oldest_age_seconds
from public.messages m
where m.status = 'pending' and m.direction = 'outbound';

revoke all on public.ops_inbox_lag, public.ops_dead_letters, public.ops_parked_updates,
    public.ops_pending_replies
from public, anon, authenticated;
grant select on public.ops_inbox_lag, public.ops_dead_letters, public.ops_parked_updates,
    public.ops_pending_replies
to service_role;
