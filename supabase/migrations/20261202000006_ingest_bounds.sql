-- Bounded work for every ingest transaction, whatever a delivery holds.
--
-- Before this migration each batch took one advisory lock per distinct wamid.
-- Advisory locks live in Postgres's shared lock table, sized by
-- max_locks_per_transaction (64 by default, as on hosted projects) times the
-- connections: one delivery of ~34,000 statuses filled it, failing its own
-- ingest with 53200 and, meanwhile, every other session that needed a lock
-- (other tenants' agents included). See docs/SECURITY.md.
--
--   1. Wamids are locked by bucket: at most 64 advisory locks per
--      transaction, deduplicated and taken in sorted order (no deadlock among
--      lockers). The same wamid always maps to the same bucket, so "is this
--      wamid known? else park" and "this wamid now exists, apply what is
--      parked" still exclude each other; unrelated wamids that share a bucket
--      only wait for each other's short transaction.
--   2. One ingest call holds at most 3,000 rows (messages + statuses +
--      reactions); the worker splits its merged batch below that, and a call
--      over it is refused before any work (54000), never half-applied.

-- The two-key form keeps these locks apart from single-key advisory locks
-- anyone else takes; 2026 is only a namespace.
create or replace function private.lock_wamids(p_wamids text[]) returns void
    language sql
    set search_path = ''
as $$
    select pg_catalog.pg_advisory_xact_lock(2026, b)
    from (select distinct pg_catalog.hashtext(w) & 63 as b
          from unnest(p_wamids) w where w is not null order by 1) buckets
$$;

-- Same as in 003, with the row cap checked first.
create or replace function public.ingest_webhook_batch(
    p_event_ids bigint[], p_messages jsonb, p_statuses jsonb, p_reactions jsonb
) returns jsonb
    language plpgsql
    set search_path = ''
as $$
declare
    v_messages integer := 0;
    v_statuses jsonb;
    v_reactions jsonb;
    v_rows integer;
begin
    -- jsonb_array_length is constant time: the cap costs nothing to check.
    v_rows := coalesce(jsonb_array_length(p_messages), 0)
        + coalesce(jsonb_array_length(p_statuses), 0)
        + coalesce(jsonb_array_length(p_reactions), 0);
    if v_rows > 3000 then
        raise exception 'ingest batch of % rows exceeds the cap of 3000', v_rows
            using errcode = '54000',
                  hint = 'split the batch: messages + statuses + reactions <= 3000 per call';
    end if;
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

revoke execute on function
    private.lock_wamids(text[]),
    public.ingest_webhook_batch(bigint[], jsonb, jsonb, jsonb)
from public, anon, authenticated;
grant execute on function
    private.lock_wamids(text[]),
    public.ingest_webhook_batch(bigint[], jsonb, jsonb, jsonb)
to service_role;
