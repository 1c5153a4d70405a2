-- RLS matrix, contacts / tags / contact_tags / orders: members have full
-- CRUD inside their own workspace (contact_tags: no update) and nothing
-- across; a non-member has nothing. Seed: workspace A (agent-a), B (agent-b).
begin;
select plan(72);

\set agent_a '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set agent_b '{"sub":"b0000000-0000-4000-8000-0000000000b1","role":"authenticated"}'
\set outsider '{"sub":"cccccccc-0000-4000-8000-0000000000c9","role":"authenticated"}'

insert into auth.users (id, email) values ('cccccccc-0000-4000-8000-0000000000c9', 'outsider@example.com');

-- What each workspace holds, taken as postgres before anyone writes.
create temp table expect_rows on commit drop as
    select 'contacts'::text as t, workspace_id, id::text as k from public.contacts
    union all select 'tags', workspace_id, id::text from public.tags
    union all select 'contact_tags', workspace_id, contact_id::text || '/' || tag_id::text from public.contact_tags
    union all select 'orders', workspace_id, id::text from public.orders;
create temp table visible (t text, q text) on commit drop;
insert into visible values
    ('contacts', 'select id::text as k from public.contacts'),
    ('tags', 'select id::text as k from public.tags'),
    ('contact_tags', 'select contact_id::text || ''/'' || tag_id::text as k from public.contact_tags'),
    ('orders', 'select id::text as k from public.orders');
grant select on expect_rows, visible to authenticated;

