-- Who the customer is, what agents see by name, in their language.
--
-- 1. Identity. Since 2026 a WhatsApp user with a username may reach us with a
--    business-scoped user id (BSUID, `contacts[].user_id`,
--    `messages[].from_user_id`, e.g. BR.1502576394655843) and no phone. A
--    conversation (and a contact) is keyed by its phone when it has one and by
--    its user id otherwise; at least one of the two is always there, never an
--    empty value. The rule that keeps one person one conversation is in
--    private.resolve_conversations below.
-- 2. Names. The WhatsApp profile name and username are kept on the
--    conversation and searched together with the linked contact's name through
--    one folded column, conversations.search_text, kept by triggers.
-- 3. Search for a big tenant: the page of matches is found in page order
--    inside one workspace (private.search_conversation_page), instead of
--    collecting every match of every workspace first.
-- 4. Previews in the workspace's language (workspaces.locale: en, es, pt).
-- 5. Listing conversations without a workspace is refused for a member of
--    several workspaces (docs/AGENT_API.md).
--
-- Existing rows keep working: their phone stays their key, the new columns are
-- empty (search_text is filled below from the linked contacts).

-- The ALTERs hold conversations and contacts exclusively while the checks read
-- every row; give up rather than queue every delivery behind them.
set local lock_timeout = '5s';

-- ---------------------------------------------------------------------------
-- Workspaces: the language of previews
-- ---------------------------------------------------------------------------

-- 'en' keeps what existing workspaces show today; an owner or admin picks
-- another one (grant below, policy workspaces_update).
alter table public.workspaces
    add column locale text not null default 'en'
        constraint workspaces_locale_check check (locale in ('en', 'es', 'pt'));
-- Re-granted from nothing, as every migration that grants columns does
-- (docs/SECURITY.md, "The Data API"): the same as migration 007, plus locale.
revoke all on public.workspaces from anon, authenticated;
grant select on public.workspaces to authenticated;
grant update (name, timezone, locale) on public.workspaces to authenticated;

-- ---------------------------------------------------------------------------
-- Identity columns
-- ---------------------------------------------------------------------------

-- A BSUID: ISO country code, a dot, up to 128 letters and digits; a parent
-- BSUID has ENT between them (US.ENT.11815799212886844830).
create function private.is_user_id(p_value text) returns boolean
    language sql immutable parallel safe
    set search_path = ''
as $$
    select p_value ~ '^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$'
$$;
revoke execute on function private.is_user_id(text) from public;
grant execute on function private.is_user_id(text) to authenticated, service_role;

alter table public.conversations
    alter column phone drop not null,
    add column user_id text
        constraint conversations_user_id_check check (private.is_user_id(user_id)),
    add column profile_name text
        constraint conversations_profile_name_check check (length(profile_name) between 1 and 200),
    add column username text
        constraint conversations_username_check check (length(username) between 1 and 100),
    -- Folded (private.search_text) contact name, profile name and username:
    -- one trigram index and one column for the ordered scan of a search.
    add column search_text text not null default '',
    add constraint conversations_identity_check check (phone is not null or user_id is not null);

-- The second key, unique like (workspace_id, phone): the find-or-create by
-- user id is race free on it.
create unique index idx_conversations_user_id
    on public.conversations (workspace_id, user_id) where user_id is not null;
create index idx_conversations_search_trgm
    on public.conversations using gin (search_text extensions.gin_trgm_ops);

alter table public.contacts
    alter column phone drop not null,
    add column user_id text
        constraint contacts_user_id_check check (private.is_user_id(user_id)),
    add constraint contacts_identity_check check (phone is not null or user_id is not null);
create unique index idx_contacts_user_id
    on public.contacts (workspace_id, user_id) where user_id is not null;

-- Re-granted from nothing: the same as migration 007, plus user_id.
revoke all on public.contacts from anon, authenticated;
grant select, delete on public.contacts to authenticated;
grant insert (workspace_id, name, phone, user_id, email, city),
      update (name, phone, user_id, email, city)
    on public.contacts to authenticated;

-- ---------------------------------------------------------------------------
-- conversations.search_text
-- ---------------------------------------------------------------------------

create function private.conversation_search_text(
    p_contact_id uuid, p_profile_name text, p_username text
) returns text
    language sql stable
    set search_path = ''
as $$
    select private.search_text(concat_ws(' ',
        (select k.name from public.contacts k where k.id = p_contact_id),
        p_profile_name,
        ltrim(p_username, '@')))
$$;

-- Security definer: the contact's name is read whoever changed the row (an
-- agent linking a contact, the ingest setting a profile name), without
-- evaluating the contacts policies per row.
create function private.set_conversation_search_text() returns trigger
    language plpgsql
    security definer
    set search_path = ''
