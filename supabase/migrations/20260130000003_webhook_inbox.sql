-- The durable webhook inbox and set-based ingestion.
--
-- The webhook endpoint stores each delivery here before answering 200; a
-- worker claims deliveries in batches and turns them into conversations,
-- messages, statuses and reactions with one RPC call per batch. Everything
-- here is for the service role only.

-- ---------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------

create table public.webhook_events (
    id bigint generated always as identity primary key,
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    channel_id uuid references public.whatsapp_channels (id) on delete set null,
    body text not null,
    -- Redeliveries of the same body are the same event.
    body_sha256 text generated always as (encode(extensions.digest(body, 'sha256'), 'hex')) stored,
    status text not null default 'pending' check (status in ('pending', 'processing', 'done', 'dead')),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    locked_until timestamptz,
    last_error text,
    received_at timestamptz not null default now(),
    processed_at timestamptz
);
create unique index idx_webhook_events_body on public.webhook_events (body_sha256);
create index idx_webhook_events_ready on public.webhook_events (next_attempt_at, id) where status = 'pending';
create index idx_webhook_events_leased on public.webhook_events (locked_until) where status = 'processing';
create index idx_webhook_events_done on public.webhook_events (processed_at) where status = 'done';
create index idx_webhook_events_dead on public.webhook_events (id) where status = 'dead';
create index idx_webhook_events_workspace on public.webhook_events (workspace_id);
create index idx_webhook_events_channel on public.webhook_events (channel_id);

-- Statuses and reactions that arrived before the message they refer to (a
-- status can beat the send response that tells us the wamid). Applied by a
-- trigger as soon as that wamid is stored.
create table public.pending_message_updates (
    id bigint generated always as identity primary key,
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    wamid text not null,
    kind text not null check (kind in ('status', 'reaction')),
    payload jsonb not null,
    received_at timestamptz not null default now()
);
create index idx_pending_message_updates_wamid on public.pending_message_updates (wamid);
create index idx_pending_message_updates_workspace on public.pending_message_updates (workspace_id);
create index idx_pending_message_updates_received on public.pending_message_updates (received_at);

alter table public.webhook_events enable row level security;
alter table public.pending_message_updates enable row level security;
-- No policies: only the service role (which bypasses RLS) touches these.
grant select, insert, update, delete on public.webhook_events, public.pending_message_updates to service_role;

-- ---------------------------------------------------------------------------
-- Applying statuses and reactions (shared by ingestion and the late-apply trigger)
-- ---------------------------------------------------------------------------

-- Serializes "is this wamid known? else park" against "this wamid now exists,
-- apply what is parked": without it, two transactions that each cannot see
-- the other's uncommitted row would leave a parked update behind for good.
-- Callers lock first, in a statement of its own, so the statements after it
-- see what the other transaction committed. Sorted, to avoid deadlocks.
create function private.lock_wamids(p_wamids text[]) returns void
    language sql
    set search_path = ''
as $$
    select pg_catalog.pg_advisory_xact_lock(h)
    from (select distinct pg_catalog.hashtext(w) as h
          from unnest(p_wamids) w where w is not null order by 1) hashes
$$;

-- p_rows: [{workspace_id, wamid, status, timestamp, error_code, error_message}]
-- Applies the strongest status per wamid; parks the ones whose message is
-- unknown. Returns {applied, parked}.
create function private.apply_message_statuses(p_rows jsonb) returns jsonb
    language plpgsql
    set search_path = ''
as $$
declare
    v_result jsonb;
begin
    perform private.lock_wamids(array(
        select r ->> 'wamid' from jsonb_array_elements(coalesce(p_rows, '[]')) r));
    with input as (
        select distinct on (r.workspace_id, r.wamid) r.*
        from jsonb_to_recordset(coalesce(p_rows, '[]')) as r(
            workspace_id uuid, wamid text, status text, "timestamp" timestamptz,
            error_code integer, error_message text)
        where r.status in ('sent', 'delivered', 'read', 'failed')
        order by r.workspace_id, r.wamid, private.message_status_rank(r.status) desc, r."timestamp" desc
    ), updated as (
        update public.messages m
        set status = i.status,
            status_timestamp = i."timestamp",
            error_code = i.error_code,
            error_message = i.error_message
        from input i
        where m.wamid = i.wamid
          and m.workspace_id = i.workspace_id
          and private.message_status_advances(m.status, i.status)
        returning 1
    ), parked as (
        insert into public.pending_message_updates (workspace_id, wamid, kind, payload)
        select i.workspace_id, i.wamid, 'status', to_jsonb(i)
        from input i
        where not exists (
            select 1 from public.messages m
            where m.wamid = i.wamid and m.workspace_id = i.workspace_id
        )
        returning 1
    )
    select jsonb_build_object(
        'applied', (select count(*) from updated),
        'parked', (select count(*) from parked))
    into v_result;
    return v_result;
