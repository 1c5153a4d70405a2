-- Triggers on messages: conversation statistics (last_message_at, preview,
-- unread count, last customer message), batches in one statement,
-- out-of-order arrivals, reopening archived conversations, the workspace
-- copied from the conversation, previews per message type, updated_at.
-- Runs as postgres on rows of its own.
begin;
set local client_encoding = 'UTF8';
select plan(54);

insert into public.workspaces (id, name) values
    ('aaaaaaaa-0000-4000-8000-0000000001a1', 'Stats W1'),
    ('aaaaaaaa-0000-4000-8000-0000000001a2', 'Stats W2');
insert into public.conversations (id, workspace_id, phone, phone_number_id) values
    ('aaaaaaaa-f000-4000-8000-0000000001c1', 'aaaaaaaa-0000-4000-8000-0000000001a1', '+573001110001', '900000000000101'),
    ('aaaaaaaa-f000-4000-8000-0000000001c2', 'aaaaaaaa-0000-4000-8000-0000000001a1', '+573001110002', '900000000000101');

create temp view stats as
select id, last_message_at, last_message_preview, unread_count, is_read, last_customer_message_at, status
from public.conversations;

-- A new conversation ------------------------------------------------------------
select results_eq(
    $$select last_message_at, last_message_preview, unread_count, is_read, last_customer_message_at, status
      from stats where id = 'aaaaaaaa-f000-4000-8000-0000000001c1'$$,
    $$values (now(), null::text, 0, false, null::timestamptz, 'active'::text)$$,
    'a new conversation: last_message_at = creation time, no preview, nothing unread');

-- First inbound message (older than the conversation row itself) ---------------
insert into public.messages (conversation_id, wamid, direction, type, content, status, "timestamp")
values ('aaaaaaaa-f000-4000-8000-0000000001c1', 'wamid.ST.1', 'inbound', 'text', '{"body":"Hola"}', 'delivered',
        '2026-01-30 10:00:00+00');
select results_eq(
    $$select last_message_at, last_message_preview, unread_count, is_read, last_customer_message_at, status
      from stats where id = 'aaaaaaaa-f000-4000-8000-0000000001c1'$$,
    $$values ('2026-01-30 10:00:00+00'::timestamptz, 'Hola'::text, 1, false, '2026-01-30 10:00:00+00'::timestamptz, 'active'::text)$$,
    'inbound: last_message_at = the message''s time, preview, unread 1, last_customer_message_at');

-- Agent reads, then replies -------------------------------------------------------
update public.conversations set is_read = true, unread_count = 0 where id = 'aaaaaaaa-f000-4000-8000-0000000001c1';
insert into public.messages (conversation_id, direction, type, content, "timestamp")
values ('aaaaaaaa-f000-4000-8000-0000000001c1', 'outbound', 'text', '{"body":"Claro que sí"}', '2026-01-30 10:05:00+00');
select results_eq(
    $$select last_message_at, last_message_preview, unread_count, is_read, last_customer_message_at, status
      from stats where id = 'aaaaaaaa-f000-4000-8000-0000000001c1'$$,
    $$values ('2026-01-30 10:05:00+00'::timestamptz, 'Claro que sí'::text, 0, true, '2026-01-30 10:00:00+00'::timestamptz, 'active'::text)$$,
    'outbound: moves last_message_at and preview, leaves unread, read state and last_customer_message_at');

-- Out of order: older messages arrive late ------------------------------------------
insert into public.messages (conversation_id, wamid, direction, type, content, status, "timestamp")
values ('aaaaaaaa-f000-4000-8000-0000000001c1', 'wamid.ST.0', 'inbound', 'text', '{"body":"viejo"}', 'delivered',
        '2026-01-30 09:00:00+00');
select results_eq(
    $$select last_message_at, last_message_preview, unread_count, is_read, last_customer_message_at
      from stats where id = 'aaaaaaaa-f000-4000-8000-0000000001c1'$$,
    $$values ('2026-01-30 10:05:00+00'::timestamptz, 'Claro que sí'::text, 1, false, '2026-01-30 10:00:00+00'::timestamptz)$$,
    'a late, older inbound message counts as unread but moves neither last_message_at, preview nor last_customer_message_at');
insert into public.messages (conversation_id, direction, type, content, "timestamp")
values ('aaaaaaaa-f000-4000-8000-0000000001c1', 'outbound', 'text', '{"body":"viejo saliente"}', '2026-01-30 08:00:00+00');
select results_eq(
    $$select last_message_at, last_message_preview, unread_count from stats where id = 'aaaaaaaa-f000-4000-8000-0000000001c1'$$,
    $$values ('2026-01-30 10:05:00+00'::timestamptz, 'Claro que sí'::text, 1)$$,
    'a late, older outbound message changes nothing');

