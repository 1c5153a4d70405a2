-- The worker's claim (migration 005): a lease is locked_until on a pending
-- event, taken in due order, and it never changes an indexed column.
begin;
select plan(16);

truncate public.webhook_events;
-- Inserted in reverse: due order is not id order.
insert into public.webhook_events (workspace_id, channel_id, body, next_attempt_at)
select '11111111-1111-4111-8111-111111111111', null, format('{"n":%s}', n),
       now() - make_interval(secs => 10 - n)
from generate_series(3, 1, -1) n;
-- Waiting for its backoff: not due.
insert into public.webhook_events (workspace_id, body, next_attempt_at)
values ('11111111-1111-4111-8111-111111111111', '{"n":4}', now() + interval '1 minute');

set local role service_role;
select set_eq(
    $$select body from public.claim_webhook_events(2, 60)$$,
    array['{"n":1}', '{"n":2}'],
    'the longest due events are claimed first, whatever their ids'
);
reset role;

select results_eq(
    $$select status, attempts, locked_until = now() + interval '60 seconds'
      from public.webhook_events where body in ('{"n":1}', '{"n":2}')$$,
    $$values ('pending', 1, true), ('pending', 1, true)$$,
    'a claimed event stays pending, with one more attempt and a lease'
);

set local role service_role;
select results_eq(
    $$select body from public.claim_webhook_events(10, 60)$$,
    array['{"n":3}'],
    'leased events and events waiting for their backoff are not claimed again'
);
reset role;

set local role service_role;
select is(public.replay_webhook_events(
              (select id from public.webhook_events where body = '{"n":2}')), 0,
          'an event leased by a worker cannot be replayed from under it');
reset role;
select results_eq(
    $$select attempts, locked_until is not null from public.webhook_events where body = '{"n":2}'$$,
    $$values (1, true)$$,
    'the refused replay left its attempts and lease alone'
);

update public.webhook_events set locked_until = now() - interval '1 second' where body = '{"n":1}';
set local role service_role;
select results_eq(
    $$select body, attempts from public.claim_webhook_events(10, 60)$$,
    $$values ('{"n":1}'::text, 2)$$,
    'an event whose lease ran out (its worker died) is claimed again'
);
reset role;

set local role service_role;
select lives_ok(
    $$select public.ingest_webhook_batch(
          array(select id from public.webhook_events where body = '{"n":1}'), '[]', '[]', '[]')$$,
    'the service role ingests a claimed event'
);
reset role;
select results_eq(
    $$select status, locked_until is null from public.webhook_events where body = '{"n":1}'$$,
    $$values ('done', true)$$,
    'an ingested event is done and holds no lease'
);

set local role service_role;
select is_empty($$select 1 from public.claim_webhook_events(10, 60)$$,
                'nothing is due while every due event is leased or done');
reset role;

select throws_ok(
    $$update public.webhook_events set status = 'processing' where body = '{"n":2}'$$,
    '23514', null, 'there is no processing status any more'
);

-- Why the claim is cheap.
select hasnt_index('public', 'webhook_events', 'idx_webhook_events_leased',
                   'no index on the lease: claiming updates no indexed column');
select ok(
    not exists (
        select 1 from pg_catalog.pg_index i
        where i.indrelid = 'public.webhook_events'::regclass
          and (pg_catalog.pg_get_indexdef(i.indexrelid) ~ '(attempts|locked_until)'
               or coalesce(pg_catalog.pg_get_expr(i.indpred, i.indrelid), '')
                  ~ '(attempts|locked_until)')
    ),
    'attempts and locked_until are in no index, expression or predicate'
);
select ok(
    (select 'fillfactor=50' = any (reloptions) from pg_catalog.pg_class
     where oid = 'public.webhook_events'::regclass),
    'webhook_events leaves room on each page for its lease update'
);
select ok(
    (select pg_catalog.pg_get_expr(indpred, indrelid) from pg_catalog.pg_index
     where indexrelid = 'public.idx_webhook_events_ready'::regclass) = '(status = ''pending''::text)',
    'the ready index holds pending events only'
);

set local role service_role;
select is(public.replay_webhook_events(
              (select id from public.webhook_events where body = '{"n":1}')), 1,
          'a done event can be replayed');
select is(public.replay_webhook_events(
              (select id from public.webhook_events where body = '{"n":4}')), 1,
          'a pending event no worker holds can be replayed (it waited for its backoff)');
reset role;

select * from finish();
rollback;