as $$
begin
    new.search_text := private.conversation_search_text(new.contact_id, new.profile_name, new.username);
    return new;
end;
$$;

-- Security definer: an agent renaming a contact may not write conversations'
-- search_text itself.
create function private.refresh_conversations_search_text() returns trigger
    language plpgsql
    security definer
    set search_path = ''
as $$
begin
    update public.conversations c
    set search_text = private.conversation_search_text(c.contact_id, c.profile_name, c.username)
    where c.workspace_id = new.workspace_id and c.contact_id = new.id;
    return null;
end;
$$;

revoke execute on function
    private.conversation_search_text(uuid, text, text),
    private.set_conversation_search_text(),
    private.refresh_conversations_search_text()
from public, anon, authenticated;

-- Existing conversations: only the linked contact's name is known. The
-- updated_at trigger stays out of it: nothing an agent sees changed.
alter table public.conversations disable trigger conversations_updated_at;
update public.conversations c
set search_text = private.search_text(k.name)
from public.contacts k
where k.id = c.contact_id and k.name is not null;
alter table public.conversations enable trigger conversations_updated_at;

-- Unlinking by a contact's deletion (ON DELETE SET NULL) is an update of
-- contact_id too, so it clears the name here as well.
create trigger conversations_search_text
    before insert on public.conversations
    for each row execute function private.set_conversation_search_text();
