-- CRM foundation: workspaces, members, contacts, tags, orders and WhatsApp
-- channels, isolated per workspace by row-level security.
--
-- Deploys unchanged with `supabase db push`: no roles, nothing in auth or
-- realtime, explicit grants (hosted projects no longer expose new tables).

create extension if not exists pg_trgm with schema extensions;
create extension if not exists unaccent with schema extensions;

-- Helpers live here, never in an exposed schema: PostgREST cannot call them,
-- but policies evaluated as `authenticated` can.
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- Functions are executable by PUBLIC by default, and a per-schema
-- `alter default privileges ... revoke` cannot take that away (per-schema
-- defaults only add to the global ones). So every function created in
-- `private` is revoked from PUBLIC explicitly after its definition, and the
-- helpers policies need are granted by name.

-- ---------------------------------------------------------------------------
-- Generic helpers
-- ---------------------------------------------------------------------------

create function private.update_updated_at_column() returns trigger
    language plpgsql
    set search_path = ''
as $$
begin
    new.updated_at := now();
    return new;
end;
$$;

create function private.is_time_zone(p_name text) returns boolean
    language sql stable
    set search_path = ''
as $$
    select exists (select 1 from pg_catalog.pg_timezone_names where name = p_name)
$$;

-- Accent- and case-folded text for fuzzy search. Declared immutable so it can
-- back indexes; the unaccent dictionary is fixed for a deployment.
create function private.search_text(p_value text) returns text
    language sql immutable parallel safe
    set search_path = ''
as $$
    select pg_catalog.lower(extensions.unaccent('extensions.unaccent'::regdictionary, coalesce(p_value, '')))
$$;

-- ---------------------------------------------------------------------------
-- Workspaces and membership
-- ---------------------------------------------------------------------------

