-- The reply sweeper (migration 014): only replies pending past the timeout are
-- failed, as "outcome unknown"; a sender's late outcome replaces that once;
-- nothing else ever leaves `failed`; only the service role may call either.
begin;
select plan(15);

\set agent_a '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated"}'

-- Who may call (4).
select ok(not has_function_privilege(r, 'public.sweep_pending_replies(integer, integer)', 'execute'),
          format('%s cannot sweep', r))
from unnest(array['anon', 'authenticated']) r;
select ok(not has_function_privilege('authenticated',
              'public.record_reply_outcome(uuid, uuid, text, timestamptz, text, integer, text)', 'execute'),
          'an agent cannot record a reply''s outcome');
select ok(not has_table_privilege('authenticated', 'public.reply_idempotency_keys', 'select'),
          'agents still cannot read idempotency keys or sweep marks');

-- A known state: earlier tests' pending rows are set aside inside this transaction.
update public.messages set status = 'sent' where status = 'pending';
update public.reply_idempotency_keys set swept_at = null;

set local role service_role;
create temp table r on commit drop as
select (public.open_reply('f1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-0000000000a1',
                          'text', jsonb_build_object('body', k), null, null, k)).id as id, k
from unnest(array['stale', 'fresh', 'late-sent', 'late-failed', 'known-failed']) k;
select public.record_reply_outcome((select id from r where k = 'known-failed'),
    'a0000000-0000-4000-8000-0000000000a1', 'failed', now(), null, 131026, 'Message undeliverable');
reset role;
update public.messages set created_at = now() - interval '10 minutes'
where id in (select id from r where k <> 'fresh');
-- An inbound row stuck in pending is not a reply: never swept.
insert into public.messages (conversation_id, direction, type, content, status, created_at)
values ('f1000000-0000-4000-8000-000000000001', 'inbound', 'text', '{"body":"x"}', 'pending',
        now() - interval '1 hour');
grant select on r to service_role;

set local role service_role;
select throws_ok('select public.sweep_pending_replies(0, 10)', '22023', null, 'a zero timeout is refused');
select throws_ok('select public.sweep_pending_replies(60, 0)', '22023', null, 'the batch is bounded');
select results_eq(
    'select count(*)::integer from public.sweep_pending_replies(300, 100) s join r on r.id = s',
    'values (3)', 'the three replies pending past 5 minutes are swept');
select results_eq(
    $$select k, status, error_code is null, coalesce(error_message like 'outcome unknown:%', false)
      from r join public.messages m on m.id = r.id order by k$$,
    $$values ('fresh', 'pending', true, false), ('known-failed', 'failed', false, false), ('late-failed', 'failed', true, true),
             ('late-sent', 'failed', true, true), ('stale', 'failed', true, true)$$,
    'swept replies are failed with the unknown outcome; the fresh one waits');
select is((select count(*)::integer from public.messages where direction = 'inbound' and status = 'pending'),
          1, 'inbound rows are not swept');
select results_eq('select pending, stale, outcome_unknown from public.ops_pending_replies',
                  'values (1, 0, 3)', 'the ops view agrees: one fresh pending, none stale, three unknown');
select is_empty('select * from public.sweep_pending_replies(300, 100)', 'a second sweep finds nothing');

-- The late sender (4).
select results_eq(
    $$select status, wamid, error_message from public.record_reply_outcome(
          (select id from r where k = 'late-sent'), 'a0000000-0000-4000-8000-0000000000a1',
          'sent', now(), 'wamid.SWEPT.1', null, null)$$,
    $$values ('sent', 'wamid.SWEPT.1', null::text)$$, 'a late success replaces the unknown outcome');
select results_eq(
    $$select status, error_code from public.record_reply_outcome(
          (select id from r where k = 'late-failed'), 'a0000000-0000-4000-8000-0000000000a1',
          'failed', now(), null, 131047, 'Re-engagement message')$$,
    $$values ('failed', 131047)$$, 'a late failure replaces it with Meta''s reason');
select is_empty(
    $$select * from public.record_reply_outcome(
          (select id from r where k = 'late-failed'), 'a0000000-0000-4000-8000-0000000000a1',
          'sent', now(), 'wamid.SWEPT.2', null, null)$$,
    'once known, a failure is final');
reset role;
update public.messages set status = 'sent', wamid = 'wamid.SWEPT.3'
where id = (select id from r where k = 'known-failed');
select is((select status from public.messages where id = (select id from r where k = 'known-failed')),
          'failed', 'a failure the sweep did not make never moves, even for the owner');

select * from finish();
rollback;
