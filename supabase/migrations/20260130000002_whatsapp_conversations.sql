-- WhatsApp conversations and messages: one conversation per (workspace,
-- phone), messages deduplicated on WhatsApp's id, statistics kept by
-- triggers, statuses that only move forward, RLS per workspace, realtime.

-- ---------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------

create table public.conversations (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    contact_id uuid,
    phone text not null check (phone ~ '^\+[1-9][0-9]{6,14}$'),
    phone_number_id text not null,
    status text not null default 'active' check (status in ('active', 'archived')),
    is_read boolean not null default false,
    unread_count integer not null default 0 check (unread_count >= 0),
    last_customer_message_at timestamptz,
    -- Never null so keyset pagination has a total order; until the first
    -- message arrives it is the creation time (last_message_preview is null).
    last_message_at timestamptz not null default now(),
    last_message_preview text,
    assigned_to uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint conversations_workspace_id_id_key unique (workspace_id, id),
    -- A contact of another workspace cannot be linked: the pair must exist.
    constraint conversations_contact_fkey foreign key (workspace_id, contact_id)
        references public.contacts (workspace_id, id) on delete set null (contact_id)
);

-- unique (workspace_id, phone): the conversation lookup index doubles as the
-- constraint that makes find-or-create race free (ON CONFLICT).
create unique index idx_conversations_phone on public.conversations (workspace_id, phone);
create index idx_conversations_workspace
    on public.conversations (workspace_id, status, last_message_at desc, id desc);
create index idx_conversations_updated
    on public.conversations (workspace_id, last_message_at desc, id desc);
create index idx_conversations_unread
    on public.conversations (workspace_id, last_message_at desc, id desc) where not is_read;
create index idx_conversations_contact on public.conversations (workspace_id, contact_id);
create index idx_conversations_contact_id on public.conversations (contact_id) where contact_id is not null;
create index idx_conversations_assigned_to on public.conversations (assigned_to) where assigned_to is not null;
create index idx_conversations_phone_trgm on public.conversations using gin (phone extensions.gin_trgm_ops);

create table public.messages (
    id uuid primary key default gen_random_uuid(),
    conversation_id uuid not null,
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    wamid text,
    direction text not null check (direction in ('inbound', 'outbound')),
    type text not null check (type in (
        'text', 'image', 'video', 'audio', 'document', 'sticker', 'location', 'contacts',
        'template', 'interactive', 'reaction', 'button', 'order', 'system', 'unsupported'
    )),
    content jsonb not null default '{}' check (jsonb_typeof(content) = 'object'),
    status text not null default 'pending'
        check (status in ('pending', 'sent', 'delivered', 'read', 'failed')),
    status_timestamp timestamptz,
    error_code integer,
    error_message text,
    -- The customer's reaction to this message ({emoji, from, timestamp}); a
    -- removal clears it. Reactions are not messages of their own.
    reaction jsonb check (reaction is null or jsonb_typeof(reaction) = 'object'),
    media_url text,
    media_mime_type text,
    media_filename text,
    sent_by uuid references auth.users (id) on delete set null,
    idempotency_key text check (idempotency_key is null or length(idempotency_key) between 1 and 200),
    -- WhatsApp's own send time; created_at is when we stored it.
    "timestamp" timestamptz not null default now(),
    created_at timestamptz not null default now(),
    -- The workspace is always the conversation's (the trigger copies it, this
    -- makes any other pair impossible).
    constraint messages_conversation_fkey foreign key (workspace_id, conversation_id)
        references public.conversations (workspace_id, id) on delete cascade
);

create index idx_messages_conversation on public.messages (conversation_id, "timestamp" desc, id desc);
create unique index idx_messages_wamid on public.messages (wamid) where wamid is not null;
create index idx_messages_workspace on public.messages (workspace_id, conversation_id);
create index idx_messages_sent_by on public.messages (sent_by) where sent_by is not null;
create unique index idx_messages_idempotency
    on public.messages (conversation_id, idempotency_key) where idempotency_key is not null;

-- ---------------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------------

-- pending < sent < delivered < read; failed sits apart (see apply rule).
create function private.message_status_rank(p_status text) returns integer
    language sql immutable parallel safe
    set search_path = ''
