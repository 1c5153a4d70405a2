-- Live updates for agents' browsers (docs/FRONTEND.md).
--
-- 1. postgres_changes: an UPDATE of a message whose body is stored out of
--    line (TOAST, a few KB) reached browsers without `content`, because an
--    unchanged TOASTed value is not written to the WAL under the default
--    replica identity. With REPLICA IDENTITY FULL the old row is logged whole
--    and Realtime's apply_rls fills the missing column from it. Cost: the old
--    row in the WAL of every update of a message (docs/PERFORMANCE.md).
-- 2. Broadcast from the database, the path that scales: one private topic per
--    workspace, `workspace:<uuid>`, fed by triggers with ids and what changed
--    (never bodies, phone numbers or keys), and policies on realtime.messages
--    so only the workspace's members can join it.
--
-- Deploys with `supabase db push` onto a project whose realtime schema is
-- Supabase's: nothing is created in realtime except the policies.

alter table public.messages replica identity full;

-- ---------------------------------------------------------------------------
-- Topics
-- ---------------------------------------------------------------------------

-- The workspace a topic names, or null for any other topic (never an error:
-- an error in a join check is reported to the client as a policy error).
create function private.workspace_topic_id(p_topic text) returns uuid
    language sql immutable parallel safe
    set search_path = ''
as $$
    select case
        when p_topic ~ '^workspace:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
            then substr(p_topic, 11)::uuid
    end
$$;

revoke execute on function private.workspace_topic_id(text) from public, anon;
grant execute on function private.workspace_topic_id(text) to authenticated, service_role;

-- ---------------------------------------------------------------------------
-- Triggers
-- ---------------------------------------------------------------------------

-- At most this many changes per broadcast (about 150 bytes each), so a bulk
-- update never makes one oversized message.
create function private.broadcast_chunk() returns integer
    language sql immutable parallel safe
    set search_path = ''
as $$ select 100 $$;

-- Statement level with transition tables, and one realtime.send per
-- workspace (and chunk) per statement, listing the rows that changed:
-- realtime.send runs in a subtransaction of its own (it swallows errors, so
-- a missing partition never fails a write), and one per row would put a
-- worker batch (70 messages and more) past the 64 subtransactions a backend
-- can cache, a known slowdown for every concurrent snapshot; per row it also
-- cost twice the time (docs/PERFORMANCE.md, "Realtime").
-- Security definer: realtime.send is executable by postgres only, and the
-- writers are agents (authenticated) and the service (service_role).
-- Each change: {op, conversation_id, message_id, changed, ...small state},
-- never the message body, preview, phone numbers or errors' text.
create function private.broadcast_message_changes() returns trigger
    language plpgsql
    security definer
    set search_path = ''
as $$
begin
    if tg_op = 'INSERT' then
        perform realtime.send(jsonb_build_object('changes', g.changes), 'message', g.topic, true)
        from (
            select 'workspace:' || c.workspace_id::text as topic, jsonb_agg(c.change) as changes
            from (
                select n.workspace_id,
                       (row_number() over (partition by n.workspace_id) - 1) / private.broadcast_chunk() as chunk,
                       jsonb_build_object(
                           'op', 'INSERT',
                           'message_id', n.id,
                           'conversation_id', n.conversation_id,
                           'direction', n.direction,
                           'status', n.status) as change
                from new_rows n
            ) c
            group by c.workspace_id, c.chunk
        ) g;
    else
        perform realtime.send(jsonb_build_object('changes', g.changes), 'message', g.topic, true)
        from (
            select 'workspace:' || c.workspace_id::text as topic, jsonb_agg(c.change) as changes
            from (
                select d.workspace_id,
                       (row_number() over (partition by d.workspace_id) - 1) / private.broadcast_chunk() as chunk,
                       jsonb_build_object(
                           'op', 'UPDATE',
                           'message_id', d.id,
                           'conversation_id', d.conversation_id,
                           'changed', d.changed,
                           'status', d.status) as change
                from (
                    select n.id, n.conversation_id, n.workspace_id, n.status,
                           array_remove(array[
                               case when n.status is distinct from o.status then 'status' end,
                               case when n.reaction is distinct from o.reaction then 'reaction' end,
                               case when n.wamid is distinct from o.wamid then 'wamid' end,
                               case when n.error_code is distinct from o.error_code then 'error' end,
                               case when n.content is distinct from o.content then 'content' end
                           ], null) as changed
                    from new_rows n
                    join old_rows o on o.id = n.id
                ) d
                where cardinality(d.changed) > 0
            ) c
            group by c.workspace_id, c.chunk
        ) g;
    end if;
    return null;
