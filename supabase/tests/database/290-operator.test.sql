-- The operator functions read auth.users: only the service role may call them.
begin;
select plan(7);

select ok(not has_function_privilege(r, f, 'execute'), format('%s cannot execute %s', r, f))
from unnest(array['anon', 'authenticated']) r,
     unnest(array['public.operator_user_id(text)', 'public.operator_workspace_members(uuid)']) f;

set local role service_role;
select is(public.operator_user_id('Agent-A@Example.com '), 'a0000000-0000-4000-8000-0000000000a1'::uuid,
          'a user is found by email, whatever its case and spaces');
select is(public.operator_user_id('nobody@example.com'), null, 'an unknown email finds nobody');
select ok(exists (select 1 from public.operator_workspace_members('11111111-1111-4111-8111-111111111111')
                  where user_id = 'a0000000-0000-4000-8000-0000000000a1' and email = 'agent-a@example.com'),
          'members are listed with their emails');
reset role;

select * from finish();
rollback;
