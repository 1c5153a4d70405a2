-- The Data API is a public API: agents' browsers hold a JWT and can call
-- whatever `authenticated` is granted, so everything the service refuses the
-- database refuses too (docs/SECURITY.md, "The Data API").

-- ---------------------------------------------------------------------------
-- messages.wamid: a real UNIQUE constraint
-- ---------------------------------------------------------------------------

-- The partial unique index could not be named by `ON CONFLICT (wamid)` without
-- its predicate, so PostgREST's upsert (`on_conflict=wamid`, what supabase-py
-- and supabase-js send) failed with 42P10. A unique constraint still lets many
-- rows have no wamid (NULLs are distinct), and the ingest's
-- `on conflict (wamid) where wamid is not null` infers it as well.
alter table public.messages add constraint messages_wamid_key unique (wamid);
drop index public.idx_messages_wamid;

-- ---------------------------------------------------------------------------
-- messages: bounded content, https media links, no direct inserts by agents
-- ---------------------------------------------------------------------------

-- 512 KiB of JSON text for every writer. The largest message WhatsApp lets a
-- customer send is a text of 65,536 characters: at most 256 KiB of UTF-8, or
-- 384 KiB if every character were a JSON-escaped control character, so the
-- ingest never meets the cap. Replies are far below it (text <= 4,096
-- characters, caption <= 1,024). Rows over it could only come from the
-- direct inserts agents had until now (a pending reply that was never sent):
-- their content is replaced by a marker saying so, and the row stays.
update public.messages
set content = jsonb_build_object('removed', 'content over the 512 KiB cap',
                                 'bytes', octet_length(content::text))
where octet_length(content::text) > 524288;
alter table public.messages
    add constraint messages_content_size check (octet_length(content::text) <= 524288);

-- Only replies carry a media link (received media has a media_id); the API
-- accepts public https URLs of at most 2,048 characters. Anything else was
-- inserted directly by an agent and was never sent: it is dropped.
update public.messages
set media_url = null
where media_url is not null
  and not (media_url ~ '^https://[^[:space:]]+$' and length(media_url) <= 2048);
alter table public.messages
    add constraint messages_media_url_https check (
        media_url is null or (media_url ~ '^https://[^[:space:]]+$' and length(media_url) <= 2048));

-- Agents no longer insert messages. A reply row exists only once the service
-- has checked it and is about to send it (public.open_reply below, service
-- role only): a row an agent wrote directly stayed `pending` for good and set
-- the conversation's preview for every co-worker.
drop policy messages_insert on public.messages;

-- ---------------------------------------------------------------------------
-- Idempotency keys belong to their sender
-- ---------------------------------------------------------------------------

-- Unique per (conversation, sender): another agent's key never blocks or
-- replays a send. Kept out of `messages` so that no co-worker can read them
-- (RLS filters rows, not columns, and a column privilege would break every
-- `select=*` on messages): agents have no privilege on this table at all; the
-- service reads a sender's own key with the service role.
create table public.reply_idempotency_keys (
    message_id uuid primary key references public.messages (id) on delete cascade,
    conversation_id uuid not null,
    sent_by uuid not null,
    key text not null check (length(key) between 1 and 200),
    created_at timestamptz not null default now(),
    constraint reply_idempotency_keys_sender_key unique (conversation_id, sent_by, key)
);
alter table public.reply_idempotency_keys enable row level security;

insert into public.reply_idempotency_keys (message_id, conversation_id, sent_by, key, created_at)
select m.id, m.conversation_id, m.sent_by, m.idempotency_key, m.created_at
from public.messages m
where m.idempotency_key is not null and m.sent_by is not null;

alter table public.messages drop column idempotency_key;