end;
$$;

-- p_rows: [{workspace_id, target_wamid, wamid, sender, emoji, timestamp}]
-- The latest reaction per message wins; a null emoji removes it.
create function private.apply_message_reactions(p_rows jsonb) returns jsonb
    language plpgsql
    set search_path = ''
as $$
declare
    v_result jsonb;
begin
    perform private.lock_wamids(array(
        select r ->> 'target_wamid' from jsonb_array_elements(coalesce(p_rows, '[]')) r));
    -- Same shape as apply_message_statuses: the latest reaction per message
    -- is applied, or parked when the message is not here yet.
    with input as (
        select distinct on (r.workspace_id, r.target_wamid) r.*
        from jsonb_to_recordset(coalesce(p_rows, '[]')) as r(
            workspace_id uuid, target_wamid text, wamid text, sender text, emoji text,
            "timestamp" timestamptz)
        order by r.workspace_id, r.target_wamid, r."timestamp" desc, r.wamid desc
    ), updated as (
        update public.messages m
        set reaction = case
                when nullif(i.emoji, '') is null then null
                else jsonb_build_object('emoji', i.emoji, 'from', i.sender, 'wamid', i.wamid,
                                        'timestamp', i."timestamp")
            end
        from input i
        where m.wamid = i.target_wamid
          and m.workspace_id = i.workspace_id
          -- An older reaction arriving late must not undo a newer one.
          and (m.reaction is null or (m.reaction ->> 'timestamp')::timestamptz <= i."timestamp")
        returning 1
    ), parked as (
        insert into public.pending_message_updates (workspace_id, wamid, kind, payload)
        select i.workspace_id, i.target_wamid, 'reaction', to_jsonb(i)
        from input i
        where not exists (
            select 1 from public.messages m
            where m.wamid = i.target_wamid and m.workspace_id = i.workspace_id
        )
        returning 1
    )
    select jsonb_build_object(
        'applied', (select count(*) from updated),
        'parked', (select count(*) from parked))
    into v_result;
    return v_result;
end;
$$;

-- Applies and removes parked updates for wamids that now exist.
create function private.apply_pending_updates(p_wamids text[]) returns void
    language plpgsql
    set search_path = ''
as $$
declare
    v_statuses jsonb;
    v_reactions jsonb;
begin
    with taken as (
        delete from public.pending_message_updates p
        where p.wamid = any (p_wamids)
          and exists (
              select 1 from public.messages m
              where m.wamid = p.wamid and m.workspace_id = p.workspace_id
          )
        returning p.kind, p.payload
    )
    select coalesce(jsonb_agg(t.payload) filter (where t.kind = 'status'), '[]'),
           coalesce(jsonb_agg(t.payload) filter (where t.kind = 'reaction'), '[]')
    into v_statuses, v_reactions
    from taken t;

    if jsonb_array_length(v_statuses) > 0 then
        perform private.apply_message_statuses(v_statuses);
    end if;
    if jsonb_array_length(v_reactions) > 0 then
        perform private.apply_message_reactions(v_reactions);
    end if;
end;
$$;

-- Security definer: agents' inserts and updates fire these too, and only
-- the service role may read the parked updates.
create function private.apply_pending_on_insert() returns trigger
    language plpgsql
    security definer
    set search_path = ''
as $$
declare
    v_wamids text[];
begin
    -- No "is anything parked at all?" shortcut before the lock: a parked row
    -- another transaction has not committed yet would be invisible to it.
    select array_agg(n.wamid) into v_wamids
    from new_messages n
    where n.wamid is not null;
    if v_wamids is not null then
        perform private.lock_wamids(v_wamids);
        perform private.apply_pending_updates(v_wamids);
    end if;
    return null;
end;
$$;

create function private.apply_pending_on_wamid() returns trigger
    language plpgsql
    security definer
    set search_path = ''
as $$
begin
    perform private.lock_wamids(array[new.wamid]);
    perform private.apply_pending_updates(array[new.wamid]);
    return null;
end;
$$;

