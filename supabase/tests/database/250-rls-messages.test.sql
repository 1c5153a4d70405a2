-- RLS matrix, messages: members read their workspace's messages; they may
-- insert only outbound, pending, wamid-less replies in their own name; only
-- the service role updates (the outcome of a send) or deletes.
begin;
set local client_encoding = 'UTF8';
select plan(38);

\set owner_a '{"sub":"a0000000-0000-4000-8000-00000000000a","role":"authenticated"}'
\set agent_a '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set agent_b '{"sub":"b0000000-0000-4000-8000-0000000000b1","role":"authenticated"}'
\set outsider '{"sub":"cccccccc-0000-4000-8000-0000000000c9","role":"authenticated"}'

insert into auth.users (id, email) values ('cccccccc-0000-4000-8000-0000000000c9', 'outsider@example.com');
-- An outbound reply by owner-a in A and one by agent-b in B, beside the seeded inbound ones.
insert into public.messages (id, conversation_id, wamid, direction, type, content, status, sent_by, "timestamp") values
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

-- Insert ------------------------------------------------------------------------------------------
set local request.jwt.claims = :'agent_a';
select results_eq(
    $$insert into public.messages (conversation_id, workspace_id, direction, type, content, status, sent_by, idempotency_key)
      values ('f1000000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222', 'outbound', 'text',
              '{"body":"Sí, en talla M"}', 'pending', 'a0000000-0000-4000-8000-0000000000a1', 'reply-1')
      returning workspace_id, direction, status, wamid, sent_by$$,
    $$values ('11111111-1111-4111-8111-111111111111'::uuid, 'outbound'::text, 'pending'::text, null::text,
              'a0000000-0000-4000-8000-0000000000a1'::uuid)$$,
    'member of A sends a reply in A (a wrong workspace_id is replaced by the conversation''s)');
select results_eq(
    $$select last_message_preview, last_message_at from public.conversations where id = 'f1000000-0000-4000-8000-000000000001'$$,
    $$values ('Sí, en talla M'::text, now())$$,
    'the reply updates the conversation statistics the agent may not write directly');
select lives_ok(
    $$insert into public.messages (conversation_id, direction, type, content, sent_by)
      values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'text', '{"body":"otra"}', 'a0000000-0000-4000-8000-0000000000a1')$$,
    'status and workspace may be left to their defaults');
select throws_ok($$insert into public.messages (conversation_id, direction, type, sent_by)
                   values ('f1000000-0000-4000-8000-000000000001', 'inbound', 'text', 'a0000000-0000-4000-8000-0000000000a1')$$,
                 '42501', null, 'a member cannot insert inbound messages');
select throws_ok($$insert into public.messages (conversation_id, direction, type, status, sent_by)
                   values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'text', 'sent', 'a0000000-0000-4000-8000-0000000000a1')$$,
                 '42501', null, 'a member cannot insert a message that is already sent');
select throws_ok($$insert into public.messages (conversation_id, direction, type, status, sent_by)
                   values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'text', 'read', 'a0000000-0000-4000-8000-0000000000a1')$$,
                 '42501', null, 'a member cannot insert a message that is already read');
select throws_ok($$insert into public.messages (conversation_id, wamid, direction, type, sent_by)
                   values ('f1000000-0000-4000-8000-000000000001', 'wamid.FAKE', 'outbound', 'text', 'a0000000-0000-4000-8000-0000000000a1')$$,
                 '42501', null, 'a member cannot insert a wamid');
select throws_ok($$insert into public.messages (conversation_id, direction, type, sent_by)
                   values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'text', 'a0000000-0000-4000-8000-00000000000a')$$,
                 '42501', null, 'a member cannot send in someone else''s name');
select throws_ok($$insert into public.messages (conversation_id, direction, type)
                   values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'text')$$,
                 '42501', null, 'a member cannot send without a sender');
select throws_ok($$insert into public.messages (id, conversation_id, direction, type, sent_by)
                   values (gen_random_uuid(), 'f1000000-0000-4000-8000-000000000001', 'outbound', 'text', 'a0000000-0000-4000-8000-0000000000a1')$$,
                 '42501', null, 'a member cannot choose the message id');
select throws_ok($$insert into public.messages (conversation_id, workspace_id, direction, type, sent_by)
                   values ('f2000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', 'outbound', 'text',
                           'a0000000-0000-4000-8000-0000000000a1')$$,
                 '23503', 'conversation not found', 'a member cannot send into a conversation of B, whatever workspace_id says');
set local request.jwt.claims = :'agent_b';
select throws_ok($$insert into public.messages (conversation_id, direction, type, sent_by)
                   values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'text', 'b0000000-0000-4000-8000-0000000000b1')$$,
                 '23503', 'conversation not found', 'member of B cannot send into a conversation of A');
set local request.jwt.claims = :'outsider';
select throws_ok($$insert into public.messages (conversation_id, direction, type, sent_by)
                   values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'text', 'cccccccc-0000-4000-8000-0000000000c9')$$,
                 '23503', 'conversation not found', 'a non-member cannot send into a conversation of A');

-- Update: nobody but the service role (it records what WhatsApp answered) -------------------------
set local request.jwt.claims = :'agent_a';
select throws_ok(format('update public.messages set %I = %I where idempotency_key = %L', c, c, 'reply-1'),
                 '42501', null, format('a member cannot update messages.%s, even on their own reply', c))
from unnest(array['wamid', 'status', 'status_timestamp', 'error_code', 'error_message',
                  'content', 'direction', 'type', 'sent_by', 'workspace_id', 'conversation_id', 'timestamp',
                  'reaction', 'media_url']) c;
select throws_ok($$update public.messages set direction = 'outbound', sent_by = 'a0000000-0000-4000-8000-0000000000a1'
                   where wamid = 'wamid.SEED.A1'$$,
                 '42501', null, 'a member cannot take over an inbound message');
set local request.jwt.claims = :'agent_b';
select throws_ok($$update public.messages set status = 'failed' where idempotency_key = 'reply-1'$$,
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
           where sent_by = 'a0000000-0000-4000-8000-0000000000a1'), 2,
          'exactly the two permitted replies were stored');

select * from finish();
rollback;
