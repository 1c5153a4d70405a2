-- Realtime (migration 009): messages are logged with their whole old row;
-- broadcast triggers write small events to the workspace's private topic;
-- policies on realtime.messages let only members read a workspace topic and
-- only share presence there; the local stack made today's partition.
begin;
select plan(28);

\set agent_a '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set agent_b '{"sub":"b0000000-0000-4000-8000-0000000000b1","role":"authenticated"}'

-- Replica identity ----------------------------------------------------------------------------
select is((select relreplident::text from pg_class where oid = 'public.messages'::regclass), 'f',
          'messages: REPLICA IDENTITY FULL (a status update carries an unchanged TOASTed body)');

-- Topic helper ----------------------------------------------------------------------------------
select is(private.workspace_topic_id('workspace:11111111-1111-4111-8111-111111111111'),
          '11111111-1111-4111-8111-111111111111'::uuid, 'a workspace topic names its workspace');
select is(private.workspace_topic_id('workspace:nope'), null, 'a malformed topic names none (no error)');
select is(private.workspace_topic_id('workspace:11111111-1111-4111-8111-111111111111:x'), null,
          'a suffixed topic names none');
select is(private.workspace_topic_id(null), null, 'no topic names none');
select ok(not has_function_privilege('anon', 'private.workspace_topic_id(text)', 'execute'),
          'anon cannot execute the topic helper');

-- Trigger functions -------------------------------------------------------------------------------
select ok((select prosecdef and proconfig = array['search_path=""']
           from pg_proc where oid = 'private.broadcast_message_changes()'::regprocedure),
          'broadcast_message_changes: security definer with an empty search_path');
select ok((select prosecdef and proconfig = array['search_path=""']
           from pg_proc where oid = 'private.broadcast_conversation_changes()'::regprocedure),
          'broadcast_conversation_changes: security definer with an empty search_path');
select ok(not has_function_privilege(r, 'private.broadcast_message_changes()', 'execute')
          and not has_function_privilege(r, 'private.broadcast_conversation_changes()', 'execute'),
          format('%s cannot call the broadcast trigger functions', r))
from unnest(array['anon', 'authenticated', 'service_role']) r;
select is((select count(*)::integer from pg_trigger
           where tgname in ('messages_broadcast_insert', 'messages_broadcast_update',
                            'conversations_broadcast_insert', 'conversations_broadcast_update')),
          4, 'four broadcast triggers');

-- Policies on realtime.messages -------------------------------------------------------------------
select policies_are('realtime', 'messages',
                    array['realtime_workspace_members_read', 'realtime_workspace_members_presence']);
select policy_roles_are('realtime', 'messages', 'realtime_workspace_members_read', array['authenticated']);
select policy_cmd_is('realtime'::name, 'messages'::name, 'realtime_workspace_members_read'::name, 'select'::text);
select policy_cmd_is('realtime'::name, 'messages'::name, 'realtime_workspace_members_presence'::name, 'insert'::text);

-- As on hosted (supautils): policies on realtime.messages, nothing else -------------------------
select lives_ok($$create policy t290_probe on realtime.messages for select to authenticated using (false)$$,
                'postgres may add a policy on realtime.messages');
select throws_ok($$create table realtime.t290_probe (id int)$$, '42501', null,
                 'postgres may not create anything else in realtime');

-- Partition of today, as the Realtime server creates it ---------------------------------------
select is((select pg_get_userbyid(relowner)::text from pg_class
           where oid = to_regclass('realtime.messages_' || to_char(now() at time zone 'utc', 'YYYY_MM_DD'))),
          'supabase_realtime_admin', 'today''s partition of realtime.messages exists, owned by the realtime admin');

-- What the triggers write -----------------------------------------------------------------------
insert into public.conversations (id, workspace_id, phone, phone_number_id) values
    ('aaaaaaaa-f000-4000-8000-0000000009a1', '11111111-1111-4111-8111-111111111111', '+573001190001', '100000000000001');
select is((select count(*)::integer from realtime.messages
           where topic = 'workspace:11111111-1111-4111-8111-111111111111' and event = 'conversation'
             and payload -> 'changes' @> '[{"op": "INSERT", "conversation_id": "aaaaaaaa-f000-4000-8000-0000000009a1"}]'
             and private and extension = 'broadcast'),
          1, 'a new conversation: one private broadcast on its workspace topic');
insert into public.messages (conversation_id, wamid, direction, type, content, status) values
    ('aaaaaaaa-f000-4000-8000-0000000009a1', 'wamid.T290.1', 'inbound', 'text', '{"body": "secreto"}', 'delivered');
select is((select count(*)::integer from realtime.messages
           where topic = 'workspace:11111111-1111-4111-8111-111111111111' and event = 'message'
             and payload -> 'changes' @> '[{"op": "INSERT", "conversation_id": "aaaaaaaa-f000-4000-8000-0000000009a1"}]'),
          1, 'a new message: one broadcast');
select is((select count(*)::integer from realtime.messages
           where topic like 'workspace:%' and payload::text like '%secreto%'),
          0, 'no broadcast carries a message body');
select ok((select c -> 'changed' ?& array['unread_count', 'last_message_preview']
           from realtime.messages m, jsonb_array_elements(m.payload -> 'changes') c
           where m.event = 'conversation' and c ->> 'op' = 'UPDATE'
             and c ->> 'conversation_id' = 'aaaaaaaa-f000-4000-8000-0000000009a1'),
          'the statistics update says what changed');

-- One statement, two workspaces, 250 messages: one broadcast per workspace and 100 changes.
insert into public.conversations (id, workspace_id, phone, phone_number_id) values
    ('aaaaaaaa-f000-4000-8000-0000000009b1', '22222222-2222-4222-8222-222222222222', '+573001190002', '100000000000002');
create temp table t290_before on commit drop as select id from realtime.messages;
insert into public.messages (conversation_id, wamid, direction, type, content, status)
select case when i <= 200 then 'aaaaaaaa-f000-4000-8000-0000000009a1'::uuid
            else 'aaaaaaaa-f000-4000-8000-0000000009b1'::uuid end,
       'wamid.T290.batch.' || i, 'inbound', 'text', '{"body": "lote"}', 'delivered'
from generate_series(1, 250) i;
select results_eq(
    $$select topic, jsonb_array_length(payload -> 'changes') from realtime.messages
      where event = 'message' and id not in (select id from t290_before)
      order by topic, jsonb_array_length(payload -> 'changes') desc$$,
    $$values ('workspace:11111111-1111-4111-8111-111111111111', 100),
             ('workspace:11111111-1111-4111-8111-111111111111', 100),
             ('workspace:22222222-2222-4222-8222-222222222222', 50)$$,
    'a batch sends one broadcast per workspace and 100 changes (one subtransaction each, not one per row)');
select is((select count(*)::integer from realtime.messages
           where event = 'conversation' and id not in (select id from t290_before)),
          2, 'the batch''s statistics update: one broadcast per workspace');

-- Join check (read): what a member sees under the policy -----------------------------------------
set local role authenticated;
set local realtime.topic = 'workspace:11111111-1111-4111-8111-111111111111';
set local request.jwt.claims = :'agent_a';
select ok((select count(*) > 0 from realtime.messages where extension = 'broadcast'),
          'a member of A reads A''s topic');
set local request.jwt.claims = :'agent_b';
select is((select count(*)::integer from realtime.messages), 0, 'a member of B reads nothing on A''s topic');
reset role;
set local role anon;
select is((select count(*)::integer from realtime.messages), 0, 'anon reads nothing');
reset role;

select * from finish();
rollback;
