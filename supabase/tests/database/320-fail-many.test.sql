-- Migration 015: fail_webhook_events fails many events in one call, with the
-- rule of fail_webhook_event, for the service role only, and bounded.
begin;
select plan(8);

insert into public.webhook_events (workspace_id, body, status, attempts)
select w.id, 'fail-many-' || n, 'pending', a
from public.workspaces w, (values (1, 1), (2, 8), (3, 2)) as v(n, a)
where w.name = 'Tienda Demo A';

select is(
    (select count(*)::int from public.fail_webhook_events((
        select jsonb_agg(jsonb_build_object('id', id, 'error', 'boom ' || body,
                                            'max_attempts', case when body = 'fail-many-3' then 0 else 8 end))
        from public.webhook_events where body like 'fail-many-%'))),
    3, 'one call fails all three');
select is((select status from public.webhook_events where body = 'fail-many-1'), 'pending',
          'under its attempts: retried later');
select is((select status from public.webhook_events where body = 'fail-many-2'), 'dead',
          'at its attempts: dead');
select is((select status from public.webhook_events where body = 'fail-many-3'), 'dead',
          'max_attempts 0: dead at once');
select is((select last_error from public.webhook_events where body = 'fail-many-1'), 'boom fail-many-1',
          'each keeps its own reason');

select throws_ok(
    $$ select * from public.fail_webhook_events((select jsonb_agg(jsonb_build_object('id', g, 'error', 'x', 'max_attempts', 1)) from generate_series(1, 1001) g)) $$,
    '22023', null, 'more than 1,000 failures in one call are refused');

select ok(not has_function_privilege('authenticated', 'public.fail_webhook_events(jsonb)', 'execute'),
          'agents cannot call it');
select ok(not has_function_privilege('anon', 'public.fail_webhook_events(jsonb)', 'execute'),
          'anon cannot call it');

select * from finish();
rollback;
