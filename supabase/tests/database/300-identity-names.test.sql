-- Migration 008: a customer is a phone, a WhatsApp user id (BSUID) or both,
-- never neither; profile names and usernames are kept and searched with the
-- contact's name; previews in the workspace's locale; one workspace per list.
-- Runs as postgres on rows of its own (seeded workspaces A and B), rolled back.
begin;
select plan(53);

\set agent_a '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set agent_b '{"sub":"b0000000-0000-4000-8000-0000000000b1","role":"authenticated"}'
\set owner_a '{"sub":"a0000000-0000-4000-8000-00000000000a","role":"authenticated"}'

-- Constraints: conversations ------------------------------------------------------------------
select throws_ok($$insert into public.conversations (workspace_id, phone_number_id)
                   values ('11111111-1111-4111-8111-111111111111', '100000000000001')$$,
                 '23514', null, 'a conversation without phone and user id is refused');
select throws_ok($$insert into public.conversations (workspace_id, user_id, phone_number_id)
                   values ('11111111-1111-4111-8111-111111111111', '', '100000000000001')$$,
                 '23514', null, 'an empty user id is refused');
select throws_ok($$insert into public.conversations (workspace_id, user_id, phone_number_id)
                   values ('11111111-1111-4111-8111-111111111111', '573001112233', '100000000000001')$$,
                 '23514', null, 'a phone number is not a user id');
select lives_ok($$insert into public.conversations (id, workspace_id, user_id, phone_number_id, profile_name, username)
                  values ('aaaaaaaa-f000-4000-8000-000000000801', '11111111-1111-4111-8111-111111111111',
                          'CO.8000000000000801', '100000000000001', 'Valentína Ríos', '@vale.t300')$$,
                'a conversation known only by its user id');
select lives_ok($$insert into public.conversations (workspace_id, user_id, phone_number_id)
                  values ('11111111-1111-4111-8111-111111111111', 'US.ENT.11815799212886844830', '100000000000001')$$,
                'a parent user id (ENT) is a user id');
select throws_ok($$insert into public.conversations (workspace_id, user_id, phone_number_id)
                   values ('11111111-1111-4111-8111-111111111111', 'CO.8000000000000801', '100000000000001')$$,
                 '23505', null, 'one conversation per user id in a workspace');
select lives_ok($$insert into public.conversations (workspace_id, user_id, phone_number_id)
                  values ('22222222-2222-4222-8222-222222222222', 'CO.8000000000000801', '100000000000002')$$,
                'the same user id in another workspace is another conversation');
select throws_ok($$insert into public.conversations (workspace_id, phone, phone_number_id, profile_name)
                   values ('11111111-1111-4111-8111-111111111111', '+573001180001', '100000000000001', repeat('x', 201))$$,
                 '23514', null, 'a profile name longer than 200 is refused');
select throws_ok($$insert into public.conversations (workspace_id, phone, phone_number_id, username)
                   values ('11111111-1111-4111-8111-111111111111', '+573001180002', '100000000000001', '')$$,
                 '23514', null, 'an empty username is refused');
select throws_ok($$update public.conversations set user_id = null
                   where id = 'aaaaaaaa-f000-4000-8000-000000000801'$$,
                 '23514', null, 'the last key of a conversation cannot be removed');

-- Constraints: contacts and workspaces --------------------------------------------------------
select throws_ok($$insert into public.contacts (workspace_id, name)
                   values ('11111111-1111-4111-8111-111111111111', 'Nadie')$$,
                 '23514', null, 'a contact without phone and user id is refused');
select lives_ok($$insert into public.contacts (id, workspace_id, name, user_id)
                  values ('aaaaaaaa-c000-4000-8000-000000000801', '11111111-1111-4111-8111-111111111111',
                          'Valentina Cliente', 'CO.8000000000000801')$$,
                'a contact known only by its user id');
select throws_ok($$insert into public.contacts (workspace_id, name, user_id)
                   values ('11111111-1111-4111-8111-111111111111', 'Otra', 'CO.8000000000000801')$$,
                 '23505', null, 'one contact per user id in a workspace');
select throws_ok($$insert into public.contacts (workspace_id, user_id)
                   values ('11111111-1111-4111-8111-111111111111', 'not a bsuid')$$,
                 '23514', null, 'a contact user id has the BSUID format');
select throws_ok($$update public.workspaces set locale = 'fr' where id = '11111111-1111-4111-8111-111111111111'$$,
                 '23514', null, 'locales are en, es and pt');
select has_index('public', 'conversations', 'idx_conversations_user_id', 'conversations: unique (workspace_id, user_id)');
select has_index('public', 'conversations', 'idx_conversations_search_trgm', 'conversations: trigram index on search_text');
select has_index('public', 'contacts', 'idx_contacts_user_id', 'contacts: unique (workspace_id, user_id)');