-- Every ingested message names its sender's profile again: only a real change
-- pays for the search text (about 0.02 ms of each message's 0.2 ms, measured
-- with the bench's batches).
create trigger conversations_search_text_update
    before update of contact_id, profile_name, username on public.conversations
    for each row
    when (old.contact_id is distinct from new.contact_id
          or old.profile_name is distinct from new.profile_name
          or old.username is distinct from new.username)
    execute function private.set_conversation_search_text();
create trigger contacts_refresh_conversations_search_text
    after update of name on public.contacts
    for each row when (old.name is distinct from new.name)
    execute function private.refresh_conversations_search_text();

-- ---------------------------------------------------------------------------
-- Previews in the workspace's language
-- ---------------------------------------------------------------------------

-- The labels of a preview; {x} is filled in by private.message_preview.
create function private.preview_labels(p_locale text) returns jsonb
    language sql immutable parallel safe
    set search_path = ''
as $$
    select case p_locale
        when 'es' then jsonb_build_object(
            'message', 'Mensaje', 'photo', 'Foto', 'video', 'Video', 'sticker', 'Sticker',
            'voice', 'Mensaje de voz', 'audio', 'Audio', 'document', 'Documento',
            'document_named', 'Documento {x}', 'location', 'Ubicación',
            'location_named', 'Ubicación: {x}', 'interactive', 'Respuesta interactiva',
            'button', 'Botón', 'reacted', 'Reaccionó {x}', 'unreacted', 'Quitó una reacción',
            'system', 'Mensaje del sistema', 'template', 'Plantilla',
            'template_named', 'Plantilla: {x}', 'unsupported', 'Mensaje no compatible',
            'contacts_many', '{x} contactos', 'contact_named', 'Contacto: {x}',
            'contact', 'Contacto', 'order', 'Pedido', 'order_one', 'Pedido (1 artículo)',
            'order_many', 'Pedido ({x} artículos)')
        when 'pt' then jsonb_build_object(
            'message', 'Mensagem', 'photo', 'Foto', 'video', 'Vídeo', 'sticker', 'Figurinha',
            'voice', 'Mensagem de voz', 'audio', 'Áudio', 'document', 'Documento',
            'document_named', 'Documento {x}', 'location', 'Localização',
            'location_named', 'Localização: {x}', 'interactive', 'Resposta interativa',
            'button', 'Botão', 'reacted', 'Reagiu {x}', 'unreacted', 'Removeu uma reação',
            'system', 'Mensagem do sistema', 'template', 'Modelo',
            'template_named', 'Modelo: {x}', 'unsupported', 'Mensagem não suportada',
            'contacts_many', '{x} contatos', 'contact_named', 'Contato: {x}',
            'contact', 'Contato', 'order', 'Pedido', 'order_one', 'Pedido (1 item)',
            'order_many', 'Pedido ({x} itens)')
        else jsonb_build_object(
            'message', 'Message', 'photo', 'Photo', 'video', 'Video', 'sticker', 'Sticker',
            'voice', 'Voice message', 'audio', 'Audio', 'document', 'Document',
            'document_named', 'Document {x}', 'location', 'Location',
            'location_named', 'Location: {x}', 'interactive', 'Interactive reply',
            'button', 'Button', 'reacted', 'Reacted {x}', 'unreacted', 'Removed a reaction',
            'system', 'System message', 'template', 'Template',
            'template_named', 'Template: {x}', 'unsupported', 'Unsupported message',
            'contacts_many', '{x} contacts', 'contact_named', 'Contact: {x}',
            'contact', 'Contact', 'order', 'Order', 'order_one', 'Order (1 item)',
            'order_many', 'Order ({x} items)')
    end
$$;

-- A one-line preview of a message for conversation lists, in p_locale.
create function private.message_preview(p_type text, p_content jsonb, p_locale text) returns text
    language plpgsql immutable parallel safe
    set search_path = ''
as $$
declare
    v_labels jsonb := private.preview_labels(p_locale);
    v_body text := nullif(btrim(p_content ->> 'body'), '');
    v_caption text := nullif(btrim(p_content ->> 'caption'), '');
    v_name text;
    v_count integer;
    v_text text;
begin
    v_text := case p_type
        when 'text' then coalesce(v_body, v_labels ->> 'message')
        when 'image' then coalesce(v_caption, v_labels ->> 'photo')
        when 'video' then coalesce(v_caption, v_labels ->> 'video')
        when 'sticker' then v_labels ->> 'sticker'
        when 'audio' then case when (p_content ->> 'voice')::boolean is true
                               then v_labels ->> 'voice' else v_labels ->> 'audio' end
        when 'document' then coalesce(
            v_caption,
            replace(v_labels ->> 'document_named', '{x}', nullif(btrim(p_content ->> 'filename'), '')),
            v_labels ->> 'document')
        when 'location' then coalesce(
            replace(v_labels ->> 'location_named', '{x}',
                    coalesce(nullif(btrim(p_content ->> 'name'), ''), nullif(btrim(p_content ->> 'address'), ''))),
            v_labels ->> 'location')
        when 'interactive' then coalesce(nullif(btrim(p_content ->> 'title'), ''), v_body, v_labels ->> 'interactive')
        when 'button' then coalesce(nullif(btrim(p_content ->> 'text'), ''), nullif(btrim(p_content ->> 'payload'), ''),
                                    v_labels ->> 'button')
        when 'reaction' then coalesce(replace(v_labels ->> 'reacted', '{x}', nullif(p_content ->> 'emoji', '')),
                                      v_labels ->> 'unreacted')
        when 'system' then coalesce(v_body, v_labels ->> 'system')
        when 'template' then coalesce(v_body,
                                      replace(v_labels ->> 'template_named', '{x}', nullif(p_content ->> 'name', '')),
                                      v_labels ->> 'template')
        when 'unsupported' then v_labels ->> 'unsupported'
        else coalesce(v_body, v_labels ->> 'message')
    end;
    if p_type = 'contacts' then
        v_count := case when jsonb_typeof(p_content -> 'contacts') = 'array'
                        then jsonb_array_length(p_content -> 'contacts') else 0 end;
        v_name := nullif(btrim(p_content #>> '{contacts,0,name,formatted_name}'), '');
        v_text := case
            when v_count > 1 then replace(v_labels ->> 'contacts_many', '{x}', v_count::text)
            when v_name is not null then replace(v_labels ->> 'contact_named', '{x}', v_name)
            else v_labels ->> 'contact'
        end;
    elsif p_type = 'order' then
        v_count := case when jsonb_typeof(p_content -> 'product_items') = 'array'
                        then jsonb_array_length(p_content -> 'product_items') else 0 end;
        v_text := coalesce(
            nullif(btrim(p_content ->> 'text'), ''),
            case when v_count = 1 then v_labels ->> 'order_one'
                 when v_count > 1 then replace(v_labels ->> 'order_many', '{x}', v_count::text) end,
            v_labels ->> 'order');
    end if;
    v_text := btrim(regexp_replace(v_text, '\s+', ' ', 'g'));
    if length(v_text) > 100 then
        v_text := rtrim(left(v_text, 99), E'\u200d\ufe0e\ufe0f ') || '…';
    end if;
    return v_text;
end;
$$;

-- The trigger below was its only caller.
drop function private.message_preview(text, jsonb);

revoke execute on function
    private.preview_labels(text),
    private.message_preview(text, jsonb, text)
from public;
grant execute on function
    private.preview_labels(text),
    private.message_preview(text, jsonb, text)
to authenticated, service_role;

-- As in migration 002, with the preview in the workspace's locale.
create or replace function private.update_conversation_on_message() returns trigger
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
                then private.message_preview(l.type, l.content, w.locale)
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
    left join inbound i on i.conversation_id = l.conversation_id,
         public.workspaces w
    where c.id = l.conversation_id
      and w.id = c.workspace_id;
    return null;
end;
$$;

-- ---------------------------------------------------------------------------
-- Conversation search: one page of matches, in page order
-- ---------------------------------------------------------------------------

-- Replaced by private.search_conversation_page: collecting every match of
-- every workspace and then sorting them cost 91-138 ms (p95) for common names
-- at 200,000 conversations in one workspace (docs/PERFORMANCE.md).
drop function private.search_conversation_ids(uuid[], text);

-- The ids of up to p_limit conversations of one workspace matching p_search
-- and the list's filters, newest activity first, after the keyset cursor.
--
-- Matching (as before, plus profile names and usernames): input that is a
-- number (3+ digits, no letters) matches the phone's digits; otherwise every
-- word must occur in conversations.search_text (contact name, WhatsApp profile
-- name, username; accents and case folded, a leading @ ignored); when no
-- conversation of the workspace has them all, names close to the input match
-- (trigram word similarity, for typos).
--
-- Two ways to find a page, cheapest first (docs/PERFORMANCE.md has the
-- figures):
--   1. Walk the newest 2,000 conversations (from the cursor, with the filters)
--      in page order and keep the matches, stopping at a full page: a common
--      name fills it after a few hundred rows, whatever the workspace's size.
--      A walk that found a third of a page walks 8,000.
--   2. Otherwise the matches are rare, and the trigram index finds all of
--      them; they are few, so sorting them is cheap.
--
-- Why SECURITY DEFINER: LIKE and the pg_trgm operators are not leakproof, so
-- under RLS Postgres may not use them as index conditions. This helper reads
-- without RLS but applies the same rule itself (membership through
-- private.my_workspaces(), exactly what the policies check), returns ids only,
-- and the caller reads the rows under RLS again. It lives in `private`, which
-- PostgREST does not expose.
create function private.search_conversation_page(
    p_workspace_id uuid,
    p_search text,
    p_status text,
    p_is_read boolean,
    p_assigned_to uuid,
    p_limit integer,
    p_after_last_message_at timestamptz,
    p_after_id uuid
) returns setof uuid
    language plpgsql stable
    security definer
    rows 30
    set search_path = ''
as $$
declare
    c_window constant integer := 2000;
    v_query text := nullif(btrim(coalesce(p_search, '')), '');
    v_digits text;
    v_column text;
    v_folded text;
    v_patterns text[];
    v_indexed text;
    v_filters text := '';
    v_ids uuid[];
    v_window integer;
    v_complete boolean;
    v_any boolean;
    v_mode text;
    v_window_match text;
    v_index_match text;
    -- The planner underrates pattern matches and would rather walk a whole
    -- workspace in page order than ask the trigram index: around the
    -- statements that need the index, only bitmap scans are left.
    v_seqscan text := pg_catalog.current_setting('enable_seqscan');
    v_indexscan text := pg_catalog.current_setting('enable_indexscan');
begin
    if p_workspace_id is null or v_query is null
       or p_workspace_id not in (select private.my_workspaces()) then
        return;
    end if;

    v_digits := regexp_replace(v_query, '[^0-9]', '', 'g');
    if length(v_digits) >= 3 and v_query !~ '[[:alpha:]]' then
        v_column := 'c.phone';
        v_patterns := array[private.contains_pattern(v_digits)];
    else
        v_column := 'c.search_text';
        v_folded := btrim(regexp_replace(private.search_text(v_query), '(^|\s)@+', '\1', 'g'));
        v_patterns := array(
            select private.contains_pattern(w)
            from regexp_split_to_table(v_folded, '\s+') w
            where w <> ''
        );
        if cardinality(v_patterns) = 0 then
            return;
        end if;
    end if;
    -- The words the trigram index can use (3+ characters) as separate
    -- conditions, so the index intersects them; the others are rechecked.
    v_indexed := (
        select string_agg(format('%s like ($2)[%s]', v_column, i), ' and ')
        from generate_subscripts(v_patterns, 1) i
        where length(v_patterns[i]) >= 5
    );

    if p_status is not null then
        v_filters := v_filters || ' and c.status = $4';
    end if;
    if p_is_read is not null then
        v_filters := v_filters || ' and c.is_read = $5';
    end if;
    if p_assigned_to is not null then
        v_filters := v_filters || ' and c.assigned_to = $6';
    end if;
    if p_after_id is not null then
        v_filters := v_filters || ' and (c.last_message_at, c.id) < ($7, $8)';
    end if;

    -- Exact matches; then, only when no conversation of the workspace has all
    -- the words (whatever the filters, so a page past the last exact match
    -- stays empty), names close to the input. Each found the same two ways.
    foreach v_mode in array array['exact', 'close'] loop
        if v_mode = 'exact' then
            v_window_match := 's.t like all ($2)';
            v_index_match := coalesce(v_indexed || ' and ', '') || v_column || ' like all ($2)';
        else
            exit when v_column <> 'c.search_text';
            perform pg_catalog.set_config('enable_seqscan', 'off', true),
                    pg_catalog.set_config('enable_indexscan', 'off', true);
            execute format($q$
                select exists (
                    select 1 from public.conversations c
                    where c.workspace_id = $1 and %s)$q$, v_index_match)
                into v_any
                using p_workspace_id, v_patterns;
            perform pg_catalog.set_config('enable_seqscan', v_seqscan, true),
                    pg_catalog.set_config('enable_indexscan', v_indexscan, true);
            exit when v_any;
            v_window_match := 's.t operator(extensions.%>) $9';
            v_index_match := 'c.search_text operator(extensions.%>) $9';
        end if;

        -- 1. The newest conversations first, stopping at a full page. A walk
        -- that found a third of a page is tried once more, four times as long:
        -- at that density it should fill the page (exact matching only; word
        -- similarity costs too much a row).
        v_window := c_window;
        loop
            execute format($q$
                select array(
                    select s.id
                    from (select c.id, c.last_message_at, %s as t
                          from public.conversations c
                          where c.workspace_id = $1 %s
                          order by c.last_message_at desc, c.id desc
                          limit %s) s
                    where %s
                    order by s.last_message_at desc, s.id desc
                    limit $3)$q$, v_column, v_filters, v_window, v_window_match)
                into v_ids
                using p_workspace_id, v_patterns, p_limit, p_status, p_is_read, p_assigned_to,
                      p_after_last_message_at, p_after_id, v_folded;
            if cardinality(v_ids) >= p_limit then
                return query select unnest(v_ids);
                return;
            end if;
            -- Not a full page: did the walk see every candidate?
            execute format($q$
                select count(*) < %s from (select 1 from public.conversations c
                                           where c.workspace_id = $1 %s
                                           order by c.last_message_at desc, c.id desc
                                           limit %s) s$q$, v_window, v_filters, v_window)
                into v_complete
                using p_workspace_id, v_patterns, p_limit, p_status, p_is_read, p_assigned_to,
                      p_after_last_message_at, p_after_id;
            if v_complete and cardinality(v_ids) > 0 then
                return query select unnest(v_ids);
                return;
            end if;
            exit when v_complete or v_mode <> 'exact' or v_window > c_window
                   or cardinality(v_ids) * 3 < p_limit;
            v_window := c_window * 4;
        end loop;

        -- 2. Rare matches: all of them from the trigram index (unless the walk
        -- above already saw every candidate).
        if not v_complete then
            perform pg_catalog.set_config('enable_seqscan', 'off', true),
                    pg_catalog.set_config('enable_indexscan', 'off', true);
            execute format($q$
                select array(
                    select c.id
                    from public.conversations c
                    where c.workspace_id = $1 and %s %s
                    order by c.last_message_at desc, c.id desc
                    limit $3)$q$, v_index_match, v_filters)
                into v_ids
                using p_workspace_id, v_patterns, p_limit, p_status, p_is_read, p_assigned_to,
                      p_after_last_message_at, p_after_id, v_folded;
            perform pg_catalog.set_config('enable_seqscan', v_seqscan, true),
                    pg_catalog.set_config('enable_indexscan', v_indexscan, true);
            if cardinality(v_ids) > 0 then
                return query select unnest(v_ids);
                return;
            end if;
        end if;
    end loop;
end;
$$;


revoke execute on function
    private.search_conversation_page(uuid, text, text, boolean, uuid, integer, timestamptz, uuid)
from public, anon;
grant execute on function
    private.search_conversation_page(uuid, text, text, boolean, uuid, integer, timestamptz, uuid)
to authenticated, service_role;

-- ---------------------------------------------------------------------------
-- Conversation list and details, with the new columns
-- ---------------------------------------------------------------------------

drop function public.list_conversations(uuid, text, text, boolean, uuid, integer, timestamptz, uuid);
drop function public.get_conversation(uuid);

-- As in migration 004, plus user_id, profile_name and username, and two rules:
-- without p_workspace_id the caller's only workspace is listed, and a member
-- of several workspaces must name one (one workspace's inbox at a time; every
-- row also carries its workspace_id); a search finds its page through
-- private.search_conversation_page.
create function public.list_conversations(
    p_workspace_id uuid default null,
    p_search text default null,
    p_status text default null,
    p_is_read boolean default null,
    p_assigned_to uuid default null,
    p_limit integer default 30,
    p_after_last_message_at timestamptz default null,
    p_after_id uuid default null
) returns table (
    id uuid,
    workspace_id uuid,
    contact_id uuid,
    phone text,
    user_id text,
    profile_name text,
    username text,
    phone_number_id text,
    status text,
    is_read boolean,
    unread_count integer,
    last_customer_message_at timestamptz,
    last_message_at timestamptz,
    last_message_preview text,
    assigned_to uuid,
    created_at timestamptz,
    contact jsonb
)
    language plpgsql stable
    security invoker
    set search_path = ''
as $$
declare
    v_workspace_id uuid := p_workspace_id;
    v_workspaces uuid[];
    v_sql text;
    v_query text := nullif(btrim(coalesce(p_search, '')), '');
    v_ids uuid[];
begin
    if p_limit is null or p_limit < 1 or p_limit > 500 then
        raise invalid_parameter_value using message = 'p_limit must be between 1 and 500';
    end if;
    if p_status is not null and p_status not in ('active', 'archived') then
        raise invalid_parameter_value using message = 'p_status must be active or archived';
    end if;
    if (p_after_last_message_at is null) <> (p_after_id is null) then
        raise invalid_parameter_value
            using message = 'p_after_last_message_at and p_after_id go together';
    end if;
    if v_query is not null and length(v_query) > 200 then
        raise invalid_parameter_value using message = 'p_search is longer than 200 characters';
    end if;

    if v_workspace_id is null then
        v_workspaces := array(select private.my_workspaces());
        if cardinality(v_workspaces) > 1 then
            raise invalid_parameter_value using
                message = 'p_workspace_id is required: the caller belongs to several workspaces';
        end if;
        v_workspace_id := v_workspaces[1];
        if v_workspace_id is null then
            return;
        end if;
    end if;

    v_sql := $q$
        select c.id, c.workspace_id, c.contact_id, c.phone, c.user_id, c.profile_name,
               c.username, c.phone_number_id, c.status,
               c.is_read, c.unread_count, c.last_customer_message_at, c.last_message_at,
               c.last_message_preview, c.assigned_to, c.created_at,
               case when ct.id is null then null else jsonb_build_object(
                   'id', ct.id, 'name', ct.name, 'phone', ct.phone, 'user_id', ct.user_id,
                   'email', ct.email, 'city', ct.city,
                   'tags', coalesce((
                       select jsonb_agg(jsonb_build_object('id', t.id, 'name', t.name,
                                                           'color', t.color) order by t.name)
                       from public.contact_tags x
                       join public.tags t on t.id = x.tag_id
                       where x.contact_id = ct.id
                   ), '[]'::jsonb)) end
        from public.conversations c
        left join public.contacts ct on ct.id = c.contact_id
        where c.workspace_id = $1$q$;

    if v_query is not null then
        -- The page's ids, already filtered and after the cursor: fetched by
        -- primary key and checked under RLS again.
        v_ids := array(select private.search_conversation_page(
            v_workspace_id, v_query, p_status, p_is_read, p_assigned_to, p_limit,
            p_after_last_message_at, p_after_id));
        if cardinality(v_ids) = 0 then
            return;
        end if;
        v_sql := v_sql || ' and c.id = any ($7)';
    else
        if p_status is not null then
            v_sql := v_sql || ' and c.status = $2';
        end if;
        if p_is_read is not null then
            v_sql := v_sql || ' and c.is_read = $3';
        end if;
        if p_assigned_to is not null then
            v_sql := v_sql || ' and c.assigned_to = $4';
        end if;
        if p_after_id is not null then
            v_sql := v_sql || ' and (c.last_message_at, c.id) < ($5, $6)';
        end if;
    end if;

    v_sql := v_sql || ' order by c.last_message_at desc, c.id desc limit $8';

    return query execute v_sql
        using v_workspace_id, p_status, p_is_read, p_assigned_to,
              p_after_last_message_at, p_after_id, v_ids, p_limit;
end;
$$;

create function public.get_conversation(p_conversation_id uuid) returns table (
    id uuid,
    workspace_id uuid,
    contact_id uuid,
    phone text,
    user_id text,
    profile_name text,
    username text,
    phone_number_id text,
    status text,
    is_read boolean,
    unread_count integer,
    last_customer_message_at timestamptz,
    last_message_at timestamptz,
    last_message_preview text,
    assigned_to uuid,
    created_at timestamptz,
    contact jsonb,
    recent_orders_count integer
)
    language sql stable
    security invoker
    set search_path = ''
as $$
    select c.id, c.workspace_id, c.contact_id, c.phone, c.user_id, c.profile_name, c.username,
           c.phone_number_id, c.status,
           c.is_read, c.unread_count, c.last_customer_message_at, c.last_message_at,
           c.last_message_preview, c.assigned_to, c.created_at,
           case when ct.id is null then null else jsonb_build_object(
               'id', ct.id, 'name', ct.name, 'phone', ct.phone, 'user_id', ct.user_id,
               'email', ct.email, 'city', ct.city,
               'tags', coalesce((
                   select jsonb_agg(jsonb_build_object('id', t.id, 'name', t.name,
                                                       'color', t.color) order by t.name)
                   from public.contact_tags x
                   join public.tags t on t.id = x.tag_id
                   where x.contact_id = ct.id
               ), '[]'::jsonb)) end,
           case when c.contact_id is null then 0 else (
               select count(*)::integer
               from public.orders o
               where o.workspace_id = c.workspace_id
                 and o.contact_id = c.contact_id
                 and o.created_at >= now() - interval '30 days'
           ) end
    from public.conversations c
    left join public.contacts ct on ct.id = c.contact_id
    where c.id = p_conversation_id
$$;

revoke execute on function
    public.list_conversations(uuid, text, text, boolean, uuid, integer, timestamptz, uuid),
    public.get_conversation(uuid)
from public, anon;
grant execute on function
    public.list_conversations(uuid, text, text, boolean, uuid, integer, timestamptz, uuid),
    public.get_conversation(uuid)
to authenticated, service_role;

-- ---------------------------------------------------------------------------
-- Ingest: filing messages of customers with a phone, a user id or both
-- ---------------------------------------------------------------------------

-- The return type gains user_id, profile_name and username.
drop function private.inbound_message_rows(jsonb);
create function private.inbound_message_rows(p_messages jsonb)
returns table (
    workspace_id uuid, phone_number_id text, phone text, user_id text, profile_name text,
    username text, wamid text, type text, content jsonb, "timestamp" timestamptz,
    media_mime_type text, media_filename text
)
    language sql immutable
    set search_path = ''
as $$
    select * from jsonb_to_recordset(coalesce(p_messages, '[]')) as m(
        workspace_id uuid, phone_number_id text, phone text, user_id text, profile_name text,
        username text, wamid text, type text, content jsonb, "timestamp" timestamptz,
        media_mime_type text, media_filename text)
$$;

-- Finds or creates the conversation of every sender in p_messages (rows of
-- private.inbound_message_rows) and keeps their profile name and username.
--
-- The identity rule: a conversation is keyed by the phone when it has one, by
-- the user id otherwise.
--   * A delivery with a phone files under the conversation of that phone; one
--     with only a user id under the conversation holding that user id.
--   * A delivery with both joins the two: the phone's conversation takes the
--     user id when it has none (phone first, id later), and a conversation
--     known only by that user id takes the phone when no conversation has the
--     phone yet (id first, phone later). Either order ends in one
--     conversation, which later deliveries with either key find.
--   * When both already exist as two conversations (a phone-only delivery, then
--     an id-only one, before any delivery carried both), the phone's
--     conversation gets the message and each keeps its key; they are not merged.
--
-- Concurrent batches for the same person serialize on transaction locks on
-- its keys, bounded like migration 006's wamid locks: each key maps to one of
-- 32 buckets (namespace 2028), at most 32 advisory locks per transaction,
-- taken sorted and after the wamid locks, so lockers cannot deadlock. The
-- statements after the lock see what the other batch committed.
create function private.file_conversations(p_messages jsonb) returns void
    language plpgsql
    set search_path = ''
as $$
begin
    perform pg_catalog.pg_advisory_xact_lock(2028, b)
    from (select distinct pg_catalog.hashtext(k) & 31 as b
          from private.inbound_message_rows(p_messages) i,
               unnest(array['p' || i.workspace_id || i.phone, 'u' || i.workspace_id || i.user_id]) k
          where k is not null
          order by 1) buckets;

    -- Id first, phone later: the id's conversation takes the phone (the
    -- newest, when the batch has the id with several phones).
    update public.conversations c
    set phone = i.phone
    from (select distinct on (p.workspace_id, p.user_id) p.workspace_id, p.user_id, p.phone
          from (select distinct on (i.workspace_id, i.phone)
                       i.workspace_id, i.user_id, i.phone, i."timestamp"
                from private.inbound_message_rows(p_messages) i
                where i.phone is not null and i.user_id is not null
                order by i.workspace_id, i.phone, i."timestamp" desc) p
          order by p.workspace_id, p.user_id, p."timestamp" desc, p.phone) i
    where c.workspace_id = i.workspace_id
      and c.user_id = i.user_id
      and c.phone is null
      and not exists (select 1 from public.conversations x
                      where x.workspace_id = i.workspace_id and x.phone = i.phone);

    -- Senders with a phone; sorted so concurrent batches lock rows in one order.
    with people as (
        select distinct on (i.workspace_id, i.phone)
               i.workspace_id, i.phone, i.user_id, i.phone_number_id, i."timestamp",
               -- The latest name the batch carries for the person.
               (array_agg(i.profile_name) filter (where i.profile_name is not null) over w)[1]
                   as profile_name,
               (array_agg(i.username) filter (where i.username is not null) over w)[1] as username
        from private.inbound_message_rows(p_messages) i
        where i.phone is not null
        window w as (partition by i.workspace_id, i.phone order by i."timestamp" desc
                     rows between unbounded preceding and unbounded following)
        order by i.workspace_id, i.phone, i.user_id is null, i."timestamp" desc
    ), ranked as (
        -- One user id with two phones in a batch (a changed number): only the
        -- newest phone may take it, or the insert trips the user id's unique index.
        select p.*, row_number() over (partition by p.workspace_id, p.user_id
                                       order by p."timestamp" desc, p.phone) as user_rank
        from people p
    )
    insert into public.conversations (
        workspace_id, phone, user_id, phone_number_id, contact_id, profile_name, username)
    select p.workspace_id, p.phone,
           -- Never a user id another conversation holds (see the rule above).
           case when p.user_rank = 1
                 and not exists (select 1 from public.conversations x
                                 where x.workspace_id = p.workspace_id and x.user_id = p.user_id)
                then p.user_id end,
           p.phone_number_id,
           coalesce(
               (select k.id from public.contacts k
                where k.workspace_id = p.workspace_id and k.phone = p.phone),
               (select k.id from public.contacts k
                where k.workspace_id = p.workspace_id and k.user_id = p.user_id)),
           p.profile_name, p.username
    from ranked p
    order by p.workspace_id, p.phone
    on conflict (workspace_id, phone) do update
        set phone_number_id = excluded.phone_number_id,
            contact_id = coalesce(public.conversations.contact_id, excluded.contact_id),
            user_id = coalesce(public.conversations.user_id, excluded.user_id),
            profile_name = coalesce(excluded.profile_name, public.conversations.profile_name),
            username = coalesce(excluded.username, public.conversations.username)
        where public.conversations.phone_number_id is distinct from excluded.phone_number_id
           or (public.conversations.contact_id is null and excluded.contact_id is not null)
           or (public.conversations.user_id is null and excluded.user_id is not null)
           or public.conversations.profile_name is distinct from
              coalesce(excluded.profile_name, public.conversations.profile_name)
           or public.conversations.username is distinct from
              coalesce(excluded.username, public.conversations.username);

    -- Senders known only by their user id.
    with people as (
        select distinct on (i.workspace_id, i.user_id)
               i.workspace_id, i.user_id, i.phone_number_id,
               (array_agg(i.profile_name) filter (where i.profile_name is not null) over w)[1]
                   as profile_name,
               (array_agg(i.username) filter (where i.username is not null) over w)[1] as username
        from private.inbound_message_rows(p_messages) i
        where i.phone is null and i.user_id is not null
        window w as (partition by i.workspace_id, i.user_id order by i."timestamp" desc
                     rows between unbounded preceding and unbounded following)
        order by i.workspace_id, i.user_id, i."timestamp" desc
    )
    insert into public.conversations (
        workspace_id, user_id, phone_number_id, contact_id, profile_name, username)
    select p.workspace_id, p.user_id, p.phone_number_id,
           (select k.id from public.contacts k
            where k.workspace_id = p.workspace_id and k.user_id = p.user_id),
           p.profile_name, p.username
    from people p
    order by p.workspace_id, p.user_id
    on conflict (workspace_id, user_id) where user_id is not null do update
        set phone_number_id = excluded.phone_number_id,
            contact_id = coalesce(public.conversations.contact_id, excluded.contact_id),
            profile_name = coalesce(excluded.profile_name, public.conversations.profile_name),
            username = coalesce(excluded.username, public.conversations.username)
        where public.conversations.phone_number_id is distinct from excluded.phone_number_id
           or (public.conversations.contact_id is null and excluded.contact_id is not null)
           or public.conversations.profile_name is distinct from
              coalesce(excluded.profile_name, public.conversations.profile_name)
           or public.conversations.username is distinct from
              coalesce(excluded.username, public.conversations.username);
end;
$$;

-- As in migration 006 (the row cap, bounded wamid locks), with conversations
-- found or created by private.file_conversations and each message filed under
-- its sender's conversation: the phone's when it has one, else the user id's.
-- p_messages: [{workspace_id, phone_number_id, phone, user_id, profile_name,
-- username, wamid, type, content, timestamp, media_mime_type, media_filename}].
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
        perform private.file_conversations(p_messages);

        with inserted as (
            insert into public.messages (
                conversation_id, workspace_id, wamid, direction, type, content, status,
                "timestamp", media_mime_type, media_filename)
            select coalesce(cp.id, cu.id), i.workspace_id, i.wamid, 'inbound', i.type, i.content,
                   'delivered', i."timestamp", i.media_mime_type, i.media_filename
            from private.inbound_message_rows(p_messages) i
            left join public.conversations cp
                   on cp.workspace_id = i.workspace_id and cp.phone = i.phone
            left join public.conversations cu
                   on cu.workspace_id = i.workspace_id and cu.user_id = i.user_id
                  and i.phone is null
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
    private.inbound_message_rows(jsonb),
    private.file_conversations(jsonb)
from public, anon, authenticated;
grant execute on function
    private.inbound_message_rows(jsonb),
    private.file_conversations(jsonb)
to service_role;
