-- RLS matrix, conversations: members see their workspace's conversations and
-- may update only is_read, unread_count, status, assigned_to and contact_id;
-- linking a contact or assigning a user of another workspace fails; creating
-- and deleting conversations is for the service role.
begin;
select plan(29);

\set owner_a '{"sub":"a0000000-0000-4000-8000-00000000000a","role":"authenticated"}'
\set agent_a '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set agent_b '{"sub":"b0000000-0000-4000-8000-0000000000b1","role":"authenticated"}'
\set outsider '{"sub":"cccccccc-0000-4000-8000-0000000000c9","role":"authenticated"}'

insert into auth.users (id, email) values ('cccccccc-0000-4000-8000-0000000000c9', 'outsider@example.com');
-- One more conversation per workspace, beside the seeded ones.
insert into public.conversations (id, workspace_id, phone, phone_number_id) values
    ('aaaaaaaa-f000-4000-8000-0000000005a1', '11111111-1111-4111-8111-111111111111', '+573001150001', '100000000000001'),
    ('aaaaaaaa-f000-4000-8000-0000000005b1', '22222222-2222-4222-8222-222222222222', '+573001150002', '100000000000002');
create temp table expect_conversations on commit drop as
    select id, workspace_id from public.conversations;
grant select on expect_conversations to authenticated;

set local role authenticated;

-- Select ------------------------------------------------------------------------------------
set local request.jwt.claims = :'agent_a';
select results_eq('select id from public.conversations order by id',
                  $$select id from expect_conversations where workspace_id = '11111111-1111-4111-8111-111111111111' order by id$$,
                  'member of A sees exactly the conversations of A');
set local request.jwt.claims = :'agent_b';
select results_eq('select id from public.conversations order by id',
                  $$select id from expect_conversations where workspace_id = '22222222-2222-4222-8222-222222222222' order by id$$,
                  'member of B sees exactly the conversations of B');
set local request.jwt.claims = :'outsider';
select is_empty('select id from public.conversations', 'a non-member sees no conversation');

-- Insert / delete: service role only ----------------------------------------------------------
set local request.jwt.claims = :'agent_a';
select throws_ok($$insert into public.conversations (workspace_id, phone, phone_number_id)
                   values ('11111111-1111-4111-8111-111111111111', '+573001150009', '100000000000001')$$,
                 '42501', null, 'a member cannot create conversations');
select throws_ok($$delete from public.conversations where id = 'aaaaaaaa-f000-4000-8000-0000000005a1'$$,
                 '42501', null, 'a member cannot delete conversations');
set local request.jwt.claims = :'agent_b';
select throws_ok($$insert into public.conversations (workspace_id, phone, phone_number_id)
                   values ('22222222-2222-4222-8222-222222222222', '+573001150007', '100000000000002')$$,
                 '42501', null, 'member of B cannot create conversations');
select throws_ok($$delete from public.conversations$$, '42501', null, 'member of B cannot delete conversations');
set local request.jwt.claims = :'outsider';
select throws_ok($$insert into public.conversations (workspace_id, phone, phone_number_id)
                   values ('11111111-1111-4111-8111-111111111111', '+573001150008', '100000000000001')$$,
                 '42501', null, 'a non-member cannot create conversations');
select throws_ok($$delete from public.conversations$$, '42501', null, 'a non-member cannot delete conversations');

-- Update: the granted columns -----------------------------------------------------------------
set local request.jwt.claims = :'agent_a';
select results_eq($$update public.conversations set is_read = true, unread_count = 0
                    where id = 'f1000000-0000-4000-8000-000000000001' returning is_read, unread_count$$,
                  $$values (true, 0)$$, 'member of A marks a conversation of A read');
select results_eq($$update public.conversations set status = 'archived'
                    where id = 'aaaaaaaa-f000-4000-8000-0000000005a1' returning status$$,
                  $$values ('archived'::text)$$, 'member of A archives a conversation of A');
select results_eq($$update public.conversations set assigned_to = 'a0000000-0000-4000-8000-00000000000a'
                    where id = 'aaaaaaaa-f000-4000-8000-0000000005a1' returning assigned_to$$,
                  $$values ('a0000000-0000-4000-8000-00000000000a'::uuid)$$, 'member of A assigns a member of A');
select results_eq($$update public.conversations set contact_id = 'c1000000-0000-4000-8000-000000000002'
                    where id = 'aaaaaaaa-f000-4000-8000-0000000005a1' returning contact_id$$,
                  $$values ('c1000000-0000-4000-8000-000000000002'::uuid)$$, 'member of A links a contact of A');
select throws_ok($$update public.conversations set contact_id = 'c2000000-0000-4000-8000-000000000001'
                   where id = 'aaaaaaaa-f000-4000-8000-0000000005a1'$$,
                 '23503', null, 'member of A cannot link a contact of B (composite foreign key)');
select throws_ok($$update public.conversations set assigned_to = 'b0000000-0000-4000-8000-0000000000b1'
                   where id = 'aaaaaaaa-f000-4000-8000-0000000005a1'$$,
                 '23503', null, 'member of A cannot assign a member of B');
select throws_ok($$update public.conversations set status = 'closed' where id = 'aaaaaaaa-f000-4000-8000-0000000005a1'$$,
                 '23514', null, 'status must be active or archived');
select throws_ok($$update public.conversations set unread_count = -1 where id = 'aaaaaaaa-f000-4000-8000-0000000005a1'$$,
                 '23514', null, 'unread_count cannot go negative');

-- Update: everything else is the service role's -------------------------------------------------
select throws_ok(format('update public.conversations set %I = %I where id = %L', c, c, 'aaaaaaaa-f000-4000-8000-0000000005a1'),
                 '42501', null, format('member cannot update conversations.%s', c))
from unnest(array['workspace_id', 'phone', 'phone_number_id', 'last_message_at', 'last_message_preview',
                  'last_customer_message_at', 'created_at']) c;

-- Update across workspaces --------------------------------------------------------------------
select is_empty($$update public.conversations set is_read = true, status = 'archived'
                  where workspace_id = '22222222-2222-4222-8222-222222222222' returning id$$,
                'member of A cannot update conversations of B');
set local request.jwt.claims = :'agent_b';
select is_empty($$update public.conversations set contact_id = 'c2000000-0000-4000-8000-000000000001'
                  where id = 'aaaaaaaa-f000-4000-8000-0000000005a1' returning id$$,
                'member of B cannot update (or link its contact to) a conversation of A');
set local request.jwt.claims = :'outsider';
select is_empty($$update public.conversations set is_read = true returning id$$, 'a non-member updates no conversation');

-- What was stored ---------------------------------------------------------------------------------
reset role;
select results_eq(
    $$select status, assigned_to, contact_id, updated_at from public.conversations where id = 'aaaaaaaa-f000-4000-8000-0000000005a1'$$,
    $$values ('archived'::text, 'a0000000-0000-4000-8000-00000000000a'::uuid, 'c1000000-0000-4000-8000-000000000002'::uuid, now())$$,
    'the permitted changes of A are stored (updated_at maintained)');
select results_eq(
    $$select count(*)::integer from public.conversations
      where workspace_id = '22222222-2222-4222-8222-222222222222' and (is_read or status = 'archived' or assigned_to is not null)$$,
    $$values (0)$$,
    'no conversation of B was modified');

select * from finish();
rollback;