end;
$$;

create function private.broadcast_conversation_changes() returns trigger
    language plpgsql
    security definer
    set search_path = ''
as $$
begin
    if tg_op = 'INSERT' then
        perform realtime.send(jsonb_build_object('changes', g.changes), 'conversation', g.topic, true)
        from (
            select 'workspace:' || c.workspace_id::text as topic, jsonb_agg(c.change) as changes
            from (
                select n.workspace_id,
                       (row_number() over (partition by n.workspace_id) - 1) / private.broadcast_chunk() as chunk,
                       jsonb_build_object(
                           'op', 'INSERT',
                           'conversation_id', n.id,
                           'status', n.status,
                           'is_read', n.is_read,
                           'unread_count', n.unread_count,
                           'assigned_to', n.assigned_to,
                           'last_message_at', n.last_message_at) as change
                from new_rows n
            ) c
            group by c.workspace_id, c.chunk
        ) g;
    else
        perform realtime.send(jsonb_build_object('changes', g.changes), 'conversation', g.topic, true)
        from (
            select 'workspace:' || c.workspace_id::text as topic, jsonb_agg(c.change) as changes
            from (
                select d.workspace_id,
                       (row_number() over (partition by d.workspace_id) - 1) / private.broadcast_chunk() as chunk,
                       jsonb_build_object(
                           'op', 'UPDATE',
                           'conversation_id', d.id,
                           'changed', d.changed,
                           'status', d.status,
                           'is_read', d.is_read,
                           'unread_count', d.unread_count,
                           'assigned_to', d.assigned_to,
                           'last_message_at', d.last_message_at) as change
                from (
                    select n.id, n.workspace_id, n.status, n.is_read, n.unread_count, n.assigned_to,
                           n.last_message_at,
                           array_remove(array[
                               case when n.status is distinct from o.status then 'status' end,
                               case when n.is_read is distinct from o.is_read then 'is_read' end,
                               case when n.unread_count is distinct from o.unread_count then 'unread_count' end,
                               case when n.assigned_to is distinct from o.assigned_to then 'assigned_to' end,
                               case when n.contact_id is distinct from o.contact_id then 'contact_id' end,
                               case when n.last_message_at is distinct from o.last_message_at then 'last_message_at' end,
                               case when n.last_message_preview is distinct from o.last_message_preview then 'last_message_preview' end,
                               -- Who the customer is (migration 008): a name shown in the list changed.
                               case when n.phone is distinct from o.phone then 'phone' end,
                               case when n.user_id is distinct from o.user_id then 'user_id' end,
                               case when n.profile_name is distinct from o.profile_name then 'profile_name' end,
                               case when n.username is distinct from o.username then 'username' end
                           ], null) as changed
                    from new_rows n
                    join old_rows o on o.id = n.id
                ) d
                where cardinality(d.changed) > 0
            ) c
            group by c.workspace_id, c.chunk
        ) g;
    end if;
    return null;
end;
$$;

revoke execute on function
    private.broadcast_message_changes(),
    private.broadcast_conversation_changes()
from public, anon, authenticated, service_role;
revoke execute on function private.broadcast_chunk() from public, anon, authenticated, service_role;

create trigger messages_broadcast_insert after insert on public.messages
    referencing new table as new_rows
    for each statement execute function private.broadcast_message_changes();
create trigger messages_broadcast_update after update on public.messages
    referencing old table as old_rows new table as new_rows
    for each statement execute function private.broadcast_message_changes();
create trigger conversations_broadcast_insert after insert on public.conversations
    referencing new table as new_rows
    for each statement execute function private.broadcast_conversation_changes();
create trigger conversations_broadcast_update after update on public.conversations
    referencing old table as old_rows new table as new_rows
    for each statement execute function private.broadcast_conversation_changes();

-- ---------------------------------------------------------------------------
-- Who may join a topic (Realtime checks these policies when a client joins a
-- private channel, with realtime.topic() set to the channel's topic)
-- ---------------------------------------------------------------------------

-- Members read (receive) their workspace's broadcasts and presence.
create policy realtime_workspace_members_read on realtime.messages
    for select to authenticated
    using (
        extension in ('broadcast', 'presence')
        and (select private.workspace_topic_id((select realtime.topic())))
            in (select private.my_workspaces())
    );

-- Members may share presence (who is looking at what), but never write a
-- broadcast: what arrives on a workspace topic comes from the database.
create policy realtime_workspace_members_presence on realtime.messages
    for insert to authenticated
    with check (
        extension = 'presence'
        and (select private.workspace_topic_id((select realtime.topic())))
            in (select private.my_workspaces())
    );
