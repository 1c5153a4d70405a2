-- The platform pieces the migrations and the other tests rely on: the API
-- roles, auth.uid()/auth.jwt()/auth.role() reading the request's claims,
-- the extensions and the realtime publication.
begin;
select plan(24);

select has_role('anon', 'role anon exists');
select has_role('authenticated', 'role authenticated exists');
select has_role('service_role', 'role service_role exists');
select ok((select rolbypassrls from pg_roles where rolname = 'service_role'),
          'service_role bypasses RLS');
select ok(not (select rolbypassrls from pg_roles where rolname = 'authenticated'),
          'authenticated does not bypass RLS');
select ok(not (select rolbypassrls from pg_roles where rolname = 'anon'),
          'anon does not bypass RLS');
select ok(not (select rolsuper from pg_roles where rolname = 'postgres'),
          'postgres is not a superuser (as on hosted projects)');
select ok((select rolbypassrls from pg_roles where rolname = 'postgres'), 'postgres bypasses RLS');
select ok((select rolcanlogin and not rolinherit from pg_roles where rolname = 'authenticator'),
          'authenticator logs in and does not inherit its roles');
select ok(not (select rolcanlogin from pg_roles where rolname = 'anon'), 'anon cannot log in');
select ok(pg_has_role('postgres', 'authenticated', 'member'),
          'postgres may switch to authenticated (tests change identity this way)');

select has_schema('private', 'schema private exists');
select ok(not has_schema_privilege('anon', 'private', 'usage'),
          'anon cannot use schema private');
select has_extension('extensions', 'pg_trgm', 'pg_trgm is installed in extensions');
select has_extension('extensions', 'unaccent', 'unaccent is installed in extensions');

-- auth.uid() and friends read request.jwt.claims.
select is(auth.uid(), null, 'auth.uid() is null without claims');
set local request.jwt.claims = '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated","email":"x@example.com"}';
select is(auth.uid(), 'a0000000-0000-4000-8000-0000000000a1'::uuid, 'auth.uid() reads sub from the claims');
select is(auth.role(), 'authenticated', 'auth.role() reads role from the claims');
select is(auth.jwt() ->> 'email', 'x@example.com', 'auth.jwt() returns the claims');
set local role authenticated;
select is((select auth.uid()), 'a0000000-0000-4000-8000-0000000000a1'::uuid,
          'auth.uid() works as authenticated');
reset role;

set local role anon;
select throws_ok('select count(*) from auth.users', '42501', null, 'anon cannot read auth.users');
reset role;

select is((select count(*)::integer from pg_publication where pubname = 'supabase_realtime'), 1,
          'publication supabase_realtime exists');
select is((select pubowner::regrole::text from pg_publication where pubname = 'supabase_realtime'), 'postgres',
          'supabase_realtime is owned by postgres (migrations can add tables)');
select ok(current_setting('wal_level') = 'logical', 'wal_level is logical (realtime needs it)');

select * from finish();
rollback;
