-- RLS matrix, messages: members read their workspace's messages; only the
-- service role inserts (a reply, through public.open_reply: 290-data-api-seal),
-- updates (the outcome of a send) or deletes.
begin;
set local client_encoding = 'UTF8';
select plan(30);

\set owner_a '{"sub":"a0000000-0000-4000-8000-00000000000a","role":"authenticated"}'
\set agent_a '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set agent_b '{"sub":"b0000000-0000-4000-8000-0000000000b1","role":"authenticated"}'
\set outsider '{"sub":"cccccccc-0000-4000-8000-0000000000c9","role":"authenticated"}'

insert into auth.users (id, email) values ('cccccccc-0000-4000-8000-0000000000c9', 'outsider@example.com');
-- Outbound replies by owner-a and agent-a in A and one by agent-b in B, beside the seeded inbound ones.
insert into public.messages (id, conversation_id, wamid, direction, type, content, status, sent_by, "timestamp") values
    ('aaaaaaaa-e000-4000-8000-0000000006a1', 'f1000000-0000-4000-8000-000000000001', 'wamid.M.agent', 'outbound', 'text',
     '{"body":"del agente"}', 'sent', 'a0000000-0000-4000-8000-0000000000a1', now() - interval '9 minutes'),
    ('aaaaaaaa-e000-4000-8000-0000000006a0', 'f1000000-0000-4000-8000-000000000001', 'wamid.M.owner', 'outbound', 'text',
     '{"body":"de la dueña"}', 'sent', 'a0000000-0000-4000-8000-00000000000a', now() - interval '10 minutes'),
    ('aaaaaaaa-e000-4000-8000-0000000006b0', 'f2000000-0000-4000-8000-000000000001', 'wamid.M.b', 'outbound', 'text',
     '{"body":"de B"}', 'sent', 'b0000000-0000-4000-8000-0000000000b1', now() - interval '10 minutes');
create temp table expect_messages on commit drop as
    select id, workspace_id, status, wamid, content from public.messages;
grant select on expect_messages to authenticated;

set local role authenticated;

-- Select ----------------------------------------------------------------------------------------
set local request.jwt.claims = :'agent_a';
select results_eq('select id from public.messages order by id',
                  $$select id from expect_messages where workspace_id = '11111111-1111-4111-8111-111111111111' order by id$$,
                  'member of A sees exactly the messages of A');
set local request.jwt.claims = :'agent_b';
select results_eq('select id from public.messages order by id',
                  $$select id from expect_messages where workspace_id = '22222222-2222-4222-8222-222222222222' order by id$$,
                  'member of B sees exactly the messages of B');
set local request.jwt.claims = :'outsider';
select is_empty('select id from public.messages', 'a non-member sees no message');

-- Insert: nobody but the service role (replies go through the service, docs/SECURITY.md) ---------
set local request.jwt.claims = :'agent_a';
select throws_ok(
    $$insert into public.messages (conversation_id, direction, type, content, status, sent_by)
      values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'text', '{"body":"Sí, en talla M"}', 'pending',
              'a0000000-0000-4000-8000-0000000000a1')$$,
    '42501', null, 'a member cannot insert even a pending reply in their own name');
select throws_ok(
    $$insert into public.messages (conversation_id, direction, type, sent_by, media_url)
      values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'image', 'a0000000-0000-4000-8000-0000000000a1',
              'javascript:alert(1)')$$,
    '42501', null, 'a member cannot store a media link');
select throws_ok(
    $$insert into public.messages (conversation_id, direction, type, content, sent_by)
      values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'template', '{"body":"Pago aprobado"}',
              'a0000000-0000-4000-8000-0000000000a1')$$,
    '42501', null, 'a member cannot forge a template');
set local request.jwt.claims = :'agent_b';
select throws_ok($$insert into public.messages (conversation_id, direction, type, sent_by)
                   values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'text', 'b0000000-0000-4000-8000-0000000000b1')$$,
                 '42501', null, 'member of B cannot insert into a conversation of A');
set local request.jwt.claims = :'outsider';
select throws_ok($$insert into public.messages (conversation_id, direction, type, sent_by)
                   values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'text', 'cccccccc-0000-4000-8000-0000000000c9')$$,
                 '42501', null, 'a non-member cannot insert messages');

-- Update: nobody but the service role (it records what WhatsApp answered) -------------------------
set local request.jwt.claims = :'agent_a';
select throws_ok(format('update public.messages set %I = %I where wamid = %L', c, c, 'wamid.M.agent'),
                 '42501', null, format('a member cannot update messages.%s, even on their own reply', c))
from unnest(array['wamid', 'status', 'status_timestamp', 'error_code', 'error_message',
                  'content', 'direction', 'type', 'sent_by', 'workspace_id', 'conversation_id', 'timestamp',
                  'reaction', 'media_url']) c;
select throws_ok($$update public.messages set direction = 'outbound', sent_by = 'a0000000-0000-4000-8000-0000000000a1'
                   where wamid = 'wamid.SEED.A1'$$,
                 '42501', null, 'a member cannot take over an inbound message');
set local request.jwt.claims = :'agent_b';
select throws_ok($$update public.messages set status = 'failed' where wamid = 'wamid.M.agent'$$,
                 '42501', null, 'member of B cannot update a message of A');
set local request.jwt.claims = :'outsider';
select throws_ok($$update public.messages set status = 'failed'$$, '42501', null,
                 'a non-member cannot update messages');

-- Delete: service role only -------------------------------------------------------------------------
set local request.jwt.claims = :'agent_a';
select throws_ok($$delete from public.messages where wamid = 'wamid.M.agent'$$, '42501', null,
                 'a member cannot delete even their own message');
set local request.jwt.claims = :'agent_b';
select throws_ok($$delete from public.messages$$, '42501', null, 'member of B cannot delete messages');
set local request.jwt.claims = :'outsider';
select throws_ok($$delete from public.messages$$, '42501', null, 'a non-member cannot delete messages');

-- What was stored --------------------------------------------------------------------------------------
reset role;
select results_eq(
    $$select m.id, m.status, m.wamid, m.content from public.messages m
      where m.id in (select id from expect_messages) order by m.id$$,
    $$select id, status, wamid, content from expect_messages order by id$$,
    'no message that existed before was changed');
select is((select count(*)::integer from public.messages
           where id not in (select id from expect_messages)), 0,
          'no message was stored by a member');

select * from finish();
rollback;
