-- RLS matrix, workspaces and workspace_members: members see their own
-- workspace and its members; only owners/admins rename a workspace or change
-- its time zone; nobody but the service role writes memberships.
-- Seed: workspace A (owner-a owner, agent-a agent), B (agent-b agent).
begin;
select plan(34);

\set owner_a '{"sub":"a0000000-0000-4000-8000-00000000000a","role":"authenticated"}'
\set agent_a '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set agent_b '{"sub":"b0000000-0000-4000-8000-0000000000b1","role":"authenticated"}'
\set admin_b '{"sub":"cccccccc-0000-4000-8000-0000000000b2","role":"authenticated"}'
\set outsider '{"sub":"cccccccc-0000-4000-8000-0000000000c9","role":"authenticated"}'

insert into auth.users (id, email) values
    ('cccccccc-0000-4000-8000-0000000000b2', 'admin-b@example.com'),
    ('cccccccc-0000-4000-8000-0000000000c9', 'outsider@example.com');
insert into public.workspace_members (workspace_id, user_id, role) values
    ('22222222-2222-4222-8222-222222222222', 'cccccccc-0000-4000-8000-0000000000b2', 'admin');

set local role authenticated;

-- workspaces: select -----------------------------------------------------------
set local request.jwt.claims = :'agent_a';
select results_eq('select id from public.workspaces', $$values ('11111111-1111-4111-8111-111111111111'::uuid)$$,
                  'member of A sees only workspace A');
set local request.jwt.claims = :'agent_b';
select results_eq('select id from public.workspaces', $$values ('22222222-2222-4222-8222-222222222222'::uuid)$$,
                  'member of B sees only workspace B');
set local request.jwt.claims = :'outsider';
select is_empty('select id from public.workspaces', 'a non-member sees no workspace');

-- workspaces: insert / delete (no grant) ------------------------------------------
set local request.jwt.claims = :'owner_a';
select throws_ok($$insert into public.workspaces (name) values ('Mine')$$, '42501', null, 'even an owner cannot create workspaces');
select throws_ok($$delete from public.workspaces where id = '11111111-1111-4111-8111-111111111111'$$, '42501', null,
                 'even an owner cannot delete a workspace');

-- workspaces: update --------------------------------------------------------------
select results_eq(
    $$update public.workspaces set name = 'A renamed', timezone = 'America/Mexico_City'
      where id = '11111111-1111-4111-8111-111111111111' returning id, name, timezone$$,
    $$values ('11111111-1111-4111-8111-111111111111'::uuid, 'A renamed'::text, 'America/Mexico_City'::text)$$,
    'the owner of A renames A and changes its time zone');
select is_empty($$update public.workspaces set name = 'hijacked' where id = '22222222-2222-4222-8222-222222222222' returning id$$,
                'the owner of A cannot update B');
select throws_ok($$update public.workspaces set timezone = 'Mars/Olympus_Mons' where id = '11111111-1111-4111-8111-111111111111'$$,
                 '23514', null, 'the time zone must be real');
select throws_ok($$update public.workspaces set id = gen_random_uuid() where id = '11111111-1111-4111-8111-111111111111'$$,
                 '42501', null, 'only name and timezone are updatable');
select throws_ok($$update public.workspaces set created_at = now() where id = '11111111-1111-4111-8111-111111111111'$$,
                 '42501', null, 'created_at is not updatable');

set local request.jwt.claims = :'agent_a';
select is_empty($$update public.workspaces set name = 'by agent' where id = '11111111-1111-4111-8111-111111111111' returning id$$,
                'an agent of A cannot rename A');

set local request.jwt.claims = :'admin_b';
select results_eq($$update public.workspaces set name = 'B by admin' where id = '22222222-2222-4222-8222-222222222222' returning name$$,
                  $$values ('B by admin'::text)$$, 'an admin of B renames B');

set local request.jwt.claims = :'outsider';
select is_empty($$update public.workspaces set name = 'x' returning id$$, 'a non-member updates nothing');

reset role;
select results_eq(
    $$select id, name from public.workspaces
      where id in ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222') order by id$$,
    $$values ('11111111-1111-4111-8111-111111111111'::uuid, 'A renamed'::text),
             ('22222222-2222-4222-8222-222222222222'::uuid, 'B by admin'::text)$$,
    'only the permitted renames happened');
set local role authenticated;

