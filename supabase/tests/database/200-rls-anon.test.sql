-- RLS matrix, anon: no grant on any table, so every command on every table
-- is refused with 42501 before a policy is even considered; the private
-- helpers are out of reach too.
begin;
select plan(42);

create temp table rls_tables (t text) on commit drop;
insert into rls_tables values ('workspaces'), ('workspace_members'), ('contacts'), ('tags'), ('contact_tags'),
    ('orders'), ('whatsapp_channels'), ('conversations'), ('messages');
grant select on rls_tables to anon;

set local role anon;
set local request.jwt.claims = '{"role":"anon"}';

-- 9 tables x select/insert/update/delete = 36
select throws_ok(format('select 1 from public.%I', t), '42501', null, format('anon cannot select %s', t))
from rls_tables order by t;
select throws_ok(format('insert into public.%I default values', t), '42501', null, format('anon cannot insert into %s', t))
from rls_tables order by t;
select throws_ok(format('update public.%I set created_at = created_at', t), '42501', null, format('anon cannot update %s', t))
from rls_tables order by t;
select throws_ok(format('delete from public.%I', t), '42501', null, format('anon cannot delete from %s', t))
from rls_tables order by t;

-- Helpers (3) and secrets by column (3)
select throws_ok('select private.my_workspaces()', '42501', null, 'anon cannot call private.my_workspaces()');
select throws_ok($$select private.is_workspace_member('11111111-1111-4111-8111-111111111111')$$, '42501', null,
                 'anon cannot call private.is_workspace_member()');
select throws_ok($$select private.message_preview('text', '{}')$$, '42501', null,
                 'anon cannot call private.message_preview()');
select throws_ok('select api_key from public.whatsapp_channels', '42501', null, 'anon cannot read api_key');
select throws_ok('select webhook_secret_hash from public.whatsapp_channels', '42501', null,
                 'anon cannot read webhook_secret_hash');

reset role;
select ok(not exists (
        select 1 from rls_tables r, unnest(array['select', 'insert', 'update', 'delete']) p
        where has_table_privilege('anon', 'public.' || r.t, p)
           or (p <> 'delete' and has_any_column_privilege('anon', 'public.' || r.t, p))
    ), 'catalog: anon holds no table or column privilege on any of the tables');

select * from finish();
rollback;
