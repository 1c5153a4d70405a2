-- whatsapp_templates: members read their workspace's copy of its channels'
-- templates; nobody but the service role writes it, and only through a whole
-- channel's list at a time (replace_channel_templates), never pointing a row
-- at another workspace's channel.
begin;
select plan(19);

\set agent_a '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set agent_b '{"sub":"b0000000-0000-4000-8000-0000000000b1","role":"authenticated"}'
\set outsider '{"sub":"cccccccc-0000-4000-8000-0000000000c9","role":"authenticated"}'

insert into auth.users (id, email) values ('cccccccc-0000-4000-8000-0000000000c9', 'outsider@example.com');

-- The service role stores both channels' lists ------------------------------------------------
set local role service_role;
set local request.jwt.claims = '{"role":"service_role"}';
select is(public.replace_channel_templates('e1000000-0000-4000-8000-000000000001', $$[
    {"name": "order_update", "language": "es", "status": "approved", "category": "utility",
     "components": [{"type": "BODY", "text": "Hola {{1}}"}]},
    {"name": "spring_sale", "language": "es", "status": "paused", "category": "marketing",
     "components": []},
    {"name": "gone_soon", "language": "es", "status": "approved", "components": []}]$$), 3,
    'the service role stores channel A''s three templates');
select is(public.replace_channel_templates('e2000000-0000-4000-8000-000000000001', $$[
    {"name": "hello_b", "language": "en_US", "status": "approved", "components": []}]$$), 1,
    'and channel B''s one');
select is(public.replace_channel_templates('e1000000-0000-4000-8000-000000000001', $$[
    {"name": "order_update", "language": "es", "status": "paused", "category": "utility",
     "components": [{"type": "BODY", "text": "Hola {{1}}"}]},
    {"name": "spring_sale", "language": "es", "status": "approved", "category": "marketing",
     "components": []}]$$), 2,
    'a refresh rewrites the channel''s list');
select results_eq(
    $$select name, status from public.whatsapp_templates
      where channel_id = 'e1000000-0000-4000-8000-000000000001' order by name$$,
    $$values ('order_update'::text, 'paused'::text), ('spring_sale', 'approved')$$,
    'statuses follow 360dialog and a template it no longer lists is gone');
select throws_ok($$select public.replace_channel_templates('e9000000-0000-4000-8000-000000000009', '[]')$$,
                 '23503', null, 'no list for a channel that does not exist');
select throws_ok($$select public.replace_channel_templates('e1000000-0000-4000-8000-000000000001', '{}')$$,
                 '22023', null, 'the list must be an array');
select throws_ok($$select public.replace_channel_templates('e1000000-0000-4000-8000-000000000001',
                   '[{"name": "Bad Name", "language": "es", "status": "approved"}]')$$,
                 '23514', null, 'a name WhatsApp would not give is refused (check constraint)');
select throws_ok($$insert into public.whatsapp_templates (workspace_id, channel_id, name, language, status)
                   values ('22222222-2222-4222-8222-222222222222', 'e1000000-0000-4000-8000-000000000001',
                           'x', 'es', 'approved')$$,
                 '23503', null, 'a row cannot name another workspace''s channel');

-- Members read their own workspace's templates ------------------------------------------------
set local role authenticated;
set local request.jwt.claims = :'agent_a';
select results_eq('select name from public.whatsapp_templates order by name',
                  $$values ('order_update'::text), ('spring_sale')$$,
                  'a member of A reads A''s templates only');
select throws_ok($$insert into public.whatsapp_templates (workspace_id, channel_id, name, language, status)
                   values ('11111111-1111-4111-8111-111111111111', 'e1000000-0000-4000-8000-000000000001',
                           'mine', 'es', 'approved')$$,
                 '42501', null, 'a member cannot add a template');
select throws_ok($$update public.whatsapp_templates set status = 'approved' where name = 'order_update'$$,
                 '42501', null, 'a member cannot approve a paused template');
select throws_ok($$delete from public.whatsapp_templates where name = 'order_update'$$,
                 '42501', null, 'a member cannot delete a template');
select throws_ok($$select public.replace_channel_templates('e1000000-0000-4000-8000-000000000001', '[]')$$,
                 '42501', null, 'a member cannot call the refresh function');

set local request.jwt.claims = :'agent_b';
select results_eq('select name from public.whatsapp_templates', $$values ('hello_b'::text)$$,
                  'a member of B reads B''s template only');
select is_empty($$select 1 from public.whatsapp_templates where channel_id = 'e1000000-0000-4000-8000-000000000001'$$,
                'a member of B cannot read A''s templates by naming A''s channel');

set local request.jwt.claims = :'outsider';
select is_empty('select 1 from public.whatsapp_templates', 'a non-member reads no template');

reset role;
set local role anon;
set local request.jwt.claims = '{"role":"anon"}';
select throws_ok('select 1 from public.whatsapp_templates', '42501', null, 'anon cannot read templates');
select throws_ok($$select public.replace_channel_templates('e1000000-0000-4000-8000-000000000001', '[]')$$,
                 '42501', null, 'anon cannot call the refresh function');
reset role;

select ok(exists (
    select 1 from pg_index i
    join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
    where i.indrelid = 'public.whatsapp_templates'::regclass and a.attname = 'workspace_id'),
    'the policy column leads an index');

select * from finish();
rollback;