-- search_text: profile name, username (no @) and the linked contact's name --------------------
select is((select search_text from public.conversations where id = 'aaaaaaaa-f000-4000-8000-000000000801'),
          'valentina rios vale.t300', 'profile name and username, folded, without @');
update public.conversations set contact_id = 'aaaaaaaa-c000-4000-8000-000000000801'
where id = 'aaaaaaaa-f000-4000-8000-000000000801';
select is((select search_text from public.conversations where id = 'aaaaaaaa-f000-4000-8000-000000000801'),
          'valentina cliente valentina rios vale.t300', 'linking a contact adds its name');
update public.contacts set name = 'Valeria Núñez' where id = 'aaaaaaaa-c000-4000-8000-000000000801';
select is((select search_text from public.conversations where id = 'aaaaaaaa-f000-4000-8000-000000000801'),
          'valeria nunez valentina rios vale.t300', 'renaming the contact follows');
delete from public.contacts where id = 'aaaaaaaa-c000-4000-8000-000000000801';
select is((select search_text from public.conversations where id = 'aaaaaaaa-f000-4000-8000-000000000801'),
          'valentina rios vale.t300', 'deleting the contact removes its name');

-- Previews in the workspace's locale ----------------------------------------------------------
select is(private.message_preview('image', '{}', 'es'), 'Foto', 'es: photo');
select is(private.message_preview('audio', '{"voice": true}', 'pt'), 'Mensagem de voz', 'pt: voice message');
select is(private.message_preview('order', '{"product_items": [{}, {}]}', 'es'), 'Pedido (2 artículos)', 'es: order count');
select is(private.message_preview('document', '{"filename": "f.pdf"}', 'en'), 'Document f.pdf', 'en: as before');
update public.workspaces set locale = 'es' where id = '11111111-1111-4111-8111-111111111111';
insert into public.messages (conversation_id, wamid, direction, type, content, status)
values ('aaaaaaaa-f000-4000-8000-000000000801', 'wamid.T300.1', 'inbound', 'sticker', '{}', 'delivered');
select is((select last_message_preview from public.conversations where id = 'aaaaaaaa-f000-4000-8000-000000000801'),
          'Sticker', 'the trigger previews in the workspace locale (sticker)');
insert into public.messages (conversation_id, wamid, direction, type, content, status, "timestamp")
values ('aaaaaaaa-f000-4000-8000-000000000801', 'wamid.T300.2', 'inbound', 'location', '{}', 'delivered', now() + interval '1 second');
select is((select last_message_preview from public.conversations where id = 'aaaaaaaa-f000-4000-8000-000000000801'),
          'Ubicación', 'the trigger previews in the workspace locale (location)');

-- Ingest: one person, one conversation, whichever key came first ------------------------------
create function pg_temp.ingest(p_wamid text, p_phone text, p_user_id text, p_name text default null)
returns jsonb language sql as $$
    select public.ingest_webhook_batch(
        '{}',
        jsonb_build_array(jsonb_build_object(
            'workspace_id', '11111111-1111-4111-8111-111111111111', 'phone_number_id', '100000000000001',
            'phone', p_phone, 'user_id', p_user_id, 'profile_name', p_name, 'wamid', p_wamid,
            'type', 'text', 'content', '{"body": "hola"}'::jsonb, 'timestamp', now())),
        '[]', '[]')
$$;
create function pg_temp.conversation_of(p_wamid text) returns uuid language sql as $$
    select conversation_id from public.messages where wamid = p_wamid
$$;

-- Phone first: phone, then both, then the id alone.
select ok((pg_temp.ingest('wamid.T300.p1', '+573001180010', null, 'Ana') ->> 'messages')::integer = 1, 'filed: wamid.T300.p1');
select ok((pg_temp.ingest('wamid.T300.p2', '+573001180010', 'CO.3000000000000010') ->> 'messages')::integer = 1, 'filed: wamid.T300.p2');
select ok((pg_temp.ingest('wamid.T300.p3', null, 'CO.3000000000000010', 'Ana María') ->> 'messages')::integer = 1, 'filed: wamid.T300.p3');
select is(pg_temp.conversation_of('wamid.T300.p2'), pg_temp.conversation_of('wamid.T300.p1'),
          'phone first: the delivery with both joins the phone''s conversation');
select is(pg_temp.conversation_of('wamid.T300.p3'), pg_temp.conversation_of('wamid.T300.p1'),
          'phone first: the id alone finds it afterwards');
select results_eq($$select phone, user_id, profile_name, unread_count from public.conversations
                    where id = pg_temp.conversation_of('wamid.T300.p1')$$,
                  $$values ('+573001180010'::text, 'CO.3000000000000010'::text, 'Ana María'::text, 3)$$,
                  'phone first: both keys, the latest name, three unread');

