-- Agent API: the conversation list (filters, fuzzy search, keyset pages),
-- one conversation with its details, and message history pages.
--
-- The three API functions are SECURITY INVOKER: they run as the calling agent
-- (PostgREST RPC with the agent's token), so row-level security decides what
-- they return, exactly as for a plain table read. Only `authenticated` (and
-- the service role) may execute them. The one SECURITY DEFINER helper
-- (private.search_conversation_ids, not exposed) says why it needs to be.

-- ---------------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------------

-- LIKE pattern that matches p_value anywhere, with LIKE's wildcards escaped.
create function private.contains_pattern(p_value text) returns text
    language sql immutable parallel safe
    set search_path = ''
as $$
    select '%' || replace(replace(replace(p_value, '\', '\\'), '%', '\%'), '_', '\_') || '%'
$$;

-- A per-schema default privilege cannot take EXECUTE away from PUBLIC: revoke by name.
revoke execute on function private.contains_pattern(text) from public;
grant execute on function private.contains_pattern(text) to authenticated, service_role;

-- ---------------------------------------------------------------------------
-- Conversation search
-- ---------------------------------------------------------------------------

-- The ids of the caller's conversations matching p_search, in the given
-- workspaces (only those the caller belongs to).
--
-- Why SECURITY DEFINER: LIKE and the pg_trgm operators are not leakproof, so
-- under RLS Postgres may not use them as index conditions and every search
-- would scan all contacts of every workspace. This helper reads without RLS
-- but applies the same rule itself (membership through private.my_workspaces(),
-- exactly what the policies check), returns ids only, and the caller filters
-- them under RLS again. It lives in `private`, which PostgREST does not expose.
--
-- Matching folds accents and case: every word must occur in the contact's
-- name ("jose alv" finds "José Álvarez"); when no name has them all, names
-- close to the input match instead (trigram word similarity, for typos such as
-- "alvares"); input that is a number (3+ digits, no letters) matches the
-- phone ("3001234", "+57 300 123" find +573001234567).
create function private.search_conversation_ids(p_workspaces uuid[], p_search text)
returns setof uuid
    language plpgsql stable
    security definer
    rows 100
    set search_path = ''
as $$
declare
    v_workspaces uuid[];
    v_query text := nullif(btrim(coalesce(p_search, '')), '');
    v_folded text;
    v_words text[];
    v_longest text;
    v_digits text;
    v_seqscan text;
begin
    v_workspaces := array(
        select w from unnest(p_workspaces) w
        where w in (select private.my_workspaces())
    );
    if v_query is null or cardinality(v_workspaces) = 0 then
        return;
    end if;

    v_digits := regexp_replace(v_query, '[^0-9]', '', 'g');
    if length(v_digits) >= 3 and v_query !~ '[[:alpha:]]' then
        return query
            select c.id
            from public.conversations c
            where c.workspace_id = any (v_workspaces)
              and c.phone like private.contains_pattern(v_digits);
        return;
    end if;

    v_folded := private.search_text(v_query);
    v_words := array(
        select private.contains_pattern(w)
        from regexp_split_to_table(v_folded, '\s+') w
        where w <> ''
    );
    v_longest := (
        select private.contains_pattern(w)
        from regexp_split_to_table(v_folded, '\s+') w
        order by length(w) desc
        limit 1
    );
    return query
        select c.id
        from public.contacts k
        join public.conversations c on c.contact_id = k.id
        where k.workspace_id = any (v_workspaces)
          and c.workspace_id = k.workspace_id
          and k.search_name like v_longest
          and k.search_name like all (v_words);
    if found then
        return;
    end if;

    -- Typo tolerance. Word similarity is costly per row and the planner
    -- underrates it, so take the candidates from the trigram index first,
    -- ANDed with the workspace index inside the fence: only the caller's
    -- workspaces' rows are rechecked (not every workspace's similar names).
    v_seqscan := pg_catalog.current_setting('enable_seqscan');
    perform pg_catalog.set_config('enable_seqscan', 'off', true);
    return query execute $q$
        select c.id
        from (select k.id, k.workspace_id
              from public.contacts k
              where k.search_name operator(extensions.%>) $2
                and k.workspace_id = any ($1)
              offset 0) k
        join public.conversations c on c.contact_id = k.id
        where c.workspace_id = k.workspace_id$q$
        using v_workspaces, v_folded;
    perform pg_catalog.set_config('enable_seqscan', v_seqscan, true);
end;
$$;

-- ---------------------------------------------------------------------------
-- Conversation list
-- ---------------------------------------------------------------------------

-- Newest activity first, keyset pagination on (last_message_at, id): pass the
-- last row's pair as p_after_* to get the next page (never an OFFSET).
--
-- p_search: see private.search_conversation_ids.
--
-- Dynamic SQL so each call gets a plan for the filters it actually uses (an
-- `x is null or ...` condition would hide the indexes); every value is a
-- parameter, the text only ever comes from the fixed fragments below.
--
-- The contact card (contact and its tags) is built inside the query, here and
-- in get_conversation: as a function called per row (never inlined, since it
-- sets search_path) it evaluated the tags policies again for every row,
-- 4.9 ms a page instead of 1.3.
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

    -- One workspace (the usual case) lets the (workspace_id, ..., last_message_at,
    -- id) indexes return rows already in page order.
    v_workspaces := case
        when p_workspace_id is not null then array[p_workspace_id]
        else array(select private.my_workspaces())
    end;

    v_sql := $q$
        select c.id, c.workspace_id, c.contact_id, c.phone, c.phone_number_id, c.status,
               c.is_read, c.unread_count, c.last_customer_message_at, c.last_message_at,
               c.last_message_preview, c.assigned_to, c.created_at,
               case when ct.id is null then null else jsonb_build_object(
                   'id', ct.id, 'name', ct.name, 'phone', ct.phone, 'email', ct.email,
                   'city', ct.city,
                   'tags', coalesce((
                       select jsonb_agg(jsonb_build_object('id', t.id, 'name', t.name,
                                                           'color', t.color) order by t.name)
                       from public.contact_tags x
                       join public.tags t on t.id = x.tag_id
                       where x.contact_id = ct.id
                   ), '[]'::jsonb)) end
        from public.conversations c
        left join public.contacts ct on ct.id = c.contact_id
        where $q$;
    v_sql := v_sql || case when cardinality(v_workspaces) = 1
                           then 'c.workspace_id = ($1)[1]'
                           else 'c.workspace_id = any ($1)' end;
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

    if v_query is not null then
        -- The matching ids first, as a value: the plan then knows how many there
        -- are. As `c.id in (select private.search_conversation_ids(...))` it saw
        -- the helper's ROWS 100 and, under RLS, hashed every conversation of the
        -- workspace instead of fetching the few matches by primary key.
        v_ids := array(select private.search_conversation_ids(v_workspaces, v_query));
        if cardinality(v_ids) = 0 then
            return;
        end if;
        v_sql := v_sql || ' and c.id = any ($7)';
    end if;

    v_sql := v_sql || ' order by c.last_message_at desc, c.id desc limit $8';

    return query execute v_sql
        using v_workspaces, p_status, p_is_read, p_assigned_to,
              p_after_last_message_at, p_after_id, v_ids, p_limit;
end;
$$;

-- ---------------------------------------------------------------------------
-- One conversation with its details
-- ---------------------------------------------------------------------------

-- The list's columns plus the contact's orders of the last 30 days; no row
-- when the caller cannot see the conversation.
create function public.get_conversation(p_conversation_id uuid) returns table (
    id uuid,
    workspace_id uuid,
    contact_id uuid,
    phone text,
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
    select c.id, c.workspace_id, c.contact_id, c.phone, c.phone_number_id, c.status,
           c.is_read, c.unread_count, c.last_customer_message_at, c.last_message_at,
           c.last_message_preview, c.assigned_to, c.created_at,
           case when ct.id is null then null else jsonb_build_object(
               'id', ct.id, 'name', ct.name, 'phone', ct.phone, 'email', ct.email,
               'city', ct.city,
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

-- ---------------------------------------------------------------------------
-- Message history
-- ---------------------------------------------------------------------------

-- Newest first; pass the last row's ("timestamp", id) as p_before_* for the
-- next (older) page. Two static queries so the keyset condition is an index
-- condition on idx_messages_conversation, not a filter.
create function public.list_messages(
    p_conversation_id uuid,
    p_limit integer default 50,
    p_before_timestamp timestamptz default null,
    p_before_id uuid default null
) returns setof public.messages
    language plpgsql stable
    security invoker
    set search_path = ''
as $$
begin
    if p_limit is null or p_limit < 1 or p_limit > 500 then
        raise invalid_parameter_value using message = 'p_limit must be between 1 and 500';
    end if;
    if (p_before_timestamp is null) <> (p_before_id is null) then
        raise invalid_parameter_value using message = 'p_before_timestamp and p_before_id go together';
    end if;
    if p_before_id is null then
        return query
            select m.*
            from public.messages m
            where m.conversation_id = p_conversation_id
            order by m."timestamp" desc, m.id desc
            limit p_limit;
    else
        return query
            select m.*
            from public.messages m
            where m.conversation_id = p_conversation_id
              and (m."timestamp", m.id) < (p_before_timestamp, p_before_id)
            order by m."timestamp" desc, m.id desc
            limit p_limit;
    end if;
end;
$$;

-- ---------------------------------------------------------------------------
-- Grants: agents only (functions are executable by PUBLIC by default)
-- ---------------------------------------------------------------------------

revoke execute on function private.search_conversation_ids(uuid[], text) from public, anon;
grant execute on function private.search_conversation_ids(uuid[], text) to authenticated, service_role;

revoke execute on function
    public.list_conversations(uuid, text, text, boolean, uuid, integer, timestamptz, uuid),
    public.get_conversation(uuid),
    public.list_messages(uuid, integer, timestamptz, uuid)
from public, anon;
grant execute on function
    public.list_conversations(uuid, text, text, boolean, uuid, integer, timestamptz, uuid),
    public.get_conversation(uuid),
    public.list_messages(uuid, integer, timestamptz, uuid)
to authenticated, service_role;