create trigger messages_apply_pending_on_insert after insert on public.messages
    referencing new table as new_messages
    for each statement execute function private.apply_pending_on_insert();
create trigger messages_apply_pending_on_wamid after update of wamid on public.messages
    for each row when (new.wamid is not null and old.wamid is distinct from new.wamid)
    execute function private.apply_pending_on_wamid();

-- ---------------------------------------------------------------------------
-- RPCs for the service role
-- ---------------------------------------------------------------------------

-- p_events: [{workspace_id, channel_id, body}]. A body already stored is a
-- redelivery and is skipped. Returns how many were new.
create function public.enqueue_webhook_events(p_events jsonb) returns integer
    language sql
    set search_path = ''
as $$
    with inserted as (
        insert into public.webhook_events (workspace_id, channel_id, body)
        -- A channel deleted since the webhook cached it: stored without it
        -- (the worker dead-letters such events) rather than failing the FK
        -- for every delivery in the batch.
        select e.workspace_id, ch.id, e.body
        from jsonb_to_recordset(p_events) as e(workspace_id uuid, channel_id uuid, body text)
        left join public.whatsapp_channels ch on ch.id = e.channel_id
        -- Concurrent batches holding the same redelivered bodies take the
        -- unique index in the same order, so they cannot deadlock.
        order by extensions.digest(e.body, 'sha256')
        on conflict (body_sha256) do nothing
        returning 1
    )
    select count(*)::integer from inserted
$$;

-- Leases up to p_limit due events, oldest first. An event whose lease ran
-- out (its worker died) is due again.
create function public.claim_webhook_events(p_limit integer, p_lease_seconds integer)
returns table (
    id bigint, workspace_id uuid, channel_id uuid, phone_number_id text, body text, attempts integer
)
    language sql
    set search_path = ''