-- Id first: the id, then both, then the phone alone.
select ok((pg_temp.ingest('wamid.T300.i1', null, 'CO.3000000000000020', 'Bea') ->> 'messages')::integer = 1, 'filed: wamid.T300.i1');
select ok((pg_temp.ingest('wamid.T300.i2', '+573001180020', 'CO.3000000000000020') ->> 'messages')::integer = 1, 'filed: wamid.T300.i2');
select ok((pg_temp.ingest('wamid.T300.i3', '+573001180020', null) ->> 'messages')::integer = 1, 'filed: wamid.T300.i3');
select is(pg_temp.conversation_of('wamid.T300.i2'), pg_temp.conversation_of('wamid.T300.i1'),
          'id first: the delivery with both joins the id''s conversation');
select is(pg_temp.conversation_of('wamid.T300.i3'), pg_temp.conversation_of('wamid.T300.i1'),
          'id first: the phone alone finds it afterwards');
select results_eq($$select phone, user_id, profile_name from public.conversations
                    where id = pg_temp.conversation_of('wamid.T300.i1')$$,
                  $$values ('+573001180020'::text, 'CO.3000000000000020'::text, 'Bea'::text)$$,
                  'id first: both keys, the name kept when a delivery carries none');

-- Both keys already on two conversations: the phone's gets the message, neither loses its key.
select ok((pg_temp.ingest('wamid.T300.t1', '+573001180030', null) ->> 'messages')::integer = 1, 'filed: wamid.T300.t1');
select ok((pg_temp.ingest('wamid.T300.t2', null, 'CO.3000000000000030') ->> 'messages')::integer = 1, 'filed: wamid.T300.t2');
select ok((pg_temp.ingest('wamid.T300.t3', '+573001180030', 'CO.3000000000000030') ->> 'messages')::integer = 1, 'filed: wamid.T300.t3');
select is(pg_temp.conversation_of('wamid.T300.t3'), pg_temp.conversation_of('wamid.T300.t1'),
          'two existing conversations: the phone''s gets the message');
select results_eq($$select count(*)::integer from public.conversations
                    where phone = '+573001180030' or user_id = 'CO.3000000000000030'$$,
                  $$values (2)$$, 'two existing conversations: neither is merged nor broken');

-- 500 senders in one call take at most 32 identity locks (bounded like 006's wamid locks).
select ok((public.ingest_webhook_batch('{}',
              (select jsonb_agg(jsonb_build_object(
                   'workspace_id', '11111111-1111-4111-8111-111111111111',
                   'phone_number_id', '100000000000001',
                   'phone', '+5730019' || lpad(g::text, 5, '0'),
                   'user_id', 'CO.40000' || g, 'wamid', 'wamid.T300.many.' || g, 'type', 'text',
                   'content', '{"body": "hola"}'::jsonb, 'timestamp', now()))
               from generate_series(1, 500) g), '[]', '[]') ->> 'messages')::integer = 500,
          '500 senders filed in one call');
select cmp_ok((select count(*)::integer from pg_catalog.pg_locks
               where locktype = 'advisory' and classid = 2028 and pid = pg_catalog.pg_backend_pid()),
              '<=', 32, 'identity locks stay within 32 buckets');

-- Listing: one workspace at a time; search under RLS ------------------------------------------
insert into public.workspace_members (workspace_id, user_id)
values ('22222222-2222-4222-8222-222222222222', 'a0000000-0000-4000-8000-00000000000a');
set local role authenticated;
set local request.jwt.claims = :'owner_a';
select throws_ok($$select * from public.list_conversations()$$, '22023',
                 'p_workspace_id is required: the caller belongs to several workspaces',
                 'a member of several workspaces must name one');
select lives_ok($$select * from public.list_conversations(p_workspace_id => '22222222-2222-4222-8222-222222222222')$$,
                'naming it lists it');
set local request.jwt.claims = :'agent_a';
select results_eq($$select id from public.list_conversations(p_search => 'valentina RIOS')$$,
                  $$values ('aaaaaaaa-f000-4000-8000-000000000801'::uuid)$$,
                  'the only workspace is listed without naming it; profile name found folded');
select results_eq($$select id from public.list_conversations(p_search => '@vale.t300')$$,
                  $$values ('aaaaaaaa-f000-4000-8000-000000000801'::uuid)$$,
                  'username found with its @');
select results_eq($$select profile_name, username from public.get_conversation('aaaaaaaa-f000-4000-8000-000000000801')$$,
                  $$values ('Valentína Ríos'::text, '@vale.t300'::text)$$,
                  'details carry the profile name and username');
set local request.jwt.claims = :'agent_b';
select is_empty($$select id from public.list_conversations(p_workspace_id => '11111111-1111-4111-8111-111111111111',
                                                          p_search => 'valentina')$$,
                'another workspace''s member finds nothing');
reset role;

select * from finish();
rollback;