-- workspace_members: select -----------------------------------------------------------
set local request.jwt.claims = :'agent_a';
select results_eq(
    'select workspace_id, user_id, role from public.workspace_members order by user_id',
    $$values ('11111111-1111-4111-8111-111111111111'::uuid, 'a0000000-0000-4000-8000-00000000000a'::uuid, 'owner'::text),
             ('11111111-1111-4111-8111-111111111111'::uuid, 'a0000000-0000-4000-8000-0000000000a1'::uuid, 'agent'::text)$$,
    'a member of A sees the members of A only');
set local request.jwt.claims = :'agent_b';
select results_eq(
    'select user_id from public.workspace_members order by user_id',
    $$values ('b0000000-0000-4000-8000-0000000000b1'::uuid), ('cccccccc-0000-4000-8000-0000000000b2'::uuid)$$,
    'a member of B sees the members of B only');
set local request.jwt.claims = :'outsider';
select is_empty('select 1 from public.workspace_members', 'a non-member sees no membership');

-- workspace_members: no writes by authenticated ---------------------------------------
set local request.jwt.claims = :'owner_a';
select throws_ok($$insert into public.workspace_members (workspace_id, user_id)
                   values ('11111111-1111-4111-8111-111111111111', 'cccccccc-0000-4000-8000-0000000000c9')$$,
                 '42501', null, 'an owner cannot add members through the API');
select throws_ok($$update public.workspace_members set role = 'admin'
                   where user_id = 'a0000000-0000-4000-8000-0000000000a1'$$,
                 '42501', null, 'an owner cannot change roles through the API');
select throws_ok($$delete from public.workspace_members where user_id = 'a0000000-0000-4000-8000-0000000000a1'$$,
                 '42501', null, 'an owner cannot remove members through the API');
set local request.jwt.claims = :'agent_a';
select throws_ok($$insert into public.workspace_members (workspace_id, user_id, role)
                   values ('22222222-2222-4222-8222-222222222222', 'a0000000-0000-4000-8000-0000000000a1', 'owner')$$,
                 '42501', null, 'an agent cannot join another workspace');
select throws_ok($$update public.workspace_members set role = 'owner'
                   where user_id = 'a0000000-0000-4000-8000-0000000000a1'$$,
                 '42501', null, 'an agent cannot promote themselves');
set local request.jwt.claims = :'outsider';
select throws_ok($$insert into public.workspace_members (workspace_id, user_id)
                   values ('11111111-1111-4111-8111-111111111111', 'cccccccc-0000-4000-8000-0000000000c9')$$,
                 '42501', null, 'a non-member cannot join a workspace');
select throws_ok($$delete from public.workspace_members$$, '42501', null, 'a non-member cannot delete memberships');

-- No grant means the same refusal for every authenticated caller -------------------------
set local request.jwt.claims = :'agent_b';
select throws_ok($$insert into public.workspaces (name) values ('B2')$$, '42501', null, 'member of B cannot create workspaces');
select throws_ok($$delete from public.workspaces$$, '42501', null, 'member of B cannot delete workspaces');
select throws_ok($$insert into public.workspace_members (workspace_id, user_id)
                   values ('22222222-2222-4222-8222-222222222222', 'cccccccc-0000-4000-8000-0000000000c9')$$,
                 '42501', null, 'member of B cannot add members to B');
select throws_ok($$update public.workspace_members set role = 'owner'$$, '42501', null, 'member of B cannot change roles');
select throws_ok($$delete from public.workspace_members$$, '42501', null, 'member of B cannot remove members');
set local request.jwt.claims = :'outsider';
select throws_ok($$insert into public.workspaces (name) values ('Mine')$$, '42501', null, 'a non-member cannot create workspaces');
select throws_ok($$delete from public.workspaces$$, '42501', null, 'a non-member cannot delete workspaces');

-- Helpers as each caller ------------------------------------------------------------------
set local request.jwt.claims = :'agent_a';
select ok(private.is_workspace_member('11111111-1111-4111-8111-111111111111')
          and not private.is_workspace_member('22222222-2222-4222-8222-222222222222'),
          'is_workspace_member answers for the caller');
select is_empty('select * from private.my_admin_workspaces()', 'an agent administers no workspace');
set local request.jwt.claims = :'owner_a';
select results_eq('select * from private.my_admin_workspaces()',
                  $$values ('11111111-1111-4111-8111-111111111111'::uuid)$$, 'the owner of A administers A');

select * from finish();
rollback;