select ok((select count(distinct workspace_id) = 2 from expect_rows
           where workspace_id in ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222')),
          'both seeded workspaces have CRM rows to hide from each other');

set local role authenticated;

-- Select: exactly the own workspace's rows (4 + 4 + 4) -------------------------------
set local request.jwt.claims = :'agent_a';
select results_eq(format('select k from (%s) v order by k', q),
                  format('select k from expect_rows where t = %L and workspace_id = %L order by k',
                         t, '11111111-1111-4111-8111-111111111111'),
                  format('member of A sees exactly the %s of A', t))
from visible order by t;
set local request.jwt.claims = :'agent_b';
select results_eq(format('select k from (%s) v order by k', q),
                  format('select k from expect_rows where t = %L and workspace_id = %L order by k',
                         t, '22222222-2222-4222-8222-222222222222'),
                  format('member of B sees exactly the %s of B', t))
from visible order by t;
set local request.jwt.claims = :'outsider';
select is_empty(q, format('a non-member sees no %s', t)) from visible order by t;

-- Contacts (14) ----------------------------------------------------------------------
set local request.jwt.claims = :'agent_a';
select results_eq(
    $$insert into public.contacts (workspace_id, name, phone)
      values ('11111111-1111-4111-8111-111111111111', 'Nuevo', '+573001140001')
      returning workspace_id$$,
    $$values ('11111111-1111-4111-8111-111111111111'::uuid)$$,
    'member of A creates a contact in A');
select results_eq(
    $$insert into public.contacts (name, phone) values ('Sin ws', '+573001140002')
      returning workspace_id$$,
    $$values ('11111111-1111-4111-8111-111111111111'::uuid)$$,
    'without workspace_id, the contact lands in the caller''s only workspace');
select throws_ok($$insert into public.contacts (workspace_id, phone) values ('22222222-2222-4222-8222-222222222222', '+573001140003')$$,
                 '42501', null, 'member of A cannot create a contact in B');
select results_eq($$update public.contacts set city = 'Pasto' where id = 'c1000000-0000-4000-8000-000000000001' returning city$$,
                  $$values ('Pasto'::text)$$, 'member of A updates a contact of A');
select is_empty($$update public.contacts set city = 'Pasto' where id = 'c2000000-0000-4000-8000-000000000001' returning id$$,
                'member of A cannot update a contact of B');
select throws_ok($$update public.contacts set workspace_id = '22222222-2222-4222-8222-222222222222'
                   where id = 'c1000000-0000-4000-8000-000000000002'$$,
                 '42501', null, 'a contact cannot be moved to another workspace');
select results_eq($$delete from public.contacts where phone = '+573001140001' returning phone$$,
                  $$values ('+573001140001'::text)$$, 'member of A deletes a contact of A');
select is_empty($$delete from public.contacts where id = 'c2000000-0000-4000-8000-000000000001' returning id$$,
                'member of A cannot delete a contact of B');
set local request.jwt.claims = :'agent_b';
select is_empty($$update public.contacts set name = 'x' where id = 'c1000000-0000-4000-8000-000000000001' returning id$$,
                'member of B cannot update a contact of A');
select is_empty($$delete from public.contacts where workspace_id = '11111111-1111-4111-8111-111111111111' returning id$$,
                'member of B cannot delete contacts of A');
set local request.jwt.claims = :'outsider';
select throws_ok($$insert into public.contacts (workspace_id, phone) values ('11111111-1111-4111-8111-111111111111', '+573001140004')$$,
                 '42501', null, 'a non-member cannot create a contact in A');
select throws_ok($$insert into public.contacts (phone) values ('+573001140005')$$,
                 '23502', null, 'a non-member has no workspace to default to');
select is_empty($$update public.contacts set name = 'x' returning id$$, 'a non-member updates no contact');
select is_empty($$delete from public.contacts returning id$$, 'a non-member deletes no contact');

-- Tags (9) ---------------------------------------------------------------------------
set local request.jwt.claims = :'agent_a';
select results_eq($$insert into public.tags (name, color) values ('Frecuente', '#000000')
                    returning workspace_id$$,
                  $$values ('11111111-1111-4111-8111-111111111111'::uuid)$$, 'member of A creates a tag in A');
select throws_ok($$insert into public.tags (workspace_id, name) values ('22222222-2222-4222-8222-222222222222', 'Intruso')$$,
                 '42501', null, 'member of A cannot create a tag in B');
select results_eq($$update public.tags set color = '#ffffff' where id = 'd1000000-0000-4000-8000-000000000001' returning color$$,
                  $$values ('#ffffff'::text)$$, 'member of A updates a tag of A');
select is_empty($$update public.tags set color = '#ffffff' where id = 'd2000000-0000-4000-8000-000000000001' returning id$$,
                'member of A cannot update a tag of B');
select results_eq($$delete from public.tags where name = 'Frecuente' returning name$$,
                  $$values ('Frecuente'::text)$$, 'member of A deletes a tag of A');
select is_empty($$delete from public.tags where id = 'd2000000-0000-4000-8000-000000000001' returning id$$,
                'member of A cannot delete a tag of B');
set local request.jwt.claims = :'outsider';
select throws_ok($$insert into public.tags (workspace_id, name) values ('11111111-1111-4111-8111-111111111111', 'x')$$,
                 '42501', null, 'a non-member cannot create a tag');
select is_empty($$update public.tags set name = 'x' returning id$$, 'a non-member updates no tag');
select is_empty($$delete from public.tags returning id$$, 'a non-member deletes no tag');

-- Contact tags (9) -------------------------------------------------------------------
set local request.jwt.claims = :'agent_a';
select results_eq($$insert into public.contact_tags (contact_id, tag_id)
                    values ('c1000000-0000-4000-8000-000000000002', 'd1000000-0000-4000-8000-000000000001')
                    returning workspace_id$$,
                  $$values ('11111111-1111-4111-8111-111111111111'::uuid)$$, 'member of A tags a contact of A');
select throws_ok($$insert into public.contact_tags (workspace_id, contact_id, tag_id)
                   values ('11111111-1111-4111-8111-111111111111', 'c1000000-0000-4000-8000-000000000002',
                           'd2000000-0000-4000-8000-000000000001')$$,
                 '23503', null, 'member of A cannot attach a tag of B');
select throws_ok($$insert into public.contact_tags (workspace_id, contact_id, tag_id)
                   values ('22222222-2222-4222-8222-222222222222', 'c2000000-0000-4000-8000-000000000001',
                           'd2000000-0000-4000-8000-000000000001')$$,
                 '42501', null, 'member of A cannot tag contacts of B');
select throws_ok($$update public.contact_tags set tag_id = tag_id$$, '42501', null, 'contact tags are never updated');
select results_eq($$delete from public.contact_tags
                    where contact_id = 'c1000000-0000-4000-8000-000000000001' and tag_id = 'd1000000-0000-4000-8000-000000000002'
                    returning workspace_id$$,
                  $$values ('11111111-1111-4111-8111-111111111111'::uuid)$$, 'member of A removes a tag of A');
select is_empty($$delete from public.contact_tags where contact_id = 'c2000000-0000-4000-8000-000000000001' returning tag_id$$,
                'member of A cannot remove a tag of B');
set local request.jwt.claims = :'outsider';
select throws_ok($$insert into public.contact_tags (workspace_id, contact_id, tag_id)
                   values ('11111111-1111-4111-8111-111111111111', 'c1000000-0000-4000-8000-000000000002',
                           'd1000000-0000-4000-8000-000000000002')$$,
                 '42501', null, 'a non-member cannot tag contacts');
select throws_ok($$update public.contact_tags set tag_id = tag_id$$, '42501', null, 'a non-member cannot update contact tags');
select is_empty($$delete from public.contact_tags returning tag_id$$, 'a non-member removes no tag');

-- Orders (11) ------------------------------------------------------------------------
set local request.jwt.claims = :'agent_a';
select results_eq($$insert into public.orders (contact_id, total) values
                    ('c1000000-0000-4000-8000-000000000002', 15000)
                    returning workspace_id, currency, status$$,
                  $$values ('11111111-1111-4111-8111-111111111111'::uuid, 'COP'::text, 'pending'::text)$$,
                  'member of A records an order in A');
select throws_ok($$insert into public.orders (workspace_id, contact_id, total) values
                   ('11111111-1111-4111-8111-111111111111', 'c2000000-0000-4000-8000-000000000001', 1)$$,
                 '23503', null, 'an order of A cannot point to a contact of B');
select throws_ok($$insert into public.orders (workspace_id, total) values ('22222222-2222-4222-8222-222222222222', 1)$$,
                 '42501', null, 'member of A cannot record an order in B');
select results_eq($$update public.orders set status = 'paid' where total = 15000 returning status$$,
                  $$values ('paid'::text)$$, 'member of A updates an order of A');
select is_empty($$update public.orders set status = 'cancelled' where workspace_id = '22222222-2222-4222-8222-222222222222' returning id$$,
                'member of A cannot update orders of B');
select throws_ok($$update public.orders set workspace_id = '22222222-2222-4222-8222-222222222222'
                   where total = 15000$$,
                 '42501', null, 'an order cannot be moved to another workspace');
select results_eq($$delete from public.orders where total = 15000 returning total$$,
                  $$values (15000::numeric)$$, 'member of A deletes an order of A');
select is_empty($$delete from public.orders where workspace_id = '22222222-2222-4222-8222-222222222222' returning id$$,
                'member of A cannot delete orders of B');
set local request.jwt.claims = :'outsider';
select throws_ok($$insert into public.orders (workspace_id, total) values ('11111111-1111-4111-8111-111111111111', 1)$$,
                 '42501', null, 'a non-member cannot record orders');
select is_empty($$update public.orders set status = 'cancelled' returning id$$, 'a non-member updates no order');
select is_empty($$delete from public.orders returning id$$, 'a non-member deletes no order');

-- Member of B against A (9) ----------------------------------------------------------------
set local request.jwt.claims = :'agent_b';
select throws_ok($$insert into public.contacts (workspace_id, phone) values ('11111111-1111-4111-8111-111111111111', '+573001140006')$$,
                 '42501', null, 'member of B cannot create a contact in A');
select throws_ok($$insert into public.tags (workspace_id, name) values ('11111111-1111-4111-8111-111111111111', 'de B')$$,
                 '42501', null, 'member of B cannot create a tag in A');
select throws_ok($$insert into public.contact_tags (workspace_id, contact_id, tag_id)
                   values ('11111111-1111-4111-8111-111111111111', 'c1000000-0000-4000-8000-000000000002',
                           'd1000000-0000-4000-8000-000000000002')$$,
                 '42501', null, 'member of B cannot tag contacts of A');
select throws_ok($$insert into public.orders (workspace_id, total) values ('11111111-1111-4111-8111-111111111111', 1)$$,
                 '42501', null, 'member of B cannot record orders in A');
select is_empty($$update public.tags set name = 'x' where workspace_id = '11111111-1111-4111-8111-111111111111' returning id$$,
                'member of B cannot update tags of A');
select is_empty($$delete from public.tags where workspace_id = '11111111-1111-4111-8111-111111111111' returning id$$,
                'member of B cannot delete tags of A');
select is_empty($$delete from public.contact_tags where workspace_id = '11111111-1111-4111-8111-111111111111' returning tag_id$$,
                'member of B cannot remove tags of A');
select is_empty($$update public.orders set status = 'cancelled' where workspace_id = '11111111-1111-4111-8111-111111111111' returning id$$,
                'member of B cannot update orders of A');
select is_empty($$delete from public.orders where workspace_id = '11111111-1111-4111-8111-111111111111' returning id$$,
                'member of B cannot delete orders of A');

-- Nothing leaked across: B's rows are as they were (8) ------------------------------------
reset role;
select results_eq(format('select k from expect_rows where t = %L and workspace_id = %L order by k', t,
                         '22222222-2222-4222-8222-222222222222'),
                  format('select k from (%s) v where k in (select k from expect_rows where workspace_id = %L) order by k',
                         q, '22222222-2222-4222-8222-222222222222'),
                  format('every %s row of B is still there', t))
from visible order by t;
select is((select count(*)::integer from public.contacts where workspace_id = '22222222-2222-4222-8222-222222222222' and city = 'Pasto')
          + (select count(*)::integer from public.tags where workspace_id = '22222222-2222-4222-8222-222222222222' and color = '#ffffff')
          + (select count(*)::integer from public.orders where workspace_id = '22222222-2222-4222-8222-222222222222' and status = 'cancelled'),
          0, 'no row of B was modified');
select results_eq($$select city from public.contacts where id = 'c1000000-0000-4000-8000-000000000001'$$,
                  $$values ('Pasto'::text)$$, 'the permitted update of A is stored');
select is((select count(*)::integer from public.contacts where phone = '+573001140001'), 0,
          'the permitted delete of A is stored');

select * from finish();
rollback;
