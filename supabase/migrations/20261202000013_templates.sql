-- Message templates: the only messages WhatsApp delivers outside the 24-hour
-- customer service window. 360dialog lists a channel's templates; the service
-- keeps a copy per channel (refreshed by `template refresh`, by the worker
-- every TEMPLATE_REFRESH_SECONDS and after 360dialog refused a template), so
-- the agent API can say which templates a conversation may use and refuse a
-- wrong one before anything is sent. Members read their workspace's copy;
-- only the service role writes it.

create table public.whatsapp_templates (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null,
    channel_id uuid not null,
    name text not null check (name ~ '^[a-z0-9_]+$' and length(name) <= 512),
    language text not null check (language ~ '^[A-Za-z]{2,3}(_[A-Za-z0-9]{2,8})?$'),
    -- Lower case, as the service stores it: approved, pending, rejected,
    -- paused, disabled, ... (only `approved` may be sent).
    status text not null check (status ~ '^[a-z_]{1,40}$'),
    category text check (category is null or category ~ '^[a-z_]{1,40}$'),
    -- Meta's components (HEADER, BODY, FOOTER, BUTTONS) as 360dialog lists them.
    components jsonb not null default '[]'
        check (jsonb_typeof(components) = 'array' and octet_length(components::text) <= 65536),
    refreshed_at timestamptz not null default now(),
    -- The channel's own workspace, so no row can point at another workspace's channel.
    constraint whatsapp_templates_channel_fkey foreign key (workspace_id, channel_id)
        references public.whatsapp_channels (workspace_id, id) on delete cascade,
    constraint whatsapp_templates_channel_name_language_key unique (channel_id, name, language)
);
-- The policy column leads; the foreign key's columns are covered as well.
create index idx_whatsapp_templates_workspace_channel
    on public.whatsapp_templates (workspace_id, channel_id);

alter table public.whatsapp_templates enable row level security;

create policy whatsapp_templates_select on public.whatsapp_templates for select to authenticated
    using (workspace_id in (select private.my_workspaces()));

-- A channel's whole list in one transaction: what 360dialog no longer lists
-- goes, the rest is inserted or updated. A reader never sees half a refresh.
create function public.replace_channel_templates(p_channel_id uuid, p_templates jsonb)
    returns integer
    language plpgsql
    set search_path = ''
as $$
declare
    v_workspace_id uuid;
    v_count integer;
begin
    if jsonb_typeof(p_templates) is distinct from 'array' then
        raise invalid_parameter_value using message = 'p_templates must be a JSON array';
    end if;
    select c.workspace_id into v_workspace_id
    from public.whatsapp_channels c where c.id = p_channel_id;
    if v_workspace_id is null then
        raise foreign_key_violation using message = 'no such channel';
    end if;
    delete from public.whatsapp_templates t
    where t.channel_id = p_channel_id
      and not exists (
          select 1 from jsonb_array_elements(p_templates) e
          where e ->> 'name' = t.name and e ->> 'language' = t.language);
    insert into public.whatsapp_templates (
        workspace_id, channel_id, name, language, status, category, components, refreshed_at)
    select v_workspace_id, p_channel_id, e ->> 'name', e ->> 'language', e ->> 'status',
           e ->> 'category', coalesce(e -> 'components', '[]'), now()
    from jsonb_array_elements(p_templates) e
    on conflict (channel_id, name, language) do update
        set status = excluded.status,
            category = excluded.category,
            components = excluded.components,
            refreshed_at = excluded.refreshed_at;
    get diagnostics v_count = row_count;
    return v_count;
end;
$$;

revoke all on public.whatsapp_templates from anon, authenticated;
grant select on public.whatsapp_templates to authenticated;
grant select, insert, update, delete on public.whatsapp_templates to service_role;

revoke execute on function public.replace_channel_templates(uuid, jsonb)
    from public, anon, authenticated;
grant execute on function public.replace_channel_templates(uuid, jsonb) to service_role;
