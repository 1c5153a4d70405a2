-- Structure: primary keys, foreign keys (incl. the composite ones that keep
-- children in their parent's workspace), unique constraints and check
-- constraints, the last two proven by behaviour. Runs as postgres (bypasses
-- RLS) on rows of its own, rolled back at the end.
begin;
select plan(76);

-- Fixtures --------------------------------------------------------------------
insert into auth.users (id, email) values
    ('cccccccc-0000-4000-8000-000000000001', 'member-w1@example.com'),
    ('cccccccc-0000-4000-8000-000000000002', 'stranger@example.com');
insert into public.workspaces (id, name) values
    ('aaaaaaaa-0000-4000-8000-000000000001', 'W1'),
    ('aaaaaaaa-0000-4000-8000-000000000002', 'W2');
insert into public.workspace_members (workspace_id, user_id) values
    ('aaaaaaaa-0000-4000-8000-000000000001', 'cccccccc-0000-4000-8000-000000000001');
insert into public.contacts (id, workspace_id, name, phone) values
    ('aaaaaaaa-c000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000001', 'C1', '+573000000001'),
    ('aaaaaaaa-c000-4000-8000-000000000002', 'aaaaaaaa-0000-4000-8000-000000000002', 'C2', '+573000000002');
insert into public.tags (id, workspace_id, name) values
    ('aaaaaaaa-d000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000001', 'T1'),
    ('aaaaaaaa-d000-4000-8000-000000000002', 'aaaaaaaa-0000-4000-8000-000000000002', 'T2');
insert into public.contact_tags (workspace_id, contact_id, tag_id) values
    ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-c000-4000-8000-000000000001', 'aaaaaaaa-d000-4000-8000-000000000001');
insert into public.orders (id, workspace_id, contact_id, total) values
    ('aaaaaaaa-0a00-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-c000-4000-8000-000000000001', 10);
insert into public.whatsapp_channels (workspace_id, phone_number_id, api_key) values
    ('aaaaaaaa-0000-4000-8000-000000000001', '900000000000001', 'k1');
insert into public.conversations (id, workspace_id, contact_id, phone, phone_number_id, assigned_to) values
    ('aaaaaaaa-f000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000001',
     'aaaaaaaa-c000-4000-8000-000000000001', '+573000000001', '900000000000001',
     'cccccccc-0000-4000-8000-000000000001'),
    ('aaaaaaaa-f000-4000-8000-000000000002', 'aaaaaaaa-0000-4000-8000-000000000002',
     null, '+573000000002', '900000000000002', null);
insert into public.messages (id, conversation_id, wamid, direction, type, content, sent_by) values
    ('aaaaaaaa-e000-4000-8000-000000000001', 'aaaaaaaa-f000-4000-8000-000000000001', 'wamid.K1', 'outbound', 'text',
     '{"body":"hi"}', 'cccccccc-0000-4000-8000-000000000001');
insert into public.reply_idempotency_keys (message_id, conversation_id, sent_by, key) values
    ('aaaaaaaa-e000-4000-8000-000000000001', 'aaaaaaaa-f000-4000-8000-000000000001',
     'cccccccc-0000-4000-8000-000000000001', 'idem-1');

-- Primary keys (9) ------------------------------------------------------------
select col_is_pk('public', 'workspaces', array['id']::name[], 'workspaces: pk (id)');
select col_is_pk('public', 'workspace_members', array['workspace_id', 'user_id']::name[], 'workspace_members: pk (workspace_id, user_id)');
select col_is_pk('public', 'contacts', array['id']::name[], 'contacts: pk (id)');
select col_is_pk('public', 'tags', array['id']::name[], 'tags: pk (id)');
select col_is_pk('public', 'contact_tags', array['contact_id', 'tag_id', 'workspace_id']::name[], 'contact_tags: pk (contact_id, tag_id, workspace_id)');
select col_is_pk('public', 'orders', array['id']::name[], 'orders: pk (id)');
select col_is_pk('public', 'whatsapp_channels', array['id']::name[], 'whatsapp_channels: pk (id)');
select col_is_pk('public', 'conversations', array['id']::name[], 'conversations: pk (id)');
select col_is_pk('public', 'messages', array['id']::name[], 'messages: pk (id)');

-- Foreign keys (16) -----------------------------------------------------------
select fk_ok('public', 'workspace_members', array['workspace_id']::name[], 'public', 'workspaces', array['id']::name[]);
select fk_ok('public', 'workspace_members', array['user_id']::name[], 'auth', 'users', array['id']::name[]);
select fk_ok('public', 'contacts', array['workspace_id']::name[], 'public', 'workspaces', array['id']::name[]);
select fk_ok('public', 'tags', array['workspace_id']::name[], 'public', 'workspaces', array['id']::name[]);
select fk_ok('public', 'contact_tags', array['workspace_id']::name[], 'public', 'workspaces', array['id']::name[]);
select fk_ok('public', 'contact_tags', array['workspace_id', 'contact_id']::name[], 'public', 'contacts', array['workspace_id', 'id']::name[]);
select fk_ok('public', 'contact_tags', array['workspace_id', 'tag_id']::name[], 'public', 'tags', array['workspace_id', 'id']::name[]);
select fk_ok('public', 'orders', array['workspace_id']::name[], 'public', 'workspaces', array['id']::name[]);
select fk_ok('public', 'orders', array['workspace_id', 'contact_id']::name[], 'public', 'contacts', array['workspace_id', 'id']::name[]);
select fk_ok('public', 'whatsapp_channels', array['workspace_id']::name[], 'public', 'workspaces', array['id']::name[]);
select fk_ok('public', 'conversations', array['workspace_id']::name[], 'public', 'workspaces', array['id']::name[]);
select fk_ok('public', 'conversations', array['workspace_id', 'contact_id']::name[], 'public', 'contacts', array['workspace_id', 'id']::name[]);
select fk_ok('public', 'conversations', array['assigned_to']::name[], 'auth', 'users', array['id']::name[]);
select fk_ok('public', 'messages', array['workspace_id']::name[], 'public', 'workspaces', array['id']::name[]);
select fk_ok('public', 'messages', array['workspace_id', 'conversation_id']::name[], 'public', 'conversations', array['workspace_id', 'id']::name[]);
select fk_ok('public', 'messages', array['sent_by']::name[], 'auth', 'users', array['id']::name[]);

-- Foreign keys by behaviour: nothing crosses a workspace (6) -------------------
select throws_ok($$update public.conversations set contact_id = 'aaaaaaaa-c000-4000-8000-000000000002'
                   where id = 'aaaaaaaa-f000-4000-8000-000000000001'$$,
                 '23503', null, 'a conversation cannot link a contact of another workspace');
select throws_ok($$update public.messages set workspace_id = 'aaaaaaaa-0000-4000-8000-000000000002'
                   where id = 'aaaaaaaa-e000-4000-8000-000000000001'$$,
                 '23503', null, 'a message cannot move to a workspace other than its conversation''s');
select throws_ok($$insert into public.contact_tags (workspace_id, contact_id, tag_id) values
                   ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-c000-4000-8000-000000000001', 'aaaaaaaa-d000-4000-8000-000000000002')$$,
                 '23503', null, 'a contact cannot carry a tag of another workspace');
select throws_ok($$insert into public.orders (workspace_id, contact_id, total) values
                   ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-c000-4000-8000-000000000002', 1)$$,
                 '23503', null, 'an order cannot point to a contact of another workspace');
select throws_ok($$insert into public.messages (conversation_id, direction, type) values
                   ('aaaaaaaa-f000-4000-8000-0000000000ff', 'inbound', 'text')$$,
                 '23503', null, 'a message needs an existing conversation');
select throws_ok($$update public.conversations set assigned_to = 'cccccccc-0000-4000-8000-000000000002'
                   where id = 'aaaaaaaa-f000-4000-8000-000000000001'$$,
                 '23503', null, 'only a member of the workspace can be assigned');

-- Unique (10) -------------------------------------------------------------------
select throws_ok($$insert into public.conversations (workspace_id, phone, phone_number_id) values
                   ('aaaaaaaa-0000-4000-8000-000000000001', '+573000000001', '900000000000001')$$,
                 '23505', null, 'one conversation per (workspace, phone)');
select lives_ok($$insert into public.conversations (workspace_id, phone, phone_number_id) values
                  ('aaaaaaaa-0000-4000-8000-000000000002', '+573000000001', '900000000000002')$$,
                'the same phone may talk to another workspace');
select throws_ok($$insert into public.messages (conversation_id, wamid, direction, type) values
                   ('aaaaaaaa-f000-4000-8000-000000000002', 'wamid.K1', 'inbound', 'text')$$,
                 '23505', null, 'a wamid is stored once, across conversations');
select lives_ok($$insert into public.messages (conversation_id, direction, type) values
                  ('aaaaaaaa-f000-4000-8000-000000000001', 'outbound', 'text'),
                  ('aaaaaaaa-f000-4000-8000-000000000001', 'outbound', 'text')$$,
                'many messages may have no wamid yet');
select throws_ok($$insert into public.reply_idempotency_keys (message_id, conversation_id, sent_by, key)
                   select m.id, m.conversation_id, 'cccccccc-0000-4000-8000-000000000001', 'idem-1'
                   from public.messages m where m.wamid is null and m.conversation_id = 'aaaaaaaa-f000-4000-8000-000000000001' limit 1$$,
                 '23505', null, 'an idempotency key is used once per (conversation, sender)');
select lives_ok($$insert into public.reply_idempotency_keys (message_id, conversation_id, sent_by, key)
                  select m.id, m.conversation_id, 'cccccccc-0000-4000-8000-000000000002', 'idem-1'
                  from public.messages m where m.wamid is null and m.conversation_id = 'aaaaaaaa-f000-4000-8000-000000000001' limit 1$$,
                'another sender may use the same key in the same conversation');
select throws_ok($$insert into public.contacts (workspace_id, phone) values
                   ('aaaaaaaa-0000-4000-8000-000000000001', '+573000000001')$$,
                 '23505', null, 'one contact per (workspace, phone)');
select throws_ok($$insert into public.tags (workspace_id, name) values ('aaaaaaaa-0000-4000-8000-000000000001', 'T1')$$,
                 '23505', null, 'tag names are unique per workspace');
select throws_ok($$insert into public.whatsapp_channels (workspace_id, phone_number_id, api_key) values
                   ('aaaaaaaa-0000-4000-8000-000000000002', '900000000000001', 'k2')$$,
                 '23505', null, 'a phone_number_id belongs to one channel');
select throws_ok($$insert into public.workspace_members (workspace_id, user_id) values
                   ('aaaaaaaa-0000-4000-8000-000000000001', 'cccccccc-0000-4000-8000-000000000001')$$,
                 '23505', null, 'a user is a member of a workspace once');

-- Check constraints (25) --------------------------------------------------------
select throws_ok($$insert into public.workspaces (name) values ('   ')$$, '23514', null, 'workspace name must not be blank');
select throws_ok($$insert into public.workspaces (name, timezone) values ('X', 'Mars/Olympus_Mons')$$, '23514', null, 'workspace timezone must be a real zone');
select lives_ok($$insert into public.workspaces (name, timezone) values ('X', 'Asia/Tokyo')$$, 'a real time zone is accepted');
select throws_ok($$insert into public.workspace_members (workspace_id, user_id, role) values
                   ('aaaaaaaa-0000-4000-8000-000000000002', 'cccccccc-0000-4000-8000-000000000001', 'boss')$$,
                 '23514', null, 'member role is owner, admin or agent');
select throws_ok($$insert into public.contacts (workspace_id, phone) values ('aaaaaaaa-0000-4000-8000-000000000001', '3001234567')$$,
                 '23514', null, 'contact phone must be E.164');
select throws_ok($$insert into public.contacts (workspace_id, phone, email) values ('aaaaaaaa-0000-4000-8000-000000000001', '+573001234599', 'nope')$$,
                 '23514', null, 'contact email must look like an email');
select throws_ok($$insert into public.tags (workspace_id, name, color) values ('aaaaaaaa-0000-4000-8000-000000000001', 'X', 'red')$$,
                 '23514', null, 'tag color is #rrggbb');
select throws_ok($$insert into public.orders (workspace_id, total) values ('aaaaaaaa-0000-4000-8000-000000000001', -1)$$,
                 '23514', null, 'order total is not negative');
select throws_ok($$insert into public.orders (workspace_id, total, currency) values ('aaaaaaaa-0000-4000-8000-000000000001', 1, 'cop')$$,
                 '23514', null, 'order currency is an ISO code');
select throws_ok($$insert into public.orders (workspace_id, total, status) values ('aaaaaaaa-0000-4000-8000-000000000001', 1, 'lost')$$,
                 '23514', null, 'order status is from the list');
select throws_ok($$insert into public.whatsapp_channels (workspace_id, phone_number_id, api_key) values
                   ('aaaaaaaa-0000-4000-8000-000000000001', 'abc', 'k')$$,
                 '23514', null, 'phone_number_id is digits');
select throws_ok($$insert into public.whatsapp_channels (workspace_id, phone_number_id, api_key, webhook_secret_hash) values
                   ('aaaaaaaa-0000-4000-8000-000000000001', '900000000000009', 'k', 'not-a-sha256')$$,
                 '23514', null, 'webhook_secret_hash is a hex sha256');
select throws_ok($$insert into public.conversations (workspace_id, phone, phone_number_id) values
                   ('aaaaaaaa-0000-4000-8000-000000000001', '+0573001234567', '900000000000001')$$,
                 '23514', null, 'conversation phone must be E.164');
select throws_ok($$update public.conversations set status = 'closed' where id = 'aaaaaaaa-f000-4000-8000-000000000001'$$,
                 '23514', null, 'conversation status is active or archived');
select throws_ok($$update public.conversations set unread_count = -1 where id = 'aaaaaaaa-f000-4000-8000-000000000001'$$,
                 '23514', null, 'unread_count is not negative');
select throws_ok($$insert into public.messages (conversation_id, direction, type) values
                   ('aaaaaaaa-f000-4000-8000-000000000001', 'sideways', 'text')$$,
                 '23514', null, 'direction is inbound or outbound');
select throws_ok($$insert into public.messages (conversation_id, direction, type) values
                   ('aaaaaaaa-f000-4000-8000-000000000001', 'inbound', 'fax')$$,
                 '23514', null, 'type is from the list');
select throws_ok($$insert into public.messages (conversation_id, direction, type, status) values
                   ('aaaaaaaa-f000-4000-8000-000000000001', 'inbound', 'text', 'bounced')$$,
                 '23514', null, 'status is from the list');
select throws_ok($$insert into public.messages (conversation_id, direction, type, content) values
                   ('aaaaaaaa-f000-4000-8000-000000000001', 'inbound', 'text', '[]')$$,
                 '23514', null, 'content is a JSON object');
select throws_ok($$insert into public.messages (conversation_id, direction, type, content) values
                   ('aaaaaaaa-f000-4000-8000-000000000001', 'inbound', 'text', null)$$,
                 '23502', null, 'content is required');
select throws_ok($$insert into public.messages (conversation_id, direction, type, reaction) values
                   ('aaaaaaaa-f000-4000-8000-000000000001', 'inbound', 'text', '"x"')$$,
                 '23514', null, 'reaction is a JSON object');
select throws_ok($$insert into public.reply_idempotency_keys (message_id, conversation_id, sent_by, key)
                   values ('aaaaaaaa-e000-4000-8000-000000000001', 'aaaaaaaa-f000-4000-8000-000000000001',
                           'cccccccc-0000-4000-8000-000000000002', '')$$,
                 '23514', null, 'an idempotency key is not empty');
select lives_ok($$insert into public.messages (conversation_id, direction, type)
                  select 'aaaaaaaa-f000-4000-8000-000000000001', 'inbound', t
                  from unnest(array['text', 'image', 'video', 'audio', 'document', 'sticker', 'location', 'contacts',
                                    'template', 'interactive', 'reaction', 'button', 'order', 'system',
                                    'unsupported']) t$$,
                'every message type WhatsApp sends is accepted');
select lives_ok($$insert into public.messages (conversation_id, direction, type, status)
                  select 'aaaaaaaa-f000-4000-8000-000000000001', 'outbound', 'text', s
                  from unnest(array['pending', 'sent', 'delivered', 'read', 'failed']) s$$,
                'every status is accepted');
select is((select count(*)::integer from public.messages
           where conversation_id = 'aaaaaaaa-f000-4000-8000-000000000001' and direction = 'inbound'),
          15, 'the 15 accepted types were stored');

-- On delete (10) ----------------------------------------------------------------
delete from public.contacts where id = 'aaaaaaaa-c000-4000-8000-000000000001';
select is((select contact_id from public.conversations where id = 'aaaaaaaa-f000-4000-8000-000000000001'), null,
          'deleting a contact unlinks its conversation');
select is((select workspace_id from public.conversations where id = 'aaaaaaaa-f000-4000-8000-000000000001'),
          'aaaaaaaa-0000-4000-8000-000000000001'::uuid, '... and keeps the conversation''s workspace');
select is((select contact_id from public.orders where id = 'aaaaaaaa-0a00-4000-8000-000000000001'), null,
          'deleting a contact keeps its orders, unlinked');
select is((select count(*)::integer from public.contact_tags where contact_id = 'aaaaaaaa-c000-4000-8000-000000000001'), 0,
          'deleting a contact deletes its tag links');

delete from auth.users where id = 'cccccccc-0000-4000-8000-000000000001';
select is((select assigned_to from public.conversations where id = 'aaaaaaaa-f000-4000-8000-000000000001'), null,
          'deleting a user unassigns their conversations');
select is((select sent_by from public.messages where id = 'aaaaaaaa-e000-4000-8000-000000000001'), null,
          'deleting a user keeps their messages, without sender');
select is((select count(*)::integer from public.workspace_members where user_id = 'cccccccc-0000-4000-8000-000000000001'), 0,
          'deleting a user ends their memberships');

delete from public.conversations where id = 'aaaaaaaa-f000-4000-8000-000000000001';
select is((select count(*)::integer from public.messages where conversation_id = 'aaaaaaaa-f000-4000-8000-000000000001'), 0,
          'deleting a conversation deletes its messages');

delete from public.workspaces where id = 'aaaaaaaa-0000-4000-8000-000000000002';
select is((select count(*)::integer from public.conversations where workspace_id = 'aaaaaaaa-0000-4000-8000-000000000002')
          + (select count(*)::integer from public.messages where workspace_id = 'aaaaaaaa-0000-4000-8000-000000000002')
          + (select count(*)::integer from public.contacts where workspace_id = 'aaaaaaaa-0000-4000-8000-000000000002')
          + (select count(*)::integer from public.tags where workspace_id = 'aaaaaaaa-0000-4000-8000-000000000002'),
          0, 'deleting a workspace deletes its conversations, messages, contacts and tags');
select is((select count(*)::integer from public.whatsapp_channels where workspace_id = 'aaaaaaaa-0000-4000-8000-000000000001'),
          1, 'other workspaces keep their rows');

select * from finish();
rollback;
