-- The Data API as a public API (migration 007, docs/SECURITY.md): what an
-- agent's token can no longer do, the caps every writer meets, replies and
-- their idempotency keys through public.open_reply, contact_tags' key, and
-- the grants as they stand after every migration.
begin;
set local client_encoding = 'UTF8';
select plan(31);

\set owner_a '{"sub":"a0000000-0000-4000-8000-00000000000a","role":"authenticated"}'
\set agent_a '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set agent_b '{"sub":"b0000000-0000-4000-8000-0000000000b1","role":"authenticated"}'

-- A tag of B on none of B's contacts, so (contact of B, this tag) is a pair that does not exist.
insert into public.tags (id, workspace_id, name) values
    ('d2000000-0000-4000-8000-0000000000f2', '22222222-2222-4222-8222-222222222222', 'Sin usar');

-- wamid: a real unique constraint (2) ----------------------------------------------------------------
select col_is_unique('public', 'messages', array['wamid']::name[], 'messages.wamid has a UNIQUE constraint');
select is((select contype::text from pg_constraint where conname = 'messages_wamid_key'), 'u',
          'messages_wamid_key is a constraint, not only an index');

-- content and media_url, for every writer (5) -----------------------------------------------------------
select lives_ok($$insert into public.messages (conversation_id, direction, type, content)
                  values ('f1000000-0000-4000-8000-000000000001', 'inbound', 'text',
                          jsonb_build_object('body', repeat('😀', 65536)))$$,
                'the longest text a customer can send (65,536 four-byte characters) is stored');
select throws_ok($$insert into public.messages (conversation_id, direction, type, content)
                   values ('f1000000-0000-4000-8000-000000000001', 'inbound', 'text',
                           jsonb_build_object('body', repeat('x', 524289)))$$,
                 '23514', null, 'content over 512 KiB is refused, even for the service role');
select throws_ok($$insert into public.messages (conversation_id, direction, type, sent_by, media_url)
                   values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'image',
                           'a0000000-0000-4000-8000-0000000000a1', 'javascript:alert(1)')$$,
                 '23514', null, 'a media link is https only');
select throws_ok($$insert into public.messages (conversation_id, direction, type, sent_by, media_url)
                   values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'image',
                           'a0000000-0000-4000-8000-0000000000a1', 'https://example.com/' || repeat('a', 2048))$$,
                 '23514', null, 'a media link is at most 2,048 characters');
select lives_ok($$insert into public.messages (conversation_id, direction, type, sent_by, media_url)
                  values ('f1000000-0000-4000-8000-000000000001', 'outbound', 'image',
                          'a0000000-0000-4000-8000-0000000000a1', 'https://example.com/foto.jpg')$$,
                'an https media link is stored');

-- open_reply: the only way a reply is written (10) -------------------------------------------------------
set local role service_role;
select results_eq(
    $$select direction, status, type, sent_by, wamid, workspace_id
      from public.open_reply('f1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-0000000000a1',
                             'text', '{"body":"Sí, en talla M"}', null, null, 'order-42')$$,
    $$values ('outbound'::text, 'pending'::text, 'text'::text, 'a0000000-0000-4000-8000-0000000000a1'::uuid,
              null::text, '11111111-1111-4111-8111-111111111111'::uuid)$$,
    'the service opens a pending reply in the agent''s name');
select results_eq(
    $$select last_message_preview from public.conversations where id = 'f1000000-0000-4000-8000-000000000001'$$,
    $$values ('Sí, en talla M'::text)$$,
    'the reply updates the conversation''s preview');
select results_eq(
    $$select k.key, m.content ->> 'body' from public.reply_idempotency_keys k
      join public.messages m on m.id = k.message_id
      where k.conversation_id = 'f1000000-0000-4000-8000-000000000001'
        and k.sent_by = 'a0000000-0000-4000-8000-0000000000a1'$$,
    $$values ('order-42'::text, 'Sí, en talla M'::text)$$,
    'the key is stored with the message, for its sender');
select throws_ok(
    $$select * from public.open_reply('f1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-0000000000a1',
                                      'text', '{"body":"otra"}', null, null, 'order-42')$$,
    '23505', null, 'the same sender cannot use a key twice in one conversation');
select lives_ok(
    $$select * from public.open_reply('f1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-00000000000a',
                                      'text', '{"body":"de la dueña"}', null, null, 'order-42')$$,
    'another member''s key of the same value neither blocks nor replays');
select is((select count(*)::integer from public.reply_idempotency_keys
           where conversation_id = 'f1000000-0000-4000-8000-000000000001' and key = 'order-42'), 2,
          'two senders, two keys, two replies');
select throws_ok(
    $$select * from public.open_reply('f1000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-0000000000b1',
                                      'text', '{"body":"de B"}', null, null, 'k-b')$$,
    '42501', null, 'a sender who is not a member of the workspace cannot open a reply there');