-- The one way a reply row is written: the sender must be a member of the
-- conversation's workspace (the service has read the conversation with the
-- agent's token; this keeps the rule in the database as well), the message and
-- its key are stored together, and a key the sender already used in this
-- conversation fails the whole call with 23505 before anything is sent.
create function public.open_reply(
    p_conversation_id uuid,
    p_sent_by uuid,
    p_type text,
    p_content jsonb,
    p_media_url text,
    p_media_filename text,
    p_idempotency_key text
) returns setof public.messages
    language plpgsql
    set search_path = ''
as $$
declare
    v_message public.messages;
begin
    if not exists (
        select 1
        from public.conversations c
        join public.workspace_members m on m.workspace_id = c.workspace_id
        where c.id = p_conversation_id and m.user_id = p_sent_by
    ) then
        raise insufficient_privilege using
            message = 'the sender is not a member of this conversation''s workspace';
    end if;
    insert into public.messages (
        conversation_id, direction, type, content, status, sent_by, media_url, media_filename)
    values (p_conversation_id, 'outbound', p_type, p_content, 'pending', p_sent_by,
            p_media_url, p_media_filename)
    returning * into v_message;
    insert into public.reply_idempotency_keys (message_id, conversation_id, sent_by, key)
    values (v_message.id, p_conversation_id, p_sent_by, p_idempotency_key);
    return next v_message;
end;
$$;

revoke execute on function public.open_reply(uuid, uuid, text, jsonb, text, text, text)
    from public, anon, authenticated;
grant execute on function public.open_reply(uuid, uuid, text, jsonb, text, text, text)
    to service_role;

-- ---------------------------------------------------------------------------
-- contact_tags: the key includes the workspace
-- ---------------------------------------------------------------------------

-- With (contact_id, tag_id) alone, inserting another workspace's pair failed
-- with 23505 when that pair existed and 23503 when it did not, which told an
-- agent what another workspace had tagged. Now both are the foreign key's
-- 23503 (the pair is not in the caller's workspace). contact_id still leads:
-- the conversation list and card look a contact's tags up by contact_id alone
-- (with workspace_id first they lost their index and scanned contact_tags).
alter table public.contact_tags drop constraint contact_tags_pkey;
alter table public.contact_tags add primary key (contact_id, tag_id, workspace_id);

-- ---------------------------------------------------------------------------
-- Grants: revoke all, then grant exactly what each role needs
-- ---------------------------------------------------------------------------

-- Earlier migrations granted columns on top of whatever a project grants on
-- new tables by default; where that default still gives anon and
-- authenticated everything, the column grants sealed nothing. Every table the
-- Data API exposes is re-granted here from nothing.
revoke all on
    public.workspaces, public.workspace_members, public.contacts, public.tags,
    public.contact_tags, public.orders, public.whatsapp_channels, public.conversations,
    public.messages, public.reply_idempotency_keys, public.webhook_events,
    public.pending_message_updates
from anon, authenticated;

grant select on public.workspaces, public.workspace_members to authenticated;
grant update (name, timezone) on public.workspaces to authenticated;
grant select, insert, delete on public.contact_tags to authenticated;
grant select, delete on public.contacts, public.tags, public.orders to authenticated;
grant insert (workspace_id, name, phone, email, city), update (name, phone, email, city)
    on public.contacts to authenticated;
grant insert (workspace_id, name, color), update (name, color) on public.tags to authenticated;
grant insert (workspace_id, contact_id, total, currency, status),
      update (contact_id, total, currency, status)
    on public.orders to authenticated;
grant select (id, workspace_id, phone_number_id, display_phone_number, name,
              send_read_receipts, is_active, created_at, updated_at)
    on public.whatsapp_channels to authenticated;
grant update (name, send_read_receipts, is_active) on public.whatsapp_channels to authenticated;
grant select on public.conversations to authenticated;
grant update (is_read, unread_count, status, assigned_to, contact_id) on public.conversations to authenticated;
grant select on public.messages to authenticated;

grant select, insert, delete on public.reply_idempotency_keys to service_role;
