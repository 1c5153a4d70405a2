-- RLS matrix, whatsapp_channels: members read only the non-secret columns
-- of their own workspace's channels; the API key, webhook secret hash, app
-- secret and verify token are unreadable by anyone but the service role.
-- Owners/admins may rename a channel and toggle its flags; nobody but the
-- service role creates or deletes channels.
begin;
select plan(30);

\set owner_a '{"sub":"a0000000-0000-4000-8000-00000000000a","role":"authenticated"}'
\set agent_a '{"sub":"a0000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set agent_b '{"sub":"b0000000-0000-4000-8000-0000000000b1","role":"authenticated"}'
\set outsider '{"sub":"cccccccc-0000-4000-8000-0000000000c9","role":"authenticated"}'

insert into auth.users (id, email) values ('cccccccc-0000-4000-8000-0000000000c9', 'outsider@example.com');
update public.whatsapp_channels set app_secret = 'demo-app-secret-a' where id = 'e1000000-0000-4000-8000-000000000001';

set local role authenticated;

-- Select ------------------------------------------------------------------------------
set local request.jwt.claims = :'agent_a';
select results_eq(
    'select id, workspace_id, phone_number_id, name, is_active from public.whatsapp_channels',
    $$values ('e1000000-0000-4000-8000-000000000001'::uuid, '11111111-1111-4111-8111-111111111111'::uuid,
              '100000000000001'::text, 'Ventas A'::text, true)$$,
    'member of A sees the channel of A (public columns)');
select throws_ok('select api_key from public.whatsapp_channels', '42501', null, 'member cannot read api_key');
select throws_ok('select webhook_secret_hash from public.whatsapp_channels', '42501', null, 'member cannot read webhook_secret_hash');
select throws_ok('select app_secret from public.whatsapp_channels', '42501', null, 'member cannot read app_secret');
select throws_ok('select verify_token from public.whatsapp_channels', '42501', null, 'member cannot read verify_token');
select throws_ok('select * from public.whatsapp_channels', '42501', null, 'select * is refused (it includes the secrets)');
select throws_ok($$select id from public.whatsapp_channels where api_key = 'demo-key-a'$$, '42501', null,
                 'member cannot probe api_key in a WHERE clause');
select throws_ok($$select id from public.whatsapp_channels where verify_token like 'demo%'$$, '42501', null,
                 'member cannot probe verify_token in a WHERE clause');

set local request.jwt.claims = :'agent_b';
select results_eq('select id from public.whatsapp_channels', $$values ('e2000000-0000-4000-8000-000000000001'::uuid)$$,
                  'member of B sees only the channel of B');
set local request.jwt.claims = :'outsider';
select is_empty('select id from public.whatsapp_channels', 'a non-member sees no channel');
select throws_ok('select api_key from public.whatsapp_channels', '42501', null, 'a non-member cannot read api_key');

-- Insert / delete: service role only ------------------------------------------------------
set local request.jwt.claims = :'owner_a';
select throws_ok($$insert into public.whatsapp_channels (workspace_id, phone_number_id, api_key)
                   values ('11111111-1111-4111-8111-111111111111', '100000000000009', 'k')$$,
                 '42501', null, 'an owner cannot create channels');
select throws_ok($$delete from public.whatsapp_channels where id = 'e1000000-0000-4000-8000-000000000001'$$,
                 '42501', null, 'an owner cannot delete channels');

-- Update ------------------------------------------------------------------------------------
select results_eq($$update public.whatsapp_channels set name = 'Ventas', is_active = false, send_read_receipts = false
                    where id = 'e1000000-0000-4000-8000-000000000001' returning name, is_active, send_read_receipts$$,
                  $$values ('Ventas'::text, false, false)$$, 'the owner of A renames and toggles the channel of A');
select throws_ok($$update public.whatsapp_channels set api_key = 'stolen' where id = 'e1000000-0000-4000-8000-000000000001'$$,
                 '42501', null, 'nobody but the service role writes api_key');
select throws_ok($$update public.whatsapp_channels set verify_token = 'x' where id = 'e1000000-0000-4000-8000-000000000001'$$,
                 '42501', null, 'nobody but the service role writes verify_token');
select throws_ok($$update public.whatsapp_channels set phone_number_id = '1' where id = 'e1000000-0000-4000-8000-000000000001'$$,
                 '42501', null, 'phone_number_id is not updatable by members');
select throws_ok($$update public.whatsapp_channels set name = 'x' where id = 'e1000000-0000-4000-8000-000000000001' returning *$$,
                 '42501', null, 'returning * would expose the secrets and is refused');
select is_empty($$update public.whatsapp_channels set name = 'hijack' where id = 'e2000000-0000-4000-8000-000000000001' returning id$$,
                'the owner of A cannot update the channel of B');
set local request.jwt.claims = :'agent_a';
select is_empty($$update public.whatsapp_channels set is_active = true where id = 'e1000000-0000-4000-8000-000000000001' returning id$$,
                'an agent cannot update channels');
set local request.jwt.claims = :'outsider';
select is_empty($$update public.whatsapp_channels set name = 'x' returning id$$, 'a non-member updates no channel');

set local request.jwt.claims = :'agent_b';
select throws_ok($$insert into public.whatsapp_channels (workspace_id, phone_number_id, api_key)
                   values ('22222222-2222-4222-8222-222222222222', '100000000000008', 'k')$$,
                 '42501', null, 'member of B cannot create channels');
select is_empty($$update public.whatsapp_channels set name = 'hijack' where id = 'e1000000-0000-4000-8000-000000000001' returning id$$,
                'member of B cannot update the channel of A');
select throws_ok($$delete from public.whatsapp_channels$$, '42501', null, 'member of B cannot delete channels');
set local request.jwt.claims = :'outsider';
select throws_ok($$insert into public.whatsapp_channels (workspace_id, phone_number_id, api_key)
                   values ('11111111-1111-4111-8111-111111111111', '100000000000007', 'k')$$,
                 '42501', null, 'a non-member cannot create channels');
select throws_ok($$delete from public.whatsapp_channels$$, '42501', null, 'a non-member cannot delete channels');

-- The service role reads the secrets ------------------------------------------------------------
set local role service_role;
set local request.jwt.claims = '{"role":"service_role"}';
select results_eq(
    $$select api_key, webhook_secret_hash, app_secret, verify_token from public.whatsapp_channels
      where id = 'e1000000-0000-4000-8000-000000000001'$$,
    $$values ('demo-key-a'::text, encode(extensions.digest('demo-secret-a', 'sha256'), 'hex'),
              'demo-app-secret-a'::text, 'demo-verify-a'::text)$$,
    'the service role reads the api key, the secret hash, the app secret and the verify token');
select results_eq($$select name, is_active from public.whatsapp_channels where id = 'e2000000-0000-4000-8000-000000000001'$$,
                  $$values ('Ventas B'::text, true)$$, 'the channel of B is unchanged');

-- Catalog: the secret columns are granted to no API role but service_role ---------------------------
reset role;
select ok(not exists (
        select 1
        from unnest(array['api_key', 'webhook_secret_hash', 'app_secret', 'verify_token']) c,
             unnest(array['anon', 'authenticated']) r
        where has_column_privilege(r, 'public.whatsapp_channels', c, 'select')
    ), 'catalog: anon and authenticated hold no SELECT on any secret column');
select ok((select bool_and(has_column_privilege('service_role', 'public.whatsapp_channels', c, 'select'))
           from unnest(array['api_key', 'webhook_secret_hash', 'app_secret', 'verify_token']) c),
          'catalog: service_role holds SELECT on every secret column');

select * from finish();
rollback;
