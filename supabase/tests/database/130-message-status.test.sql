-- Status only moves forward, enforced by messages_enforce_status:
--   pending < sent < delivered < read (strictly increasing moves only);
--   -> failed from anything except read; failed is final.
-- A refused move is silent: the old status, status_timestamp, error_code
-- and error_message stay. All 25 (from, to) pairs, then a late-webhook story.
begin;
set local timezone = 'UTC';
select plan(32);

insert into public.workspaces (id, name) values ('aaaaaaaa-0000-4000-8000-0000000003a1', 'Status W');
insert into public.conversations (id, workspace_id, phone, phone_number_id) values
    ('aaaaaaaa-f000-4000-8000-0000000003c1', 'aaaaaaaa-0000-4000-8000-0000000003a1', '+573001130001', '900000000000301');

-- The rule, written out by hand (not computed by the function under test).
create temp table transitions (from_status text, to_status text, allowed boolean) on commit drop;
insert into transitions values
    ('pending', 'pending', false), ('pending', 'sent', true), ('pending', 'delivered', true),
    ('pending', 'read', true), ('pending', 'failed', true),
    ('sent', 'pending', false), ('sent', 'sent', false), ('sent', 'delivered', true),
    ('sent', 'read', true), ('sent', 'failed', true),
    ('delivered', 'pending', false), ('delivered', 'sent', false), ('delivered', 'delivered', false),
    ('delivered', 'read', true), ('delivered', 'failed', true),
    ('read', 'pending', false), ('read', 'sent', false), ('read', 'delivered', false),
    ('read', 'read', false), ('read', 'failed', false),
    ('failed', 'pending', false), ('failed', 'sent', false), ('failed', 'delivered', false),
    ('failed', 'read', false), ('failed', 'failed', false);

select is((select count(*)::integer from transitions), 25, 'the table covers all 25 pairs');

insert into public.messages (conversation_id, wamid, direction, type, status, status_timestamp, error_code, error_message)
select 'aaaaaaaa-f000-4000-8000-0000000003c1', 'wamid.S.' || from_status || '.' || to_status, 'outbound', 'text',
       from_status, '2026-01-30 10:00:00+00', 100, 'before'
from transitions;

-- One move per message, all in one statement (the trigger is per row).
update public.messages m
set status = t.to_status,
    status_timestamp = '2026-01-30 11:00:00+00',
    error_code = 200,
    error_message = 'after'
from transitions t
where m.wamid = 'wamid.S.' || t.from_status || '.' || t.to_status;

select is(
    concat_ws(' | ', m.status, m.status_timestamp, m.error_code, m.error_message),
    case when t.allowed
         then concat_ws(' | ', t.to_status, '2026-01-30 11:00:00+00', 200, 'after')
         else concat_ws(' | ', t.from_status, '2026-01-30 10:00:00+00', 100, 'before') end,
    format('%s -> %s is %s', t.from_status, t.to_status, case when t.allowed then 'applied' else 'refused, old state kept' end))
from transitions t
join public.messages m on m.wamid = 'wamid.S.' || t.from_status || '.' || t.to_status
order by array_position(array['pending', 'sent', 'delivered', 'read', 'failed'], t.from_status),
         array_position(array['pending', 'sent', 'delivered', 'read', 'failed'], t.to_status);

-- A send's life with late webhooks, one statement at a time --------------------------
insert into public.messages (id, conversation_id, direction, type, status)
values ('aaaaaaaa-e000-4000-8000-0000000003e1', 'aaaaaaaa-f000-4000-8000-0000000003c1', 'outbound', 'text', 'pending');
update public.messages set wamid = 'wamid.S.life', status = 'sent', status_timestamp = '2026-01-30 12:00:00+00'
where id = 'aaaaaaaa-e000-4000-8000-0000000003e1';
update public.messages set status = 'read', status_timestamp = '2026-01-30 12:02:00+00'
where wamid = 'wamid.S.life';
update public.messages set status = 'delivered', status_timestamp = '2026-01-30 12:01:00+00'
where wamid = 'wamid.S.life';
select results_eq(
    $$select wamid, status, status_timestamp from public.messages where id = 'aaaaaaaa-e000-4000-8000-0000000003e1'$$,
    $$values ('wamid.S.life'::text, 'read'::text, '2026-01-30 12:02:00+00'::timestamptz)$$,
    'a late delivered after read keeps read and its time');
update public.messages set status = 'failed', error_code = 131026, error_message = 'undeliverable'
where wamid = 'wamid.S.life';
select results_eq(
    $$select status, error_code, error_message from public.messages where id = 'aaaaaaaa-e000-4000-8000-0000000003e1'$$,
    $$values ('read'::text, null::integer, null::text)$$,
    'a read message cannot fail any more');

insert into public.messages (id, conversation_id, wamid, direction, type, status)
values ('aaaaaaaa-e000-4000-8000-0000000003e2', 'aaaaaaaa-f000-4000-8000-0000000003c1', 'wamid.S.fail', 'outbound', 'text', 'sent');
update public.messages set status = 'failed', status_timestamp = '2026-01-30 13:00:00+00',
                           error_code = 131047, error_message = 're-engagement required'
where wamid = 'wamid.S.fail';
update public.messages set status = 'delivered', status_timestamp = '2026-01-30 13:01:00+00',
                           error_code = null, error_message = null
where wamid = 'wamid.S.fail';
update public.messages set status = 'failed', status_timestamp = '2026-01-30 13:02:00+00',
                           error_code = 1, error_message = 'other'
where wamid = 'wamid.S.fail';
select results_eq(
    $$select status, status_timestamp, error_code, error_message from public.messages where wamid = 'wamid.S.fail'$$,
    $$values ('failed'::text, '2026-01-30 13:00:00+00'::timestamptz, 131047, 're-engagement required'::text)$$,
    'failed is final: neither a late delivered nor a second failure changes it or its error');

-- Updates that do not touch status are not affected.
update public.messages set media_url = 'https://example.com/x' where wamid = 'wamid.S.fail';
select is((select media_url from public.messages where wamid = 'wamid.S.fail'), 'https://example.com/x',
          'other columns of a failed message can still be updated');

update public.messages set error_code = 0, error_message = 'rewritten' where wamid = 'wamid.S.fail';
select results_eq(
    $$select error_code, error_message from public.messages where wamid = 'wamid.S.fail'$$,
    $$values (131047, 're-engagement required'::text)$$,
    'the error of a failed send cannot be rewritten without a status move');

-- The rule holds for many rows of one statement going through different moves.
update public.messages set status = 'delivered', status_timestamp = '2026-01-30 14:00:00+00'
where wamid in ('wamid.S.pending.pending', 'wamid.S.read.read', 'wamid.S.failed.failed');
select results_eq(
    $$select wamid, status from public.messages
      where wamid in ('wamid.S.pending.pending', 'wamid.S.read.read', 'wamid.S.failed.failed') order by wamid$$,
    $$values ('wamid.S.failed.failed'::text, 'failed'::text), ('wamid.S.pending.pending', 'delivered'), ('wamid.S.read.read', 'read')$$,
    'one statement, three messages: only the one that advances moves');

select * from finish();
rollback;