-- Several messages in ONE statement (statement-level trigger, transition table) ---
insert into public.messages (conversation_id, wamid, direction, type, content, status, "timestamp") values
    ('aaaaaaaa-f000-4000-8000-0000000001c1', 'wamid.ST.2', 'inbound', 'text', '{"body":"uno"}', 'delivered', '2026-01-30 10:10:00+00'),
    ('aaaaaaaa-f000-4000-8000-0000000001c1', 'wamid.ST.4', 'inbound', 'text', '{"body":"tres"}', 'delivered', '2026-01-30 10:12:00+00'),
    ('aaaaaaaa-f000-4000-8000-0000000001c1', 'wamid.ST.3', 'inbound', 'text', '{"body":"dos"}', 'delivered', '2026-01-30 10:11:00+00');
select results_eq(
    $$select last_message_at, last_message_preview, unread_count, is_read, last_customer_message_at
      from stats where id = 'aaaaaaaa-f000-4000-8000-0000000001c1'$$,
    $$values ('2026-01-30 10:12:00+00'::timestamptz, 'tres'::text, 4, false, '2026-01-30 10:12:00+00'::timestamptz)$$,
    'three inbound messages in one statement: +3 unread, the latest (not the last listed) gives time and preview');

-- One statement over two conversations, both directions ------------------------------
insert into public.messages (conversation_id, wamid, direction, type, content, status, "timestamp") values
    ('aaaaaaaa-f000-4000-8000-0000000001c2', 'wamid.ST.5', 'inbound', 'text', '{"body":"x"}', 'delivered', '2026-01-30 11:00:00+00'),
    ('aaaaaaaa-f000-4000-8000-0000000001c2', null, 'outbound', 'text', '{"body":"y"}', 'pending', '2026-01-30 11:01:00+00'),
    ('aaaaaaaa-f000-4000-8000-0000000001c1', null, 'outbound', 'text', '{"body":"z"}', 'pending', '2026-01-30 10:15:00+00');
select results_eq(
    $$select last_message_at, last_message_preview, unread_count, is_read, last_customer_message_at
      from stats where id = 'aaaaaaaa-f000-4000-8000-0000000001c2'$$,
    $$values ('2026-01-30 11:01:00+00'::timestamptz, 'y'::text, 1, false, '2026-01-30 11:00:00+00'::timestamptz)$$,
    'mixed batch: the second conversation gets its own latest preview and only its inbound count');
select results_eq(
    $$select last_message_at, last_message_preview, unread_count, last_customer_message_at
      from stats where id = 'aaaaaaaa-f000-4000-8000-0000000001c1'$$,
    $$values ('2026-01-30 10:15:00+00'::timestamptz, 'z'::text, 4, '2026-01-30 10:12:00+00'::timestamptz)$$,
    'mixed batch: the first conversation gets its outbound reply, unread unchanged');

-- Archived conversations -----------------------------------------------------------
update public.conversations set status = 'archived', is_read = true, unread_count = 0
where id = 'aaaaaaaa-f000-4000-8000-0000000001c1';
insert into public.messages (conversation_id, direction, type, content, "timestamp")
values ('aaaaaaaa-f000-4000-8000-0000000001c1', 'outbound', 'text', '{"body":"seguimos"}', '2026-01-30 10:20:00+00');
select results_eq(
    $$select status, is_read, unread_count from stats where id = 'aaaaaaaa-f000-4000-8000-0000000001c1'$$,
    $$values ('archived'::text, true, 0)$$,
    'an outbound message leaves an archived conversation archived and read');
insert into public.messages (conversation_id, wamid, direction, type, content, status, "timestamp")
values ('aaaaaaaa-f000-4000-8000-0000000001c1', 'wamid.ST.6', 'inbound', 'text', '{"body":"¿hola?"}', 'delivered',
        '2026-01-30 10:25:00+00');
select results_eq(
    $$select status, is_read, unread_count, last_message_preview from stats where id = 'aaaaaaaa-f000-4000-8000-0000000001c1'$$,
    $$values ('active'::text, false, 1, '¿hola?'::text)$$,
    'an inbound message reopens an archived conversation');
update public.conversations set status = 'archived' where id = 'aaaaaaaa-f000-4000-8000-0000000001c1';
insert into public.messages (conversation_id, wamid, direction, type, content, status, "timestamp")
values ('aaaaaaaa-f000-4000-8000-0000000001c1', 'wamid.ST.7', 'inbound', 'text', '{"body":"antiguo"}', 'delivered',
        '2026-01-29 10:00:00+00');
