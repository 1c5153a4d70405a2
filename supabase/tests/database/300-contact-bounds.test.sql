-- Migration 012: the contact columns an agent writes through the Data API are
-- bounded, so no member can make co-workers' conversation lists megabytes.
begin;
select plan(5);

\set agent_a '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated"}'

set local role authenticated;
set local request.jwt.claims = :'agent_a';

select throws_ok($$insert into public.contacts (workspace_id, phone, city)
                   values ('11111111-1111-4111-8111-111111111111', '+573001230001', repeat('x', 5000000))$$,
                 '23514', null, 'an agent cannot store a 5 MB city');
select throws_ok($$insert into public.contacts (workspace_id, phone, email)
                   values ('11111111-1111-4111-8111-111111111111', '+573001230002',
                           repeat('a', 4000000) || '@example.com')$$,
                 '23514', null, 'an agent cannot store a 4 MB email');
select throws_ok($$update public.contacts set city = repeat('x', 201)
                   where id = 'c1000000-0000-4000-8000-000000000001'$$,
                 '23514', null, 'nor grow an existing contact''s city past 200 characters');
select lives_ok($$insert into public.contacts (workspace_id, phone, email, city)
                  values ('11111111-1111-4111-8111-111111111111', '+573001230003',
                          repeat('a', 64) || '@' || repeat('b', 185) || '.com', repeat('c', 200))$$,
                'a 254-character email and a 200-character city are stored');

reset role;
select is((select count(*)::integer from pg_constraint
           where conrelid = 'public.contacts'::regclass
             and conname in ('contacts_email_length', 'contacts_city_length')), 2,
          'both caps are constraints, so every writer meets them');

select * from finish();
rollback;
