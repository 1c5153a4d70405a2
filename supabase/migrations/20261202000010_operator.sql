-- Operator commands (`python -m service workspace|member ...`) without SQL.
--
-- Members are added by the email of an existing Supabase Auth user, and
-- listed with their emails; auth.users is not exposed through PostgREST and
-- hosted projects grant the service role nothing on it, so these two reads
-- are security definer functions, executable by the service role only.

create function public.operator_user_id(p_email text) returns uuid
    language plpgsql stable security definer
    set search_path = ''
as $$
declare
    v_ids uuid[];
begin
    -- Supabase Auth stores emails lowercased; more than one match (SSO
    -- identities share an email) is refused rather than guessed.
    select pg_catalog.array_agg(u.id) into v_ids
    from (
        select u.id from auth.users u where u.email = pg_catalog.lower(pg_catalog.btrim(p_email)) limit 2
    ) u;
    if pg_catalog.cardinality(v_ids) > 1 then
        raise exception 'more than one user has this email' using errcode = '21000';
    end if;
    return v_ids[1];
end;
$$;

create function public.operator_workspace_members(p_workspace_id uuid)
returns table (user_id uuid, email text, role text, created_at timestamptz)
    language sql stable security definer
    set search_path = ''
as $$
    select m.user_id, u.email::text, m.role, m.created_at
    from public.workspace_members m
    left join auth.users u on u.id = m.user_id
    where m.workspace_id = p_workspace_id
    order by m.created_at, m.user_id
$$;

revoke execute on function
    public.operator_user_id(text),
    public.operator_workspace_members(uuid)
from public, anon, authenticated;
grant execute on function
    public.operator_user_id(text),
    public.operator_workspace_members(uuid)
to service_role;
