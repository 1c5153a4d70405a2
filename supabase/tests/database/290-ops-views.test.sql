-- The operator's views (migration 011): readable by the service role only, and
-- each counts what it says.
begin;
select plan(14);

\set agent_a '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated"}'

set local role anon;
select throws_ok(format('select * from public.%I', v), '42501', null, format('anon cannot read %s', v))
from unnest(array['ops_inbox_lag', 'ops_dead_letters', 'ops_parked_updates', 'ops_pending_replies']) v;
reset role;

set local role authenticated;
set local request.jwt.claims = :'agent_a';
select throws_ok(format('select * from public.%I', v), '42501', null, format('a member cannot read %s', v))
from unnest(array['ops_inbox_lag', 'ops_dead_letters', 'ops_parked_updates', 'ops_pending_replies']) v;
reset role;

-- A known state: whatever earlier tests left is set aside inside this transaction.
delete from public.webhook_events;
delete from public.pending_message_updates;
update public.messages set status = 'sent' where status = 'pending';

insert into public.webhook_events (workspace_id, body, status, received_at, next_attempt_at, attempts, last_error)
values
    ('11111111-1111-4111-8111-111111111111', '{"n":1}', 'pending', now() - interval '90 seconds', now(), 0, null),
    ('11111111-1111-4111-8111-111111111111', '{"n":2}', 'pending', now(), now() + interval '1 minute', 1, 'boom'),
    ('11111111-1111-4111-8111-111111111111', '{"n":3}', 'dead', now(), now(), 8, 'first'),
    ('11111111-1111-4111-8111-111111111111', '{"n":4}', 'dead', now(), now(), 8, 'last'),
    ('11111111-1111-4111-8111-111111111111', '{"n":5}', 'done', now() - interval '1 day', now(), 1, null);
update public.webhook_events set locked_until = now() + interval '1 minute' where body = '{"n":1}';
insert into public.pending_message_updates (workspace_id, wamid, kind, payload, received_at)
values ('11111111-1111-4111-8111-111111111111', 'wamid.PARKED', 'status', '{}', now() - interval '1 hour');
insert into public.messages (conversation_id, direction, type, content, status, created_at)
values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'text', '{"body":"a"}', 'pending', now() - interval '10 minutes'),
       ('f1000000-0000-4000-8000-000000000001', 'outbound', 'text', '{"body":"b"}', 'pending', now()),
       ('f1000000-0000-4000-8000-000000000001', 'inbound', 'text', '{"body":"c"}', 'pending', now() - interval '1 hour');

set local role service_role;
select results_eq(
    'select pending, due, leased, retrying from public.ops_inbox_lag',
    'values (2, 0, 1, 1)',
    'inbox lag: two pending, one leased, one waiting for its backoff; done and dead are not lag');
select ok((select oldest_age_seconds between 89 and 100 from public.ops_inbox_lag),
          'inbox lag: the oldest pending event waited 90 seconds');
select results_eq('select dead, newest_error from public.ops_dead_letters', $$values (2, 'last')$$,
                  'dead letters: both, with the newest error');
select results_eq('select parked, oldest_age_seconds between 3599 and 3700 from public.ops_parked_updates',
                  'values (1, true)', 'parked updates: one, an hour old');
select results_eq('select pending, stale from public.ops_pending_replies', 'values (2, 1)',
                  'pending replies: outbound only, one of them stale');
reset role;

select is(has_table_privilege('service_role', 'public.ops_dead_letters', 'insert'), false,
          'the service role only reads the views');

select * from finish();
rollback;
