-- Catalog lint: generic rules every migration (present and future) must
-- follow. Each rule is a query over the catalog; the suite fails on:
--   1. a table in public without row-level security;
--   2. a foreign key whose columns are not the leading columns of an index;
--   3. a function without a fixed search_path (proconfig);
--   4. a security-definer function that anon may execute;
--   5. a policy calling auth.uid()/auth.jwt()/auth.role()/auth.email()
--      outside a `(select ...)` (evaluated per row instead of once).
-- Objects of the platform (auth, realtime, extensions, storage, ...) and of
-- extensions are not ours and are skipped; policies are checked everywhere,
-- since ours may sit on realtime.messages or storage.objects.
-- After checking the real catalog, the rules are run against deliberately
-- bad objects created (and rolled back) here, to prove each one can fail.
begin;
select plan(12);

create temp view lint_schemas as
select n.oid, n.nspname
from pg_namespace n
where n.nspname not like 'pg\_%'
  and n.nspname not in ('information_schema', 'auth', 'extensions', 'realtime', '_realtime', 'storage', 'graphql',
                        'graphql_public', 'supabase_migrations', 'supabase_functions', 'vault', 'pgsodium',
                        'pgsodium_masks', 'pgbouncer', 'net', 'cron', 'pgmq', '_analytics', 'tests');

-- 1. tables in public without RLS
create temp view lint_rls_disabled as
select format('public.%I', c.relname) collate "default" as item
from pg_class c
where c.relnamespace = 'public'::regnamespace
  and c.relkind in ('r', 'p')
  and not c.relrowsecurity
  and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e');

-- 2. foreign keys not covered by the leading columns of an index (in any order)
create temp view lint_unindexed_fk as
select format('%I.%I.%I (%s)', s.nspname, c.relname, con.conname,
              (select string_agg(a.attname::text, ', ' order by k.ord)
               from unnest(con.conkey) with ordinality k(attnum, ord)
               join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum)) collate "default" as item
from pg_constraint con
join pg_class c on c.oid = con.conrelid
join lint_schemas s on s.oid = c.relnamespace
where con.contype = 'f'
  and not exists (
      select 1
      from pg_index i
      where i.indrelid = con.conrelid
        and i.indisvalid
        and i.indnkeyatts >= cardinality(con.conkey)
        and (select array_agg(x order by x)
             from unnest((string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(con.conkey)]) x)
            = (select array_agg(x order by x) from unnest(con.conkey) x)
  );

-- 3. functions without a fixed search_path
create temp view lint_mutable_search_path as
select format('%I.%I(%s)', s.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) collate "default" as item
from pg_proc p
join lint_schemas s on s.oid = p.pronamespace
where p.prokind in ('f', 'p')
  and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) cfg where cfg like 'search_path=%')
  and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e');

-- 4. security-definer functions anon may execute (PUBLIC counts: functions
-- are executable by PUBLIC unless revoked, and a per-schema
-- `alter default privileges ... revoke` does not change that)
create temp view lint_anon_security_definer as
select format('%I.%I(%s)', s.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) collate "default" as item
from pg_proc p
join lint_schemas s on s.oid = p.pronamespace
where p.prosecdef
  and has_function_privilege('anon', p.oid, 'execute')
  and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e');

-- 5. policies with auth.*() calls not wrapped in a select. Postgres shows a
-- wrapped call as `( SELECT auth.uid() AS uid)` or `( SELECT (auth.jwt() ->> ...))`;
-- every call must be one of those.
create temp view lint_unwrapped_auth as
select format('%s.%s: %s', p.schemaname, p.tablename, p.policyname) collate "default" as item
from pg_policies p
cross join lateral (select coalesce(p.qual, '') || ' ' || coalesce(p.with_check, '') as expr) e
where regexp_count(e.expr, 'auth\.(uid|jwt|role|email)\(\)')
      > regexp_count(e.expr, '\(\s*SELECT\s+\(*\s*auth\.(uid|jwt|role|email)\(\)', 1, 'i');

-- The real catalog -----------------------------------------------------------------
select is_empty('select item from lint_rls_disabled order by 1',
                'every table in public has row-level security enabled');