select is((select status from stats where id = 'aaaaaaaa-f000-4000-8000-0000000001c1'), 'active',
          'even a late, older inbound message reopens it');

-- The workspace always comes from the conversation ------------------------------------
insert into public.messages (id, conversation_id, workspace_id, direction, type, "timestamp")
values ('aaaaaaaa-e000-4000-8000-0000000001e1', 'aaaaaaaa-f000-4000-8000-0000000001c1',
        'aaaaaaaa-0000-4000-8000-0000000001a2', 'outbound', 'text', '2026-01-29 00:00:00+00');
select is((select workspace_id from public.messages where id = 'aaaaaaaa-e000-4000-8000-0000000001e1'),
          'aaaaaaaa-0000-4000-8000-0000000001a1'::uuid,
          'a wrong workspace_id on insert is replaced by the conversation''s');
insert into public.messages (id, conversation_id, direction, type, "timestamp")
values ('aaaaaaaa-e000-4000-8000-0000000001e2', 'aaaaaaaa-f000-4000-8000-0000000001c2', 'outbound', 'text',
        '2026-01-29 00:00:00+00');
select is((select workspace_id from public.messages where id = 'aaaaaaaa-e000-4000-8000-0000000001e2'),
          'aaaaaaaa-0000-4000-8000-0000000001a1'::uuid,
          'a missing workspace_id is filled from the conversation');
select throws_ok($$update public.messages set workspace_id = 'aaaaaaaa-0000-4000-8000-0000000001a2'
                   where id = 'aaaaaaaa-e000-4000-8000-0000000001e1'$$,
                 '23503', null, 'a message cannot be moved out of its conversation''s workspace');
select throws_ok($$insert into public.messages (conversation_id, direction, type)
                   values ('aaaaaaaa-f000-4000-8000-0000000001ff', 'inbound', 'text')$$,
                 '23503', 'conversation not found', 'a message for an unknown conversation is refused');
select throws_ok($$insert into public.contacts (phone) values ('+573001119999')$$,
                 '23502', 'workspace_id is required',
                 'other rows without workspace_id need a caller with exactly one workspace');

-- Previews per type, all in one statement over 30 conversations --------------------
create temp table previews (n integer, type text, content jsonb, expected text) on commit drop;
insert into previews values
    (1, 'text', '{"body":"Hola, ¿tienen talla M?"}', 'Hola, ¿tienen talla M?'),
    (2, 'text', '{"body":"  línea uno\n\n   línea\tdos  "}', 'línea uno línea dos'),
    (3, 'text', '{}', 'Message'),
    (4, 'image', '{"id":"media-1"}', 'Photo'),
    (5, 'image', '{"caption":"Mira esta foto"}', 'Mira esta foto'),
    (6, 'video', '{}', 'Video'),
    (7, 'audio', '{"voice":true}', 'Voice message'),
    (8, 'audio', '{"voice":false}', 'Audio'),
    (9, 'document', '{"filename":"x.pdf"}', 'Document x.pdf'),
    (10, 'document', '{"filename":"x.pdf","caption":"Factura de enero"}', 'Factura de enero'),
    (11, 'document', '{}', 'Document'),
    (12, 'sticker', '{}', 'Sticker'),
    (13, 'location', '{"name":"Tienda Centro","address":"Cra 7 # 12-34","latitude":4.6,"longitude":-74.1}', 'Location: Tienda Centro'),
    (14, 'location', '{"address":"Cra 7 # 12-34"}', 'Location: Cra 7 # 12-34'),
    (15, 'location', '{"latitude":4.6,"longitude":-74.1}', 'Location'),
    (16, 'contacts', '{"contacts":[{"name":{"formatted_name":"Ana Ruiz"}}]}', 'Contact: Ana Ruiz'),
    (17, 'contacts', '{"contacts":[{"name":{"formatted_name":"Ana"}},{"name":{"formatted_name":"Luis"}}]}', '2 contacts'),
    (18, 'order', '{"product_items":[{"product_retailer_id":"a"},{"product_retailer_id":"b"},{"product_retailer_id":"c"}]}', 'Order (3 items)'),
    (19, 'order', '{"product_items":[{"product_retailer_id":"a"}]}', 'Order (1 item)'),
    (20, 'order', '{"text":"Para el viernes","product_items":[{}]}', 'Para el viernes'),
    (21, 'interactive', '{"title":"Sí, confirmo"}', 'Sí, confirmo'),
    (22, 'button', '{"text":"Confirmar","payload":"CONFIRM"}', 'Confirmar'),
    (23, 'reaction', '{"emoji":"👍"}', 'Reacted 👍'),
    (24, 'template', '{"name":"order_update"}', 'Template: order_update'),
    (25, 'unsupported', '{}', 'Unsupported message'),
    (26, 'system', '{"body":"El cliente cambió de número"}', 'El cliente cambió de número'),
    (27, 'text', jsonb_build_object('body', repeat('a', 150)), repeat('a', 99) || '…'),
    (28, 'text', jsonb_build_object('body', repeat('b', 100)), repeat('b', 100)),
    (29, 'text', jsonb_build_object('body', repeat('c', 98) || ' ' || repeat('d', 20)), repeat('c', 98) || '…'),
    (30, 'image', jsonb_build_object('caption', repeat('é', 120)), repeat('é', 99) || '…');