as $$
    with due as (
        select e.id
        from public.webhook_events e
        where (e.status = 'pending' and e.next_attempt_at <= now())
           or (e.status = 'processing' and e.locked_until < now())
        order by e.id
        limit p_limit
        for update skip locked
    ), claimed as (
        update public.webhook_events e
        set status = 'processing',
            attempts = e.attempts + 1,
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

create function private.inbound_message_rows(p_messages jsonb)
returns table (
    workspace_id uuid, phone_number_id text, phone text, wamid text, type text,
    content jsonb, "timestamp" timestamptz, media_mime_type text, media_filename text
)
    language sql immutable
    set search_path = ''
as $$
    select * from jsonb_to_recordset(coalesce(p_messages, '[]')) as m(
        workspace_id uuid, phone_number_id text, phone text, wamid text, type text,
        content jsonb, "timestamp" timestamptz, media_mime_type text, media_filename text)
$$;

-- One transaction for a whole batch: conversations found or created, inbound
-- messages inserted once, statuses and reactions applied or parked, events
-- marked done. p_messages: [{workspace_id, phone_number_id, phone, wamid,
-- type, content, timestamp, media_mime_type, media_filename}].
create function public.ingest_webhook_batch(
    p_event_ids bigint[], p_messages jsonb, p_statuses jsonb, p_reactions jsonb
) returns jsonb
    language plpgsql
    set search_path = ''
as $$
declare
    v_messages integer := 0;
    v_statuses jsonb;
    v_reactions jsonb;
begin
    -- All of the batch's wamids at once and in order; the triggers and apply
    -- functions below take them again, which is free for the holder.
    perform private.lock_wamids(
        array(select m ->> 'wamid' from jsonb_array_elements(coalesce(p_messages, '[]')) m)
        || array(select s ->> 'wamid' from jsonb_array_elements(coalesce(p_statuses, '[]')) s)
        || array(select r ->> 'target_wamid'
                 from jsonb_array_elements(coalesce(p_reactions, '[]')) r));
    if jsonb_array_length(coalesce(p_messages, '[]')) > 0 then
        -- Find or create, race free on the unique (workspace_id, phone); sorted
        -- so concurrent batches lock conversations in the same order.
        insert into public.conversations (workspace_id, phone, phone_number_id, contact_id)
        select distinct on (i.workspace_id, i.phone)
               i.workspace_id, i.phone, i.phone_number_id, ct.id
        from private.inbound_message_rows(p_messages) i
        left join public.contacts ct on ct.workspace_id = i.workspace_id and ct.phone = i.phone
        order by i.workspace_id, i.phone, i."timestamp" desc
        on conflict (workspace_id, phone) do update
            set phone_number_id = excluded.phone_number_id,
                contact_id = coalesce(public.conversations.contact_id, excluded.contact_id)
            where public.conversations.phone_number_id is distinct from excluded.phone_number_id
               or (public.conversations.contact_id is null and excluded.contact_id is not null);

        with inserted as (
            insert into public.messages (
                conversation_id, workspace_id, wamid, direction, type, content, status,
                "timestamp", media_mime_type, media_filename)
            select c.id, i.workspace_id, i.wamid, 'inbound', i.type, i.content, 'delivered',
                   i."timestamp", i.media_mime_type, i.media_filename
            from private.inbound_message_rows(p_messages) i
            join public.conversations c on c.workspace_id = i.workspace_id and c.phone = i.phone
            order by i."timestamp", i.wamid
            on conflict (wamid) where wamid is not null do nothing
            returning 1
        )
        select count(*) into v_messages from inserted;
    end if;

    v_statuses := private.apply_message_statuses(p_statuses);
    v_reactions := private.apply_message_reactions(p_reactions);

    update public.webhook_events
    set status = 'done', processed_at = now(), locked_until = null, last_error = null
    where id = any (p_event_ids);

    return jsonb_build_object(
        'messages', v_messages,
        'statuses', (v_statuses ->> 'applied')::integer,
        'pending', (v_statuses ->> 'parked')::integer + (v_reactions ->> 'parked')::integer,
        'reactions', (v_reactions ->> 'applied')::integer
    );
end;
$$;

-- Schedules a retry with exponential backoff and jitter, or dead-letters the
-- event once it has used its attempts. Returns the new status.
create function public.fail_webhook_event(p_event_id bigint, p_error text, p_max_attempts integer)
returns text
    language sql
    set search_path = ''
as $$
    update public.webhook_events
    set status = case when attempts >= p_max_attempts then 'dead' else 'pending' end,
        next_attempt_at = now() + least(
            interval '15 minutes',
            make_interval(secs => power(2, least(attempts, 20)) * (0.5 + random()))
        ),
        locked_until = null,
        last_error = left(p_error, 2000)
    where id = p_event_id
    returning status
$$;

-- Dead events (or one given event) go back to the queue with fresh attempts.
create function public.replay_webhook_events(p_event_id bigint default null) returns integer
    language sql
    set search_path = ''
as $$
    with replayed as (
        update public.webhook_events
        set status = 'pending', attempts = 0, next_attempt_at = now(), locked_until = null
        where (p_event_id is null and status = 'dead')
           or (id = p_event_id and status in ('dead', 'done', 'pending'))
        returning 1
    )
    select count(*)::integer from replayed
$$;

-- Done events older than the retention, and parked updates nobody claimed
-- within a week (their message never reached us). Returns deleted events.
create function public.prune_webhook_events(p_older_than_hours integer) returns integer
    language plpgsql
    set search_path = ''
as $$
declare
    v_deleted integer;
begin
    delete from public.webhook_events
    where status = 'done' and processed_at < now() - make_interval(hours => p_older_than_hours);
    get diagnostics v_deleted = row_count;
    delete from public.pending_message_updates where received_at < now() - interval '7 days';
    return v_deleted;
end;
$$;

revoke execute on function
    public.enqueue_webhook_events(jsonb),
    public.claim_webhook_events(integer, integer),
    public.ingest_webhook_batch(bigint[], jsonb, jsonb, jsonb),
    public.fail_webhook_event(bigint, text, integer),
    public.replay_webhook_events(bigint),
    public.prune_webhook_events(integer),
    private.apply_message_statuses(jsonb),
    private.apply_message_reactions(jsonb),
    private.apply_pending_updates(text[]),
    private.inbound_message_rows(jsonb),
    private.lock_wamids(text[]),
    private.apply_pending_on_insert(),
    private.apply_pending_on_wamid()
from public, anon, authenticated;

grant execute on function
    public.enqueue_webhook_events(jsonb),
    public.claim_webhook_events(integer, integer),
    public.ingest_webhook_batch(bigint[], jsonb, jsonb, jsonb),
    public.fail_webhook_event(bigint, text, integer),
    public.replay_webhook_events(bigint),
    public.prune_webhook_events(integer),
    private.apply_message_statuses(jsonb),
    private.apply_message_reactions(jsonb),
    private.apply_pending_updates(text[]),
    private.inbound_message_rows(jsonb),
    private.lock_wamids(text[])
to service_role;