as $$
    select case p_status
        when 'pending' then 0
        when 'sent' then 1
        when 'delivered' then 2
        when 'read' then 3
        when 'failed' then 4
    end
$$;

-- Whether a message in status p_from may move to p_to. Failed is final; a
-- send that was read cannot fail any more; everything else only moves up.
create function private.message_status_advances(p_from text, p_to text) returns boolean
    language sql immutable parallel safe
    set search_path = ''
as $$
    select case
        when p_from = 'failed' then false
        when p_to = 'failed' then p_from <> 'read'
        else private.message_status_rank(p_to) > private.message_status_rank(p_from)
    end
$$;

-- A one-line preview of a message for conversation lists.
create function private.message_preview(p_type text, p_content jsonb) returns text
    language plpgsql immutable parallel safe
    set search_path = ''
as $$
declare
    v_body text := nullif(btrim(p_content ->> 'body'), '');
    v_caption text := nullif(btrim(p_content ->> 'caption'), '');
    v_name text;
    v_count integer;
    v_text text;
begin
    v_text := case p_type
        when 'text' then coalesce(v_body, 'Message')
        when 'image' then coalesce(v_caption, 'Photo')
        when 'video' then coalesce(v_caption, 'Video')
        when 'sticker' then 'Sticker'
        when 'audio' then case when (p_content ->> 'voice')::boolean is true then 'Voice message' else 'Audio' end
        when 'document' then coalesce(
            v_caption,
            'Document ' || nullif(btrim(p_content ->> 'filename'), ''),
            'Document')
        when 'location' then coalesce(
            'Location: ' || coalesce(nullif(btrim(p_content ->> 'name'), ''), nullif(btrim(p_content ->> 'address'), '')),
            'Location')
        when 'interactive' then coalesce(nullif(btrim(p_content ->> 'title'), ''), v_body, 'Interactive reply')
        when 'button' then coalesce(nullif(btrim(p_content ->> 'text'), ''), nullif(btrim(p_content ->> 'payload'), ''), 'Button')
        when 'reaction' then coalesce('Reacted ' || nullif(p_content ->> 'emoji', ''), 'Removed a reaction')
        when 'system' then coalesce(v_body, 'System message')
        when 'template' then coalesce(v_body, 'Template: ' || nullif(p_content ->> 'name', ''), 'Template')
        when 'unsupported' then 'Unsupported message'
        else coalesce(v_body, 'Message')
    end;
    if p_type = 'contacts' then
        v_count := case when jsonb_typeof(p_content -> 'contacts') = 'array'
                        then jsonb_array_length(p_content -> 'contacts') else 0 end;
        v_name := nullif(btrim(p_content #>> '{contacts,0,name,formatted_name}'), '');
        v_text := case
            when v_count > 1 then v_count || ' contacts'
            when v_name is not null then 'Contact: ' || v_name
            else 'Contact'
        end;
    elsif p_type = 'order' then
        v_count := case when jsonb_typeof(p_content -> 'product_items') = 'array'
                        then jsonb_array_length(p_content -> 'product_items') else 0 end;
        v_text := coalesce(
            nullif(btrim(p_content ->> 'text'), ''),
            case when v_count = 1 then 'Order (1 item)'
                 when v_count > 1 then 'Order (' || v_count || ' items)' end,
            'Order');
    end if;
    v_text := btrim(regexp_replace(v_text, '\s+', ' ', 'g'));
    if length(v_text) > 100 then
        v_text := rtrim(left(v_text, 99), E'\u200d\ufe0e\ufe0f ') || '…';
    end if;
    return v_text;
end;
$$;

grant execute on function
    private.message_status_rank(text),
    private.message_status_advances(text, text),
    private.message_preview(text, jsonb)
to authenticated, service_role;

-- ---------------------------------------------------------------------------
-- Triggers
-- ---------------------------------------------------------------------------

-- Statement level, so a batch of N messages costs one update per
-- conversation. Security definer because agents inserting an outbound
-- message may not write the statistics columns themselves.
create function private.update_conversation_on_message() returns trigger
    language plpgsql
    security definer
    set search_path = ''
as $$
begin
    with latest as (
        select distinct on (n.conversation_id)
               n.conversation_id, n."timestamp", n.type, n.content
        from new_messages n
        order by n.conversation_id, n."timestamp" desc, n.created_at desc, n.id desc
    ), inbound as (
        select n.conversation_id, count(*)::integer as received, max(n."timestamp") as last_at
        from new_messages n
        where n.direction = 'inbound'
        group by n.conversation_id
    )
    update public.conversations c
    set last_message_at = case
            when c.last_message_preview is null then l."timestamp"
            else greatest(c.last_message_at, l."timestamp")
        end,
        last_message_preview = case
            when c.last_message_preview is null or l."timestamp" >= c.last_message_at
                then private.message_preview(l.type, l.content)
            else c.last_message_preview
        end,
        unread_count = c.unread_count + coalesce(i.received, 0),
        is_read = case when i.received > 0 then false else c.is_read end,
        status = case when i.received > 0 then 'active' else c.status end,
        last_customer_message_at = case
            when i.last_at is null then c.last_customer_message_at
            else greatest(c.last_customer_message_at, i.last_at)
        end
    from latest l
    left join inbound i on i.conversation_id = l.conversation_id
    where c.id = l.conversation_id;
    return null;
end;
$$;

create function private.enforce_message_status() returns trigger
    language plpgsql
    set search_path = ''
as $$
begin
    if not private.message_status_advances(old.status, new.status) then
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

-- An assignee must be a member of the conversation's workspace.
create function private.check_conversation_assignee() returns trigger
    language plpgsql
    security definer
    set search_path = ''
as $$
begin
    if new.assigned_to is not null and not exists (
        select 1 from public.workspace_members m
        where m.workspace_id = new.workspace_id and m.user_id = new.assigned_to
    ) then
        raise foreign_key_violation using
            message = 'assignee is not a member of this workspace';
    end if;
    return new;
end;
$$;

-- No function in private is for PUBLIC (see the foundation migration).
revoke execute on all functions in schema private from public;

create trigger conversations_set_workspace before insert on public.conversations
    for each row execute function private.set_workspace_id();
create trigger conversations_updated_at before update on public.conversations
    for each row execute function private.update_updated_at_column();
create trigger conversations_check_assignee before insert or update of assigned_to on public.conversations
    for each row execute function private.check_conversation_assignee();

create trigger messages_set_workspace before insert on public.messages
    for each row execute function private.set_workspace_id();
-- Every update, not only of status: the error of a failed send cannot be
-- rewritten on its own either.
create trigger messages_enforce_status before update on public.messages
    for each row execute function private.enforce_message_status();
create trigger update_conversation_on_message after insert on public.messages
    referencing new table as new_messages
    for each statement execute function private.update_conversation_on_message();

-- ---------------------------------------------------------------------------
-- Row-level security
-- ---------------------------------------------------------------------------

alter table public.conversations enable row level security;
alter table public.messages enable row level security;

create policy conversations_select on public.conversations for select to authenticated
    using (workspace_id in (select private.my_workspaces()));
create policy conversations_update on public.conversations for update to authenticated
    using (workspace_id in (select private.my_workspaces()))
    with check (workspace_id in (select private.my_workspaces()));

create policy messages_select on public.messages for select to authenticated
    using (workspace_id in (select private.my_workspaces()));
-- Agents write replies: outbound, pending, in their own name. Receiving
-- messages is the service role's job.
create policy messages_insert on public.messages for insert to authenticated
    with check (
        workspace_id in (select private.my_workspaces())
        and direction = 'outbound'
        and status = 'pending'
        and wamid is null
        and sent_by = (select auth.uid())
    );
-- No UPDATE for agents: what WhatsApp answered to a reply (wamid, status,
-- error) is written by the service role, so an agent cannot forge a delivery
-- state or claim a wamid through the Data API.

grant select on public.conversations, public.messages to authenticated;
grant update (is_read, unread_count, status, assigned_to, contact_id) on public.conversations to authenticated;
-- Not "timestamp": a reply is sent now, and a future one would pin the
-- conversation's last_message_at and preview.
grant insert (conversation_id, workspace_id, direction, type, content, status, sent_by,
              idempotency_key, media_url, media_mime_type, media_filename)
    on public.messages to authenticated;
grant select, insert, update, delete on public.conversations, public.messages to service_role;

-- ---------------------------------------------------------------------------
-- Realtime
-- ---------------------------------------------------------------------------

alter publication supabase_realtime add table public.conversations, public.messages;
