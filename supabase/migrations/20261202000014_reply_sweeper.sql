-- No reply stays pending forever (docs/RELIABILITY.md "Replies whose sender died").
--
-- A reply is stored `pending` before 360dialog is called and its outcome is
-- recorded after. When the process dies in between, nobody will ever record
-- it: the worker sweeps such replies after REPLY_PENDING_TIMEOUT_SECONDS
-- (longer than a live send can take, retries included) and marks them
-- `failed` with a reason the agent sees. The sweep sends nothing: whether
-- WhatsApp got the message cannot be known here, so the agent decides, and a
-- resend needs a new Idempotency-Key.
--
-- A sender that was merely frozen (not dead) past the timeout may still come
-- back with 360dialog's answer. What it learnt is better than "unknown", so
-- its outcome replaces the swept failure once: `sent` with the wamid (the
-- parked status webhooks for that wamid then apply by themselves), or Meta's
-- failure reason. This is the one move out of `failed`, and only for a reply
-- the sweep failed, without a wamid.

-- Set by the sweep, cleared when the sender's late outcome replaces it. The
-- service's own bookkeeping: agents still have no privilege on this table.
alter table public.reply_idempotency_keys add column swept_at timestamptz;
create index idx_reply_idempotency_keys_swept on public.reply_idempotency_keys (swept_at)
    where swept_at is not null;

grant update (swept_at) on public.reply_idempotency_keys to service_role;

-- The status guard of migration 002, with the one exception above.
create or replace function private.enforce_message_status() returns trigger
    language plpgsql
    set search_path = ''
as $$
begin
    if not private.message_status_advances(old.status, new.status)
       and not (
           old.status = 'failed' and old.wamid is null and new.status in ('sent', 'failed')
           and exists (
               select 1 from public.reply_idempotency_keys k
               where k.message_id = old.id and k.swept_at is not null
           )
       ) then
        -- Keep the later state silently: late or repeated webhooks are
        -- normal, and raising would abort a whole batch of otherwise valid
        -- updates. A repeat of the current status is no move either: it keeps
        -- the first status_timestamp and error (failed is final).
        new.status := old.status;
        new.status_timestamp := old.status_timestamp;
        new.error_code := old.error_code;
        new.error_message := old.error_message;
    end if;
    return new;
end;
$$;

-- What the agent reads in `error_message` of a swept reply (and the API's
-- `detail.reason` on a replay of its key).
create function private.unknown_send_outcome() returns text
    language sql immutable parallel safe
    set search_path = ''
as $$
    select 'outcome unknown: the service stopped before 360dialog answered, so the customer '
        || 'may or may not have received this message; check with them before sending it '
        || 'again with a new Idempotency-Key'
$$;

-- Fails the agents' replies pending for longer than p_older_than_seconds (at
-- most p_limit of them, oldest first); returns their ids. The conditional
-- update is the whole race with a live sender: a reply its sender recorded
-- first is no longer `pending` and is left alone (a row the sender is writing
-- right now is skipped, not waited for, and is settled by then).
create function public.sweep_pending_replies(p_older_than_seconds integer, p_limit integer)
    returns setof uuid
    language plpgsql
    set search_path = ''
as $$
begin
    if p_older_than_seconds is null or p_older_than_seconds < 1 then
        raise invalid_parameter_value using message = 'p_older_than_seconds must be at least 1';
    end if;
    if p_limit is null or p_limit not between 1 and 10000 then
        raise invalid_parameter_value using message = 'p_limit must be between 1 and 10000';
    end if;
    return query
    with due as (
        select m.id
        from public.messages m
        where m.status = 'pending' and m.direction = 'outbound'
          and m.created_at < now() - make_interval(secs => p_older_than_seconds)
        order by m.created_at
        limit p_limit
        for update skip locked
    ), failed as (
        update public.messages m
        set status = 'failed', status_timestamp = now(), error_code = null,
            error_message = private.unknown_send_outcome()
        from due
        where m.id = due.id and m.status = 'pending'
        returning m.id
    ), marked as (
        update public.reply_idempotency_keys k
        set swept_at = now()
        from failed
        where k.message_id = failed.id
    )
    select failed.id from failed;
end;
$$;

-- What 360dialog answered for a reply, written by its sender: from `pending`,
-- or over the sweep's "outcome unknown" (once: the mark is cleared). Returns
-- the stored row when it moved, nothing when the message is not this
-- sender's reply or its outcome is already known.
create function public.record_reply_outcome(
    p_message_id uuid,
    p_sent_by uuid,
    p_status text,
    p_at timestamptz,
    p_wamid text,
    p_error_code integer,
    p_error_message text
) returns setof public.messages
    language plpgsql
    set search_path = ''
as $$
declare
    v_message public.messages;
    v_swept boolean;
begin
    if p_status is null or p_status not in ('sent', 'failed') then
        raise invalid_parameter_value using message = 'p_status must be sent or failed';
    end if;
    if p_status = 'sent' and p_wamid is null then
        raise invalid_parameter_value using message = 'a sent reply needs its wamid';
    end if;
    -- The row first, then the mark: read before a concurrent sweep commits,
    -- the mark would say "not swept" while the update then finds the row
    -- failed by that sweep, and the sender's answer (a wamid) would be lost.
    perform 1 from public.messages m where m.id = p_message_id for update;
    select exists (
        select 1 from public.reply_idempotency_keys k
        where k.message_id = p_message_id and k.swept_at is not null
    ) into v_swept;
    update public.messages m
    set status = p_status,
        status_timestamp = p_at,
        wamid = coalesce(p_wamid, m.wamid),
        error_code = case when p_status = 'failed' then p_error_code end,
        error_message = case when p_status = 'failed' then p_error_message end
    where m.id = p_message_id and m.sent_by = p_sent_by and m.direction = 'outbound'
      and (m.status = 'pending' or (v_swept and m.status = 'failed' and m.wamid is null))
    returning m.* into v_message;
    if not found then
        return;
    end if;
    if v_swept then
        update public.reply_idempotency_keys set swept_at = null where message_id = p_message_id;
    end if;
    return next v_message;
end;
$$;

revoke all on function private.unknown_send_outcome() from public, anon, authenticated;
grant execute on function private.unknown_send_outcome() to service_role;
revoke execute on function public.sweep_pending_replies(integer, integer)
    from public, anon, authenticated;
grant execute on function public.sweep_pending_replies(integer, integer) to service_role;
revoke execute on function public.record_reply_outcome(uuid, uuid, text, timestamptz, text, integer, text)
    from public, anon, authenticated;
grant execute on function public.record_reply_outcome(uuid, uuid, text, timestamptz, text, integer, text)
    to service_role;

-- The operator's view agrees with the sweep: `stale` counts replies pending
-- past the default REPLY_PENDING_TIMEOUT_SECONDS (5 minutes), which a running
-- worker has failed within one sweep interval; `outcome_unknown` counts the
-- replies the sweep failed in the last day (each one an agent had to check).
create or replace view public.ops_pending_replies with (security_invoker = true) as
select
    count(*)::integer as pending,
    count(*) filter (where m.created_at < now() - interval '5 minutes')::integer as stale,
    coalesce(extract(epoch from now() - min(m.created_at)), 0)::integer as oldest_age_seconds,
    (select count(*) from public.reply_idempotency_keys k
     where k.swept_at > now() - interval '1 day')::integer as outcome_unknown
from public.messages m
where m.status = 'pending' and m.direction = 'outbound';

revoke all on public.ops_pending_replies from public, anon, authenticated;
grant select on public.ops_pending_replies to service_role;
