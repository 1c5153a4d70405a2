-- What the Supabase Postgres image and `supabase start` set up before user
-- migrations run, recreated for plain Debian PostgreSQL 15.
--
-- Runs once per cluster, as the bootstrap superuser `supabase_admin`.
-- It is deliberately NOT under supabase/migrations/: hosted projects already
-- have all of this, and `supabase db push` must never try to create it.
-- Sources and reasoning: ../shared/reference/supabase.md, section 1 and the
-- appendix. Differences from hosted Supabase are listed in docs/STACK.md.

\set ON_ERROR_STOP on

begin;

-- Roles ---------------------------------------------------------------------
-- `postgres` ends up as the image leaves it after its demotion migration:
-- not a superuser, but owner of the database and able to bypass RLS.
create role postgres login createrole createdb replication bypassrls password 'postgres';
alter database postgres owner to postgres;

create role supabase_auth_admin noinherit createrole login password 'postgres';

create role anon nologin inherit;
create role authenticated nologin inherit;
create role service_role nologin inherit bypassrls;
create role authenticator login noinherit password 'postgres';

grant anon, authenticated, service_role to authenticator;
-- Lets tests and migrations `set role authenticated` the way they do on Supabase.
grant anon, authenticated, service_role to postgres;

alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
alter role authenticator set lock_timeout = '8s';

-- extensions schema ---------------------------------------------------------
create schema extensions authorization postgres;
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgcrypto with schema extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
alter role postgres set search_path = "$user", public, extensions;

-- public schema -------------------------------------------------------------
-- No default grants for objects postgres creates: hosted projects stopped
-- auto-exposing new tables on 2026-10-30, so migrations must grant explicitly
-- and a missing grant shows up here first.
grant usage on schema public to postgres, anon, authenticated, service_role;
grant create on schema public to postgres;

-- PostgREST's default exposed schemas include graphql_public even though
-- pg_graphql is off by default now; keep the (empty) schema so the same
-- PostgREST settings work.
create schema graphql_public authorization postgres;
grant usage on schema graphql_public to anon, authenticated, service_role;

-- auth schema (owned by Supabase Auth; user SQL cannot create objects here) -
create schema auth authorization supabase_auth_admin;
grant usage on schema auth to postgres, anon, authenticated, service_role;

create table auth.users (
    instance_id uuid,
    id uuid primary key,
    aud varchar(255),
    role varchar(255),
    email varchar(255) unique,
    encrypted_password varchar(255),
    email_confirmed_at timestamptz,
    invited_at timestamptz,
    phone text unique default null,
    phone_confirmed_at timestamptz,
    last_sign_in_at timestamptz,
    raw_app_meta_data jsonb,
    raw_user_meta_data jsonb,
    is_super_admin boolean,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    banned_until timestamptz,
    deleted_at timestamptz,
    is_sso_user boolean not null default false,
    is_anonymous boolean not null default false
);
alter table auth.users owner to supabase_auth_admin;
alter table auth.users enable row level security;
grant all on auth.users to postgres, service_role;

create function auth.uid() returns uuid
    language sql stable set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;

create function auth.role() returns text
    language sql stable set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;

create function auth.email() returns text
    language sql stable set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.email', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$$;

create function auth.jwt() returns jsonb
    language sql stable set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
    to postgres, anon, authenticated, service_role;

-- realtime schema ------------------------------------------------------------
-- Not here: stack/stack.sh installs Realtime's own tenant schema (the file
-- named by REALTIME_SCHEMA_FILE) right after this bootstrap, then creates the
-- daily partitions of realtime.messages the way the Realtime server does.
-- The dump grants to dashboard_user, a role every hosted project has.
create role dashboard_user nocreatedb nocreaterole noreplication;

-- supabase_realtime publication, owned by postgres --------------------------
set role postgres;
create publication supabase_realtime;
reset role;

-- Migration history, as the Supabase CLI keeps it ---------------------------
create schema supabase_migrations authorization postgres;
create table supabase_migrations.schema_migrations (
    version text primary key,
    statements text[],
    name text
);
alter table supabase_migrations.schema_migrations owner to postgres;

-- PostgREST schema-cache reload after DDL, as the image's event triggers do -
create function extensions.pgrst_ddl_watch() returns event_trigger
    language plpgsql set search_path = ''
as $$
begin
    perform pg_catalog.pg_notify('pgrst', 'reload schema');
end;
$$;
create event trigger pgrst_ddl_watch on ddl_command_end
    execute procedure extensions.pgrst_ddl_watch();
create event trigger pgrst_drop_watch on sql_drop
    execute procedure extensions.pgrst_ddl_watch();
revoke execute on function extensions.pgrst_ddl_watch() from public;

-- pgTAP for `supabase/tests` (the CLI installs it on demand) ----------------
create extension if not exists pgtap with schema extensions;

commit;
