-- Bounded work per ingest transaction (migration 006): wamid locks by bucket,
-- a row cap per ingest call, and the default lock table of hosted projects.
begin;
select plan(8);

select is(current_setting('max_locks_per_transaction'), '64',
          'the stack keeps Postgres''s default lock table, as hosted projects do');

-- 34,000 distinct wamids: one lock each filled the shared lock table (53200).
select lives_ok(
    $$select private.lock_wamids(array(select 'wamid.B' || n from generate_series(1, 34000) n))$$,
    'locking 34,000 wamids does not exhaust the lock table'
);
select cmp_ok(
    (select count(*)::integer from pg_catalog.pg_locks
     where locktype = 'advisory' and pid = pg_catalog.pg_backend_pid()),
    '<=', 64,
    'and holds at most 64 advisory locks'
);
select is(
    (select count(*)::integer from pg_catalog.pg_locks
     where locktype = 'advisory' and pid = pg_catalog.pg_backend_pid() and granted),
    (select count(*)::integer from pg_catalog.pg_locks
     where locktype = 'advisory' and pid = pg_catalog.pg_backend_pid()),
    'all of them granted'
);

-- The same wamid is always the same lock: the park-versus-apply race stays closed.
select is(
    (select array_agg(objid order by objid) from pg_catalog.pg_locks
     where locktype = 'advisory' and pid = pg_catalog.pg_backend_pid()
       and classid = 2026),
    (select array_agg(distinct (pg_catalog.hashtext('wamid.B' || n) & 63)::oid)
     from generate_series(1, 34000) n),
    'each wamid maps to one fixed bucket'
);

set local role service_role;
select throws_ok(
    $$select public.ingest_webhook_batch(
          '{}',
          '[]',
          (select jsonb_agg(jsonb_build_object(
               'workspace_id', '11111111-1111-4111-8111-111111111111',
               'wamid', 'wamid.S' || n, 'status', 'read', 'timestamp', now()))
           from generate_series(1, 34000) n),
          '[]')$$,
    '54000', 'ingest batch of 34000 rows exceeds the cap of 3000',
    'an ingest call over 3,000 rows is refused before any work'
);
select lives_ok(
    $$select public.ingest_webhook_batch(
          '{}',
          '[]',
          (select jsonb_agg(jsonb_build_object(
               'workspace_id', '11111111-1111-4111-8111-111111111111',
               'wamid', 'wamid.T' || n, 'status', 'read', 'timestamp', now()))
           from generate_series(1, 3000) n),
          '[]')$$,
    'an ingest call of 3,000 rows goes through'
);
reset role;
select is(
    (select count(*)::integer from public.pending_message_updates where wamid like 'wamid.T%'),
    3000,
    'and parks its 3,000 statuses for messages not here yet'
);

select * from finish();
rollback;