insert into public.conversations (id, workspace_id, phone, phone_number_id)
select ('aaaaaaaa-f000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'aaaaaaaa-0000-4000-8000-0000000001a2',
       '+57300200' || lpad(n::text, 4, '0'), '900000000000102'
from previews;
insert into public.messages (conversation_id, direction, type, content, status, "timestamp")
select ('aaaaaaaa-f000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'inbound', type, content, 'delivered',
       '2026-01-30 12:00:00+00'
from previews;

select is(c.last_message_preview, p.expected, format('preview of %s #%s', p.type, p.n))
from previews p
join public.conversations c on c.id = ('aaaaaaaa-f000-4000-8000-' || lpad(p.n::text, 12, '0'))::uuid
order by p.n;
select ok(bool_and(length(c.last_message_preview) <= 100), 'no preview is longer than 100 characters')
from public.conversations c where c.workspace_id = 'aaaaaaaa-0000-4000-8000-0000000001a2';
select is((select length(last_message_preview) from public.conversations
           where id = 'aaaaaaaa-f000-4000-8000-000000000027'), 100, 'a truncated preview is exactly 100 characters');
select is((select count(*)::integer from public.conversations
           where workspace_id = 'aaaaaaaa-0000-4000-8000-0000000001a2' and unread_count = 1
             and last_message_at = '2026-01-30 12:00:00+00' and last_customer_message_at = '2026-01-30 12:00:00+00'),
          30, 'one statement over 30 conversations updates each of them once');

-- updated_at is maintained on update ---------------------------------------------------
insert into public.contacts (id, workspace_id, phone, updated_at)
values ('aaaaaaaa-c000-4000-8000-0000000001d1', 'aaaaaaaa-0000-4000-8000-0000000001a1', '+573001118888', '2000-01-01');
insert into public.orders (id, workspace_id, total, updated_at)
values ('aaaaaaaa-0a00-4000-8000-0000000001d1', 'aaaaaaaa-0000-4000-8000-0000000001a1', 1, '2000-01-01');
insert into public.whatsapp_channels (id, workspace_id, phone_number_id, api_key, updated_at)
values ('aaaaaaaa-ce00-4000-8000-0000000001d1', 'aaaaaaaa-0000-4000-8000-0000000001a1', '900000000000109', 'k', '2000-01-01');
update public.workspaces set updated_at = '2000-01-01' where id = 'aaaaaaaa-0000-4000-8000-0000000001a1';
insert into public.conversations (id, workspace_id, phone, phone_number_id, updated_at)
values ('aaaaaaaa-f000-4000-8000-0000000001c3', 'aaaaaaaa-0000-4000-8000-0000000001a1', '+573001110003',
        '900000000000101', '2000-01-01');
select is((select updated_at from public.workspaces where id = 'aaaaaaaa-0000-4000-8000-0000000001a1'), now(),
          'workspaces.updated_at cannot be backdated by an update');
update public.contacts set city = 'Cali' where id = 'aaaaaaaa-c000-4000-8000-0000000001d1';
update public.orders set status = 'paid' where id = 'aaaaaaaa-0a00-4000-8000-0000000001d1';
update public.whatsapp_channels set name = 'Ventas' where id = 'aaaaaaaa-ce00-4000-8000-0000000001d1';
update public.conversations set is_read = true where id = 'aaaaaaaa-f000-4000-8000-0000000001c3';
select is((select updated_at from public.contacts where id = 'aaaaaaaa-c000-4000-8000-0000000001d1'), now(),
          'contacts.updated_at is set on update');
select is((select updated_at from public.orders where id = 'aaaaaaaa-0a00-4000-8000-0000000001d1'), now(),
          'orders.updated_at is set on update');
select is((select updated_at from public.whatsapp_channels where id = 'aaaaaaaa-ce00-4000-8000-0000000001d1'), now(),
          'whatsapp_channels.updated_at is set on update');
select is((select updated_at from public.conversations where id = 'aaaaaaaa-f000-4000-8000-0000000001c3'), now(),
          'conversations.updated_at is set on update');

select * from finish();
rollback;
