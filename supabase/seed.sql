-- Demo data for local development (`make up` on a new stack, `supabase db reset`).
-- Two workspaces, so isolation is visible from the first request.
-- Passwords are "password"; webhook secrets are demo-secret-a / demo-secret-b.

insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                        raw_app_meta_data, raw_user_meta_data)
values
    ('00000000-0000-0000-0000-000000000000', 'a0000000-0000-4000-8000-00000000000a', 'authenticated',
     'authenticated', 'owner-a@example.com', extensions.crypt('password', extensions.gen_salt('bf')), now(),
     '{"provider":"email","providers":["email"]}', '{"name":"Olga Owner"}'),
    ('00000000-0000-0000-0000-000000000000', 'a0000000-0000-4000-8000-0000000000a1', 'authenticated',
     'authenticated', 'agent-a@example.com', extensions.crypt('password', extensions.gen_salt('bf')), now(),
     '{"provider":"email","providers":["email"]}', '{"name":"Andrés Agent"}'),
    ('00000000-0000-0000-0000-000000000000', 'b0000000-0000-4000-8000-0000000000b1', 'authenticated',
     'authenticated', 'agent-b@example.com', extensions.crypt('password', extensions.gen_salt('bf')), now(),
     '{"provider":"email","providers":["email"]}', '{"name":"Beatriz Agent"}');

insert into public.workspaces (id, name) values
    ('11111111-1111-4111-8111-111111111111', 'Tienda Demo A'),
    ('22222222-2222-4222-8222-222222222222', 'Tienda Demo B');

insert into public.workspace_members (workspace_id, user_id, role) values
    ('11111111-1111-4111-8111-111111111111', 'a0000000-0000-4000-8000-00000000000a', 'owner'),
    ('11111111-1111-4111-8111-111111111111', 'a0000000-0000-4000-8000-0000000000a1', 'agent'),
    ('22222222-2222-4222-8222-222222222222', 'b0000000-0000-4000-8000-0000000000b1', 'agent');

insert into public.contacts (id, workspace_id, name, phone, email, city) values
    ('c1000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111',
     'José Álvarez', '+573001234567', 'jose@example.com', 'Bogotá'),
    ('c1000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
     'María Fernanda Gómez', '+573109876543', null, 'Medellín'),
    ('c2000000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222',
     'Camila Rojas', '+573205551234', 'camila@example.com', 'Cali');

insert into public.tags (id, workspace_id, name, color) values
    ('d1000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', 'VIP', '#f59e0b'),
    ('d1000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111', 'Mayorista', '#3b82f6'),
    ('d2000000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222', 'Nuevo', '#10b981');

insert into public.contact_tags (workspace_id, contact_id, tag_id) values
    ('11111111-1111-4111-8111-111111111111', 'c1000000-0000-4000-8000-000000000001', 'd1000000-0000-4000-8000-000000000001'),
    ('11111111-1111-4111-8111-111111111111', 'c1000000-0000-4000-8000-000000000001', 'd1000000-0000-4000-8000-000000000002'),
    ('22222222-2222-4222-8222-222222222222', 'c2000000-0000-4000-8000-000000000001', 'd2000000-0000-4000-8000-000000000001');

insert into public.orders (workspace_id, contact_id, total, currency, status, created_at) values
    ('11111111-1111-4111-8111-111111111111', 'c1000000-0000-4000-8000-000000000001', 120000, 'COP', 'paid', now() - interval '3 days'),
    ('11111111-1111-4111-8111-111111111111', 'c1000000-0000-4000-8000-000000000001', 45500, 'COP', 'delivered', now() - interval '12 days'),
    ('11111111-1111-4111-8111-111111111111', 'c1000000-0000-4000-8000-000000000001', 80000, 'COP', 'delivered', now() - interval '60 days'),
    ('22222222-2222-4222-8222-222222222222', 'c2000000-0000-4000-8000-000000000001', 99000, 'COP', 'pending', now() - interval '1 day');

insert into public.whatsapp_channels (id, workspace_id, phone_number_id, display_phone_number, name,
                                      api_key, webhook_secret_hash, verify_token) values
    ('e1000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', '100000000000001',
     '+57 601 000 0001', 'Ventas A', 'demo-key-a',
     encode(extensions.digest('demo-secret-a', 'sha256'), 'hex'), 'demo-verify-a'),
    ('e2000000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222', '100000000000002',
     '+57 601 000 0002', 'Ventas B', 'demo-key-b',
     encode(extensions.digest('demo-secret-b', 'sha256'), 'hex'), 'demo-verify-b');

-- One open conversation per workspace, so the API has something to show.
insert into public.conversations (id, workspace_id, contact_id, phone, phone_number_id) values
    ('f1000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111',
     'c1000000-0000-4000-8000-000000000001', '+573001234567', '100000000000001'),
    ('f2000000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222',
     'c2000000-0000-4000-8000-000000000001', '+573205551234', '100000000000002');

insert into public.messages (conversation_id, wamid, direction, type, content, status, "timestamp") values
    ('f1000000-0000-4000-8000-000000000001', 'wamid.SEED.A1', 'inbound', 'text',
     '{"body":"Hola, ¿tienen la chaqueta en talla M?"}', 'delivered', now() - interval '20 minutes'),
    ('f2000000-0000-4000-8000-000000000001', 'wamid.SEED.B1', 'inbound', 'text',
     '{"body":"Buenas tardes, ¿hacen envíos a Cali?"}', 'delivered', now() - interval '2 hours');
