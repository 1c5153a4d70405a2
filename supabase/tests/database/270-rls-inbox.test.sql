-- The webhook inbox holds raw deliveries of every workspace: only the service
-- role may touch its tables and call its functions.
begin;
select plan(26);

\set agent_a '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated"}'

-- Tables ----------------------------------------------------------------------------------------
set local role anon;
select throws_ok(format('select * from public.%I', t), '42501', null, format('anon cannot read %s', t))
from unnest(array['webhook_events', 'pending_message_updates']) t;
reset role;

set local role authenticated;
set local request.jwt.claims = :'agent_a';
select throws_ok(format('select * from public.%I', t), '42501', null,
                 format('a member cannot read %s', t))
from unnest(array['webhook_events', 'pending_message_updates']) t;
select throws_ok($$insert into public.webhook_events (workspace_id, body)
                   values ('11111111-1111-4111-8111-111111111111', '{}')$$,
                 '42501', null, 'a member cannot write the inbox');
select throws_ok($$update public.webhook_events set status = 'dead'$$, '42501', null,
                 'a member cannot change inbox events');
select throws_ok($$delete from public.pending_message_updates$$, '42501', null,
                 'a member cannot drop parked updates');
reset role;

-- Functions: no EXECUTE for anon or authenticated, EXECUTE for service_role -------------------
select ok(not has_function_privilege(r, f, 'execute'), format('%s cannot execute %s', r, f))
from unnest(array['anon', 'authenticated']) r,
     unnest(array[
         'public.enqueue_webhook_events(jsonb)',
         'public.claim_webhook_events(integer, integer)',
         'public.ingest_webhook_batch(bigint[], jsonb, jsonb, jsonb)',
         'public.fail_webhook_event(bigint, text, integer)',
         'public.replay_webhook_events(bigint)',
         'public.prune_webhook_events(integer)',
         'private.apply_message_statuses(jsonb)',
         'private.lock_wamids(text[])'
     ]) f;

set local role authenticated;
set local request.jwt.claims = :'agent_a';
select throws_ok($$select public.claim_webhook_events(10, 60)$$, '42501', null,
                 'a member cannot claim inbox events through the API');
reset role;

set local role service_role;
select lives_ok($$select count(*) from public.webhook_events$$, 'the service role reads the inbox');
select lives_ok($$select public.claim_webhook_events(0, 60)$$, 'the service role claims events');
reset role;

select * from finish();
rollback;