select is_empty('select item from lint_unindexed_fk order by 1',
                'every foreign key is covered by the leading columns of an index');
select is_empty('select item from lint_mutable_search_path order by 1',
                'every function has a fixed search_path');
select is_empty('select item from lint_anon_security_definer order by 1',
                'no security-definer function is executable by anon');
select is_empty('select item from lint_unwrapped_auth order by 1',
                'every auth.uid()/auth.jwt()/auth.role() call in a policy is wrapped in a select');
select ok((select count(*) from lint_schemas where nspname in ('public', 'private')) = 2,
          'the lint covers the public and private schemas');

-- Each rule catches a bad object --------------------------------------------------------
create table public.zz_lint_probe (
    id integer primary key,
    workspace_id uuid references public.workspaces (id)           -- no index: flagged
);
create table public.zz_lint_probe_fk (
    workspace_id uuid,
    contact_id uuid,
    created_at timestamptz,
    foreign key (workspace_id, contact_id) references public.contacts (workspace_id, id)
);
create index zz_lint_probe_fk_gap on public.zz_lint_probe_fk (workspace_id, created_at, contact_id); -- not leading: flagged
create table public.zz_lint_probe_fk_ok (
    workspace_id uuid,
    contact_id uuid,
    foreign key (workspace_id, contact_id) references public.contacts (workspace_id, id)
);
create index zz_lint_probe_fk_ok_idx on public.zz_lint_probe_fk_ok (contact_id, workspace_id);  -- any order: fine
alter table public.zz_lint_probe_fk enable row level security;
alter table public.zz_lint_probe_fk_ok enable row level security;

create function public.zz_lint_probe_fn() returns integer language sql as 'select 1';              -- flagged
create function private.zz_lint_probe_fn_ok() returns integer language sql set search_path = '' as 'select 1';
create function private.zz_lint_probe_sd() returns integer
    language sql security definer set search_path = '' as 'select 1';                               -- flagged
create function private.zz_lint_probe_sd_ok() returns integer
    language sql security definer set search_path = '' as 'select 1';
revoke execute on function private.zz_lint_probe_sd_ok() from public;

select results_eq('select item from lint_rls_disabled order by 1',
                  array['public.zz_lint_probe'],
                  'rule 1 flags a public table without RLS (and only that)');
select results_eq('select item from lint_unindexed_fk order by 1',
                  array['public.zz_lint_probe.zz_lint_probe_workspace_id_fkey (workspace_id)',
                        'public.zz_lint_probe_fk.zz_lint_probe_fk_workspace_id_contact_id_fkey (workspace_id, contact_id)'],
                  'rule 2 flags unindexed and not-leading foreign keys, not a covering index in another order');
select results_eq('select item from lint_mutable_search_path order by 1',
                  array['public.zz_lint_probe_fn()'],
                  'rule 3 flags a function without search_path');
select results_eq('select item from lint_anon_security_definer order by 1',
                  array['private.zz_lint_probe_sd()'],
                  'rule 4 flags a security-definer function left executable by PUBLIC, even in private');

alter table public.zz_lint_probe enable row level security;
create policy zz_bad on public.zz_lint_probe for select to authenticated
    using (workspace_id = auth.uid());
create policy zz_mixed on public.zz_lint_probe for update to authenticated
    using ((select auth.uid()) is not null)
    with check (workspace_id = auth.uid());
create policy zz_jwt on public.zz_lint_probe for insert to authenticated
    with check (auth.jwt() ->> 'role' = 'authenticated');
create policy zz_ok on public.zz_lint_probe for delete to authenticated
    using (workspace_id = (select auth.uid())
           and (select auth.jwt() ->> 'role') = 'authenticated'
           and (select auth.role()) = 'authenticated');

select results_eq('select item from lint_unwrapped_auth order by 1',
                  array['public.zz_lint_probe: zz_bad', 'public.zz_lint_probe: zz_jwt', 'public.zz_lint_probe: zz_mixed'],
                  'rule 5 flags unwrapped auth calls, also next to wrapped ones, and accepts wrapped ones');
select is_empty('select item from lint_rls_disabled', 'rule 1 is satisfied once RLS is enabled');

select * from finish();
rollback;
