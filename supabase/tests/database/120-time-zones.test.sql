-- Time: every stored instant is a timestamptz holding the true instant,
-- whatever the session's TimeZone. Writes under Asia/Tokyo (UTC+9) and
-- America/Bogota (UTC-5) must agree with now() and with each other.
begin;
set local client_encoding = 'UTF8';
select plan(15);

insert into public.workspaces (id, name, timezone) values
    ('aaaaaaaa-0000-4000-8000-0000000002a1', 'TZ W1', 'America/Bogota');

-- Session in Tokyo ---------------------------------------------------------------
set local timezone = 'Asia/Tokyo';
insert into public.conversations (id, workspace_id, phone, phone_number_id) values
    ('aaaaaaaa-f000-4000-8000-0000000002c1', 'aaaaaaaa-0000-4000-8000-0000000002a1', '+573001120001', '900000000000201');
insert into public.messages (id, conversation_id, direction, type, content) values
    ('aaaaaaaa-e000-4000-8000-0000000002e1', 'aaaaaaaa-f000-4000-8000-0000000002c1', 'outbound', 'text', '{"body":"tokyo"}');

select results_eq(
    $$select created_at, updated_at, last_message_at from public.conversations where id = 'aaaaaaaa-f000-4000-8000-0000000002c1'$$,
    $$values (now(), now(), now())$$,
    'Tokyo session: conversation defaults are the current instant');
select results_eq(
    $$select "timestamp", created_at from public.messages where id = 'aaaaaaaa-e000-4000-8000-0000000002e1'$$,
    $$values (now(), now())$$,
    'Tokyo session: message defaults are the current instant');
select is((select last_message_at from public.conversations where id = 'aaaaaaaa-f000-4000-8000-0000000002c1'),
          (select "timestamp" from public.messages where id = 'aaaaaaaa-e000-4000-8000-0000000002e1'),
          'Tokyo session: the trigger copies the message instant unchanged');

-- Same transaction, session in Bogota ------------------------------------------------
set local timezone = 'America/Bogota';
insert into public.conversations (id, workspace_id, phone, phone_number_id) values
    ('aaaaaaaa-f000-4000-8000-0000000002c2', 'aaaaaaaa-0000-4000-8000-0000000002a1', '+573001120002', '900000000000201');
insert into public.messages (id, conversation_id, direction, type, content) values
    ('aaaaaaaa-e000-4000-8000-0000000002e2', 'aaaaaaaa-f000-4000-8000-0000000002c2', 'outbound', 'text', '{"body":"bogota"}');

select results_eq(
    $$select created_at, updated_at, last_message_at from public.conversations where id = 'aaaaaaaa-f000-4000-8000-0000000002c2'$$,
    $$values (now(), now(), now())$$,
    'Bogota session: conversation defaults are the current instant');
select results_eq(
    $$select "timestamp", created_at from public.messages where id = 'aaaaaaaa-e000-4000-8000-0000000002e2'$$,
    $$values (now(), now())$$,
    'Bogota session: message defaults are the current instant');
select is((select created_at from public.conversations where id = 'aaaaaaaa-f000-4000-8000-0000000002c1'),
          (select created_at from public.conversations where id = 'aaaaaaaa-f000-4000-8000-0000000002c2'),
          'rows written under Tokyo and Bogota in one transaction hold the same instant');
select is((select extract(epoch from created_at) from public.conversations where id = 'aaaaaaaa-f000-4000-8000-0000000002c1'),
          extract(epoch from now()),
          'the stored epoch is the epoch of now(), not shifted by a zone');
select is((select created_at at time zone 'UTC' from public.conversations where id = 'aaaaaaaa-f000-4000-8000-0000000002c1'),
          now() at time zone 'UTC',
          'read back in UTC, the Tokyo-written instant is the UTC now');