create table public.workspaces (
    id uuid primary key default gen_random_uuid(),
    name text not null check (length(btrim(name)) between 1 and 200),
    -- Presentation only: every stored instant is a timestamptz.
    timezone text not null default 'America/Bogota' check (private.is_time_zone(timezone)),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table public.workspace_members (
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    user_id uuid not null references auth.users (id) on delete cascade,
    role text not null default 'agent' check (role in ('owner', 'admin', 'agent')),
    created_at timestamptz not null default now(),
    primary key (workspace_id, user_id)
);
-- The primary key leads with workspace_id; membership lookups go by user.
create index idx_workspace_members_user on public.workspace_members (user_id, workspace_id);

-- Security definer so policies on workspace_members itself do not recurse.
-- Every policy calls it, once per table a query touches: PL/pgSQL keeps its
-- plan for the session (a SQL function here was planned again on each call,
-- 0.08 ms instead of 0.02 ms; bench/inbox.py, docs/PERFORMANCE.md).
create function private.my_workspaces() returns setof uuid
    language plpgsql stable security definer
    set search_path = ''
as $$
declare
    -- auth.uid(), inline: a call to it would be planned again on every call.
    v_user_id uuid := coalesce(
        nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), ''),
        (nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid;
begin
    return query
        select m.workspace_id
        from public.workspace_members m
        where m.user_id = v_user_id;
end;
$$;

create function private.is_workspace_member(p_workspace_id uuid) returns boolean
    language sql stable security definer
    set search_path = ''
as $$
    select exists (
        select 1
        from public.workspace_members m
        where m.workspace_id = p_workspace_id
          and m.user_id = (select auth.uid())
    )
$$;

create function private.my_admin_workspaces() returns setof uuid
    language sql stable security definer
    set search_path = ''
as $$
    select m.workspace_id
    from public.workspace_members m
    where m.user_id = (select auth.uid())
      and m.role in ('owner', 'admin')
$$;

-- BEFORE INSERT: fills workspace_id for rows that belong to a parent.
-- Messages always take their conversation's workspace (whatever was sent);
-- other rows, when none was given, take the caller's only workspace.
create function private.set_workspace_id() returns trigger
    language plpgsql
    set search_path = ''
as $$
declare
    v_workspace uuid;
    v_count int;
begin
    if tg_table_name = 'messages' then
        select c.workspace_id into v_workspace
        from public.conversations c
        where c.id = new.conversation_id;
        if v_workspace is null then
            raise foreign_key_violation using
                message = 'conversation not found',
                detail = format('conversation_id %s does not exist', new.conversation_id);
        end if;
        new.workspace_id := v_workspace;
        return new;
    end if;

    if new.workspace_id is null then
        select count(*), min(w::text)::uuid into v_count, v_workspace
        from private.my_workspaces() w;
        if v_count <> 1 then
            raise not_null_violation using
                message = 'workspace_id is required',
                detail = 'the caller does not belong to exactly one workspace';
        end if;
        new.workspace_id := v_workspace;
    end if;
    return new;
end;
$$;

revoke execute on all functions in schema private from public;
grant execute on function
    private.my_workspaces(),
    private.is_workspace_member(uuid),
    private.my_admin_workspaces(),
    private.search_text(text),
    private.is_time_zone(text)
to authenticated, service_role;
-- Trigger functions need no EXECUTE grant: it is checked when the trigger is
-- created, not when it fires.

create trigger workspaces_updated_at
    before update on public.workspaces
    for each row execute function private.update_updated_at_column();

-- ---------------------------------------------------------------------------
-- Contacts, tags, orders
-- ---------------------------------------------------------------------------

create table public.contacts (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    name text check (name is null or length(name) <= 200),
    phone text not null check (phone ~ '^\+[1-9][0-9]{6,14}$'),
    email text check (email is null or email ~ '^[^@\s]+@[^@\s]+$'),
    city text,
    search_name text generated always as (private.search_text(name)) stored,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint contacts_workspace_phone_key unique (workspace_id, phone),
    -- Target of composite foreign keys that keep children in the same workspace.
    constraint contacts_workspace_id_id_key unique (workspace_id, id)
);
create index idx_contacts_name_trgm on public.contacts using gin (search_name extensions.gin_trgm_ops);
create index idx_contacts_phone_trgm on public.contacts using gin (phone extensions.gin_trgm_ops);

create table public.tags (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    name text not null check (length(btrim(name)) between 1 and 60),
    color text check (color is null or color ~ '^#[0-9a-fA-F]{6}$'),
    created_at timestamptz not null default now(),
    constraint tags_workspace_name_key unique (workspace_id, name),
    constraint tags_workspace_id_id_key unique (workspace_id, id)
);

create table public.contact_tags (
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    contact_id uuid not null,
    tag_id uuid not null,
    created_at timestamptz not null default now(),
    primary key (contact_id, tag_id),
    foreign key (workspace_id, contact_id) references public.contacts (workspace_id, id) on delete cascade,
    foreign key (workspace_id, tag_id) references public.tags (workspace_id, id) on delete cascade
);
create index idx_contact_tags_workspace_contact on public.contact_tags (workspace_id, contact_id);
create index idx_contact_tags_workspace_tag on public.contact_tags (workspace_id, tag_id);
create index idx_contact_tags_tag on public.contact_tags (tag_id);

create table public.orders (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    contact_id uuid,
    total numeric(14, 2) not null check (total >= 0),
    currency text not null default 'COP' check (currency ~ '^[A-Z]{3}$'),
    status text not null default 'pending'
        check (status in ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    foreign key (workspace_id, contact_id)
        references public.contacts (workspace_id, id) on delete set null (contact_id)
);
create index idx_orders_workspace_contact on public.orders (workspace_id, contact_id, created_at desc);
create index idx_orders_contact on public.orders (contact_id, created_at desc);

create trigger contacts_set_workspace before insert on public.contacts
    for each row execute function private.set_workspace_id();
create trigger tags_set_workspace before insert on public.tags
    for each row execute function private.set_workspace_id();
create trigger contact_tags_set_workspace before insert on public.contact_tags
    for each row execute function private.set_workspace_id();
create trigger orders_set_workspace before insert on public.orders
    for each row execute function private.set_workspace_id();
create trigger contacts_updated_at before update on public.contacts
    for each row execute function private.update_updated_at_column();
create trigger orders_updated_at before update on public.orders
    for each row execute function private.update_updated_at_column();

-- ---------------------------------------------------------------------------
-- WhatsApp channels (one per 360dialog number)
-- ---------------------------------------------------------------------------

create table public.whatsapp_channels (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references public.workspaces (id) on delete cascade,
    phone_number_id text not null unique check (phone_number_id ~ '^[0-9]{1,32}$'),
    display_phone_number text,
    name text,
    -- Secrets: column grants below keep them away from everyone but service_role.
    api_key text not null check (length(api_key) > 0),
    webhook_secret_hash text check (webhook_secret_hash ~ '^[0-9a-f]{64}$'),
    app_secret text,
    verify_token text,
    send_read_receipts boolean not null default true,
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint whatsapp_channels_workspace_id_id_key unique (workspace_id, id)
);
create index idx_whatsapp_channels_workspace on public.whatsapp_channels (workspace_id);
create index idx_whatsapp_channels_secret on public.whatsapp_channels (webhook_secret_hash)
    where webhook_secret_hash is not null;
create index idx_whatsapp_channels_verify_token on public.whatsapp_channels (verify_token)
    where verify_token is not null;

create trigger whatsapp_channels_updated_at before update on public.whatsapp_channels
    for each row execute function private.update_updated_at_column();

-- ---------------------------------------------------------------------------
-- Row-level security: one policy per role and command
-- ---------------------------------------------------------------------------

alter table public.workspaces enable row level security;
alter table public.workspace_members enable row level security;
alter table public.contacts enable row level security;
alter table public.tags enable row level security;
alter table public.contact_tags enable row level security;
alter table public.orders enable row level security;
alter table public.whatsapp_channels enable row level security;

create policy workspaces_select on public.workspaces for select to authenticated
    using (id in (select private.my_workspaces()));
create policy workspaces_update on public.workspaces for update to authenticated
    using (id in (select private.my_admin_workspaces()))
    with check (id in (select private.my_admin_workspaces()));

create policy workspace_members_select on public.workspace_members for select to authenticated
    using (workspace_id in (select private.my_workspaces()));

create policy contacts_select on public.contacts for select to authenticated
    using (workspace_id in (select private.my_workspaces()));
create policy contacts_insert on public.contacts for insert to authenticated
    with check (workspace_id in (select private.my_workspaces()));
create policy contacts_update on public.contacts for update to authenticated
    using (workspace_id in (select private.my_workspaces()))
    with check (workspace_id in (select private.my_workspaces()));
create policy contacts_delete on public.contacts for delete to authenticated
    using (workspace_id in (select private.my_workspaces()));

create policy tags_select on public.tags for select to authenticated
    using (workspace_id in (select private.my_workspaces()));
create policy tags_insert on public.tags for insert to authenticated
    with check (workspace_id in (select private.my_workspaces()));
create policy tags_update on public.tags for update to authenticated
    using (workspace_id in (select private.my_workspaces()))
    with check (workspace_id in (select private.my_workspaces()));
create policy tags_delete on public.tags for delete to authenticated
    using (workspace_id in (select private.my_workspaces()));

create policy contact_tags_select on public.contact_tags for select to authenticated
    using (workspace_id in (select private.my_workspaces()));
create policy contact_tags_insert on public.contact_tags for insert to authenticated
    with check (workspace_id in (select private.my_workspaces()));
create policy contact_tags_delete on public.contact_tags for delete to authenticated
    using (workspace_id in (select private.my_workspaces()));

create policy orders_select on public.orders for select to authenticated
    using (workspace_id in (select private.my_workspaces()));
create policy orders_insert on public.orders for insert to authenticated
    with check (workspace_id in (select private.my_workspaces()));
create policy orders_update on public.orders for update to authenticated
    using (workspace_id in (select private.my_workspaces()))
    with check (workspace_id in (select private.my_workspaces()));
create policy orders_delete on public.orders for delete to authenticated
    using (workspace_id in (select private.my_workspaces()));

create policy whatsapp_channels_select on public.whatsapp_channels for select to authenticated
    using (workspace_id in (select private.my_workspaces()));
create policy whatsapp_channels_update on public.whatsapp_channels for update to authenticated
    using (workspace_id in (select private.my_admin_workspaces()))
    with check (workspace_id in (select private.my_admin_workspaces()));

-- ---------------------------------------------------------------------------
-- Grants (nothing for anon; the service role bypasses RLS)
-- ---------------------------------------------------------------------------

grant select on public.workspaces, public.workspace_members to authenticated;
grant update (name, timezone) on public.workspaces to authenticated;
grant select, insert, delete on public.contact_tags to authenticated;
grant select, delete on public.contacts, public.tags, public.orders to authenticated;
grant insert (workspace_id, name, phone, email, city), update (name, phone, email, city)
    on public.contacts to authenticated;
grant insert (workspace_id, name, color), update (name, color) on public.tags to authenticated;
grant insert (workspace_id, contact_id, total, currency, status), update (contact_id, total, currency, status)
    on public.orders to authenticated;
grant select (id, workspace_id, phone_number_id, display_phone_number, name,
              send_read_receipts, is_active, created_at, updated_at)
    on public.whatsapp_channels to authenticated;
grant update (name, send_read_receipts, is_active) on public.whatsapp_channels to authenticated;

grant select, insert, update, delete on
    public.workspaces, public.workspace_members, public.contacts, public.tags,
    public.contact_tags, public.orders, public.whatsapp_channels
to service_role;
