-- RLS matrix, service_role: bypasses RLS and holds every table privilege, so
-- the webhook worker and the service can read and write across workspaces.
begin;
select plan(36);

insert into auth.users (id, email) values ('cccccccc-0000-4000-8000-0000000000c9', 'outsider@example.com');

set local role service_role;
set local request.jwt.claims = '{"role":"service_role"}';

-- Select: rows of both workspaces (9) ---------------------------------------------------------
select is((select count(*)::integer from public.workspaces
           where id in ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222')),
          2, 'service role sees both workspaces');
select is(
    (select count(distinct workspace_id)::integer from public.workspace_members
     where workspace_id in ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222')),
    2, 'service role sees the memberships of both workspaces');
select is(x.n, 2, format('service role sees %s of both workspaces', x.t))
from (
    select 'contacts' t, count(distinct workspace_id)::integer n from public.contacts
        where workspace_id in ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222')
    union all
    select 'tags', count(distinct workspace_id)::integer from public.tags
        where workspace_id in ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222')
    union all
    select 'contact_tags', count(distinct workspace_id)::integer from public.contact_tags
        where workspace_id in ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222')
    union all
    select 'orders', count(distinct workspace_id)::integer from public.orders
        where workspace_id in ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222')
    union all
    select 'whatsapp_channels', count(distinct workspace_id)::integer from public.whatsapp_channels
        where workspace_id in ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222')
    union all
    select 'conversations', count(distinct workspace_id)::integer from public.conversations
        where workspace_id in ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222')
    union all
    select 'messages', count(distinct workspace_id)::integer from public.messages
        where workspace_id in ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222')
) x order by x.t;

-- workspaces (3) ---------------------------------------------------------------------------------
select results_eq($$insert into public.workspaces (id, name) values ('aaaaaaaa-0000-4000-8000-0000000007a1', 'SR') returning name$$,
                  $$values ('SR'::text)$$, 'service role creates a workspace');
select results_eq($$update public.workspaces set name = 'SR2' where id = 'aaaaaaaa-0000-4000-8000-0000000007a1' returning name$$,
                  $$values ('SR2'::text)$$, 'service role renames a workspace');
-- deleted at the end, after its children

-- workspace_members (3) ------------------------------------------------------------------------------
select results_eq($$insert into public.workspace_members (workspace_id, user_id)
                    values ('aaaaaaaa-0000-4000-8000-0000000007a1', 'cccccccc-0000-4000-8000-0000000000c9') returning role$$,
                  $$values ('agent'::text)$$, 'service role adds a member');
select results_eq($$update public.workspace_members set role = 'admin'
                    where user_id = 'cccccccc-0000-4000-8000-0000000000c9' returning role$$,
                  $$values ('admin'::text)$$, 'service role changes a role');
select results_eq($$delete from public.workspace_members where user_id = 'cccccccc-0000-4000-8000-0000000000c9' returning role$$,
                  $$values ('admin'::text)$$, 'service role removes a member');

-- contacts, tags, contact_tags, orders (11) -----------------------------------------------------------------
select results_eq($$insert into public.contacts (id, workspace_id, name, phone)
                    values ('aaaaaaaa-c000-4000-8000-0000000007c1', '22222222-2222-4222-8222-222222222222', 'SR', '+573001170001')
                    returning workspace_id$$,
                  $$values ('22222222-2222-4222-8222-222222222222'::uuid)$$, 'service role creates a contact in B');
select results_eq($$update public.contacts set city = 'Cali' where id = 'aaaaaaaa-c000-4000-8000-0000000007c1' returning city$$,
                  $$values ('Cali'::text)$$, 'service role updates a contact');
select results_eq($$insert into public.tags (id, workspace_id, name)
                    values ('aaaaaaaa-d000-4000-8000-0000000007d1', '22222222-2222-4222-8222-222222222222', 'SR') returning name$$,
                  $$values ('SR'::text)$$, 'service role creates a tag');
select results_eq($$update public.tags set color = '#123456' where id = 'aaaaaaaa-d000-4000-8000-0000000007d1' returning color$$,
                  $$values ('#123456'::text)$$, 'service role updates a tag');
select results_eq($$insert into public.contact_tags (workspace_id, contact_id, tag_id)
                    values ('22222222-2222-4222-8222-222222222222', 'aaaaaaaa-c000-4000-8000-0000000007c1',
                            'aaaaaaaa-d000-4000-8000-0000000007d1') returning tag_id$$,
                  $$values ('aaaaaaaa-d000-4000-8000-0000000007d1'::uuid)$$, 'service role tags a contact');
select results_eq($$delete from public.contact_tags where contact_id = 'aaaaaaaa-c000-4000-8000-0000000007c1' returning tag_id$$,
                  $$values ('aaaaaaaa-d000-4000-8000-0000000007d1'::uuid)$$, 'service role removes a tag link');
select results_eq($$insert into public.orders (id, workspace_id, contact_id, total)
                    values ('aaaaaaaa-0a00-4000-8000-0000000007a1', '22222222-2222-4222-8222-222222222222',
                            'aaaaaaaa-c000-4000-8000-0000000007c1', 5) returning total$$,
                  $$values (5.00::numeric)$$, 'service role records an order');
select results_eq($$update public.orders set status = 'shipped' where id = 'aaaaaaaa-0a00-4000-8000-0000000007a1' returning status$$,
                  $$values ('shipped'::text)$$, 'service role updates an order');
select results_eq($$delete from public.orders where id = 'aaaaaaaa-0a00-4000-8000-0000000007a1' returning id$$,
                  $$values ('aaaaaaaa-0a00-4000-8000-0000000007a1'::uuid)$$, 'service role deletes an order');
select results_eq($$delete from public.tags where id = 'aaaaaaaa-d000-4000-8000-0000000007d1' returning id$$,
                  $$values ('aaaaaaaa-d000-4000-8000-0000000007d1'::uuid)$$, 'service role deletes a tag');
select results_eq($$delete from public.contacts where id = 'aaaaaaaa-c000-4000-8000-0000000007c1' returning id$$,
                  $$values ('aaaaaaaa-c000-4000-8000-0000000007c1'::uuid)$$, 'service role deletes a contact');

-- whatsapp_channels (3) ----------------------------------------------------------------------------------
select results_eq($$insert into public.whatsapp_channels (id, workspace_id, phone_number_id, api_key, verify_token)
                    values ('aaaaaaaa-ce00-4000-8000-0000000007e1', 'aaaaaaaa-0000-4000-8000-0000000007a1', '900000000000701',
                            'sr-key', 'sr-verify') returning api_key, verify_token$$,
                  $$values ('sr-key'::text, 'sr-verify'::text)$$, 'service role creates a channel and reads its secrets back');
select results_eq($$update public.whatsapp_channels set api_key = 'sr-key-2' where id = 'aaaaaaaa-ce00-4000-8000-0000000007e1' returning api_key$$,
                  $$values ('sr-key-2'::text)$$, 'service role rotates an api key');
select results_eq($$delete from public.whatsapp_channels where id = 'aaaaaaaa-ce00-4000-8000-0000000007e1' returning id$$,
                  $$values ('aaaaaaaa-ce00-4000-8000-0000000007e1'::uuid)$$, 'service role deletes a channel');

-- conversations and messages (7) ------------------------------------------------------------------------------
select results_eq($$insert into public.conversations (id, workspace_id, phone, phone_number_id)
                    values ('aaaaaaaa-f000-4000-8000-0000000007f1', 'aaaaaaaa-0000-4000-8000-0000000007a1', '+573001170002',
                            '900000000000701') returning status$$,
                  $$values ('active'::text)$$, 'service role creates a conversation');
select results_eq($$insert into public.messages (id, conversation_id, workspace_id, wamid, direction, type, content, status)
                    values ('aaaaaaaa-e000-4000-8000-0000000007e1', 'aaaaaaaa-f000-4000-8000-0000000007f1',
                            '11111111-1111-4111-8111-111111111111', 'wamid.SR.1', 'inbound', 'text', '{"body":"hola"}', 'delivered')
                    returning workspace_id$$,
                  $$values ('aaaaaaaa-0000-4000-8000-0000000007a1'::uuid)$$,
                  'service role stores an inbound message; the workspace is the conversation''s whatever was sent');
select results_eq($$select unread_count, last_message_preview from public.conversations where id = 'aaaaaaaa-f000-4000-8000-0000000007f1'$$,
                  $$values (1, 'hola'::text)$$, 'the statistics follow');
select results_eq($$update public.messages set reaction = '{"emoji":"x"}', content = '{"body":"editado"}'
                    where id = 'aaaaaaaa-e000-4000-8000-0000000007e1' returning content ->> 'body'$$,
                  $$values ('editado'::text)$$, 'service role updates any message column');
select results_eq($$update public.conversations set last_message_preview = 'recalculado'
                    where id = 'aaaaaaaa-f000-4000-8000-0000000007f1' returning last_message_preview$$,
                  $$values ('recalculado'::text)$$, 'service role updates any conversation column');
select results_eq($$delete from public.messages where id = 'aaaaaaaa-e000-4000-8000-0000000007e1' returning id$$,
                  $$values ('aaaaaaaa-e000-4000-8000-0000000007e1'::uuid)$$, 'service role deletes a message');
select results_eq($$delete from public.conversations where id = 'aaaaaaaa-f000-4000-8000-0000000007f1' returning id$$,
                  $$values ('aaaaaaaa-f000-4000-8000-0000000007f1'::uuid)$$, 'service role deletes a conversation');

-- workspaces, last (1) ------------------------------------------------------------------------------------------
select results_eq($$delete from public.workspaces where id = 'aaaaaaaa-0000-4000-8000-0000000007a1' returning id$$,
                  $$values ('aaaaaaaa-0000-4000-8000-0000000007a1'::uuid)$$, 'service role deletes a workspace');

select * from finish();
rollback;