-- Order by instant, not by wall clock --------------------------------------------------
-- 13:30 UTC written from Tokyo (22:30 local), then 13:40 UTC written from
-- Bogota (08:40 local): the Bogota one is later although its clock reads less.
set local timezone = 'Asia/Tokyo';
insert into public.conversations (id, workspace_id, phone, phone_number_id) values
    ('aaaaaaaa-f000-4000-8000-0000000002c3', 'aaaaaaaa-0000-4000-8000-0000000002a1', '+573001120003', '900000000000201');
insert into public.messages (conversation_id, wamid, direction, type, content, status, "timestamp") values
    ('aaaaaaaa-f000-4000-8000-0000000002c3', 'wamid.TZ.1', 'inbound', 'text', '{"body":"desde Tokio"}', 'delivered',
     '2026-01-30 22:30:00');
set local timezone = 'America/Bogota';
insert into public.messages (conversation_id, wamid, direction, type, content, status, "timestamp") values
    ('aaaaaaaa-f000-4000-8000-0000000002c3', 'wamid.TZ.2', 'inbound', 'text', '{"body":"desde Bogotá"}', 'delivered',
     '2026-01-30 08:40:00');
-- ...and an older one written from Tokyo whose wall clock reads later (22:35).
set local timezone = 'Asia/Tokyo';
insert into public.messages (conversation_id, wamid, direction, type, content, status, "timestamp") values
    ('aaaaaaaa-f000-4000-8000-0000000002c3', 'wamid.TZ.3', 'inbound', 'text', '{"body":"tarde"}', 'delivered',
     '2026-01-30 22:35:00');
set local timezone = 'UTC';
select is((select "timestamp" from public.messages where wamid = 'wamid.TZ.1'), '2026-01-30 13:30:00+00'::timestamptz,
          'a local Tokyo time is stored as its UTC instant');
select is((select "timestamp" from public.messages where wamid = 'wamid.TZ.2'), '2026-01-30 13:40:00+00'::timestamptz,
          'a local Bogota time is stored as its UTC instant');
select results_eq(
    $$select last_message_at, last_message_preview, last_customer_message_at
      from public.conversations where id = 'aaaaaaaa-f000-4000-8000-0000000002c3'$$,
    $$values ('2026-01-30 13:40:00+00'::timestamptz, 'desde Bogotá'::text, '2026-01-30 13:40:00+00'::timestamptz)$$,
    'the latest instant wins across zones; a message whose local clock reads later but is older does not');

-- Presentation in the workspace's zone ---------------------------------------------------
select is((select c.last_message_at at time zone w.timezone
           from public.conversations c join public.workspaces w on w.id = c.workspace_id
           where c.id = 'aaaaaaaa-f000-4000-8000-0000000002c3'),
          '2026-01-30 08:40:00'::timestamp,
          'the workspace time zone is for presentation: 13:40 UTC shows as 08:40 in Bogota');

-- Updates under a zone ---------------------------------------------------------------------
set local timezone = 'Asia/Tokyo';
update public.workspaces set updated_at = '2000-01-01', name = 'TZ W1b' where id = 'aaaaaaaa-0000-4000-8000-0000000002a1';
select is((select updated_at from public.workspaces where id = 'aaaaaaaa-0000-4000-8000-0000000002a1'), now(),
          'updated_at under Tokyo is now()');

-- Catalog: nothing that could store a zone-less time ------------------------------------------
select is_empty(
    $$select c.relname || '.' || a.attname
      from pg_attribute a
      join pg_class c on c.oid = a.attrelid
      where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
        and a.attnum > 0 and not a.attisdropped
        and a.atttypid in ('timestamp'::regtype, 'time'::regtype, 'timetz'::regtype)$$,
    'no column in public is timestamp without time zone (or a bare time)');
select is_empty(
    $$select c.relname || '.' || a.attname
      from pg_attrdef d
      join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
      join pg_class c on c.oid = d.adrelid
      where c.relnamespace = 'public'::regnamespace
        and pg_get_expr(d.adbin, d.adrelid) ~* 'timezone\('$$,
    'no default in public shifts now() into a zone (timezone(...))');

select * from finish();
rollback;