select is((select count(*)::integer from public.messages
           where sent_by = 'b0000000-0000-4000-8000-0000000000b1'
             and conversation_id = 'f1000000-0000-4000-8000-000000000001'), 0,
          'nothing half-written when the sender is refused');
reset role;
set local role authenticated;
set local request.jwt.claims = :'agent_a';
select throws_ok(
    $$select * from public.open_reply('f1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-0000000000a1',
                                      'text', '{"body":"directa"}', null, null, 'k-direct')$$,
    '42501', null, 'an agent cannot call open_reply through the Data API');
reset role;
set local role anon;
select throws_ok(
    $$select * from public.open_reply('f1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-0000000000a1',
                                      'text', '{"body":"anon"}', null, null, 'k-anon')$$,
    '42501', null, 'anon cannot call open_reply');
reset role;

-- Idempotency keys are nobody's to read but the service's (4) ---------------------------------------------
set local role authenticated;
set local request.jwt.claims = :'agent_a';
select throws_ok('select key from public.reply_idempotency_keys', '42501', null,
                 'an agent cannot read idempotency keys, not even their own');
select throws_ok($$insert into public.reply_idempotency_keys (message_id, conversation_id, sent_by, key)
                   select id, conversation_id, sent_by, 'k-x' from public.messages limit 1$$,
                 '42501', null, 'an agent cannot store an idempotency key');
set local request.jwt.claims = :'owner_a';
select throws_ok($$delete from public.reply_idempotency_keys$$, '42501', null,
                 'an agent cannot delete another agent''s key');
select lives_ok('select * from public.messages limit 1', 'select * on messages still works for agents');
reset role;

-- contact_tags: another workspace's pair, existing or not, is the same error (3) -------------------------
set local role authenticated;
set local request.jwt.claims = :'agent_a';
select throws_ok($$insert into public.contact_tags (workspace_id, contact_id, tag_id) values
                   ('11111111-1111-4111-8111-111111111111', 'c2000000-0000-4000-8000-000000000001',
                    'd2000000-0000-4000-8000-000000000001')$$,
                 '23503', null, 'a pair of B that exists: foreign key error');
select throws_ok($$insert into public.contact_tags (workspace_id, contact_id, tag_id) values
                   ('11111111-1111-4111-8111-111111111111', 'c2000000-0000-4000-8000-000000000001',
                    'd2000000-0000-4000-8000-0000000000f2')$$,
                 '23503', null, 'a pair of B that does not exist: the same foreign key error');
reset role;
select col_is_pk('public', 'contact_tags', array['contact_id', 'tag_id', 'workspace_id']::name[],
                 'contact_tags: pk (contact_id, tag_id, workspace_id)');

-- Grants as they stand (7) ----------------------------------------------------------------------------------
select ok(not exists (
        select 1 from pg_tables t, unnest(array['select', 'insert', 'update', 'delete', 'truncate',
                                                'references', 'trigger']) p
        where t.schemaname = 'public'
          and (has_table_privilege('anon', format('public.%I', t.tablename), p)
               or (p in ('select', 'insert', 'update', 'references')
                   and has_any_column_privilege('anon', format('public.%I', t.tablename), p)))
    ), 'anon holds no privilege on any public table');
select ok(not exists (
        select 1 from unnest(array['insert', 'update', 'delete', 'truncate', 'references', 'trigger']) p
        where has_table_privilege('authenticated', 'public.messages', p)
           or (p in ('insert', 'update', 'references')
               and has_any_column_privilege('authenticated', 'public.messages', p))
    ), 'authenticated may only read messages');
select ok(not exists (
        select 1 from unnest(array['select', 'insert', 'update', 'delete', 'truncate', 'references', 'trigger']) p
        where has_table_privilege('authenticated', 'public.reply_idempotency_keys', p)
           or (p in ('select', 'insert', 'update', 'references')
               and has_any_column_privilege('authenticated', 'public.reply_idempotency_keys', p))
    ), 'authenticated holds nothing on reply_idempotency_keys');
select ok(not exists (
        select 1 from unnest(array['truncate', 'references', 'trigger']) p, pg_tables t
        where t.schemaname = 'public' and has_table_privilege('authenticated', format('public.%I', t.tablename), p)
    ), 'authenticated holds no truncate, references or trigger privilege');
select ok(not has_column_privilege('authenticated', 'public.whatsapp_channels', 'api_key', 'select')
          and not has_column_privilege('authenticated', 'public.whatsapp_channels', 'webhook_secret_hash', 'select'),
          'channel secrets stay unreadable for agents');
select is(
    (select array_agg(c.relname::text order by c.relname) from pg_class c
     join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'public' and c.relkind = 'r' and not c.relrowsecurity),
    null, 'every public table has row-level security');
-- The local stack's bounds, as on hosted projects (db-max-rows is tested through PostgREST).
select ok((select setconfig @> array['statement_timeout=8s'] from pg_db_role_setting
           where setrole = 'authenticated'::regrole and setdatabase = 0),
          'authenticated''s statements time out after 8 s');

select * from finish();
rollback;
