-- Structure: every table, every column's type and nullability, and the
-- defaults that matter. Table-driven: one row per column below.
begin;
select plan(200);

create temp table expected_columns (tbl name, col name, typ text, not_null boolean) on commit drop;
insert into expected_columns values
    ('workspaces', 'id', 'uuid', true),
    ('workspaces', 'name', 'text', true),
    ('workspaces', 'timezone', 'text', true),
    ('workspaces', 'locale', 'text', true),
    ('workspaces', 'created_at', 'timestamp with time zone', true),
    ('workspaces', 'updated_at', 'timestamp with time zone', true),

    ('workspace_members', 'workspace_id', 'uuid', true),
    ('workspace_members', 'user_id', 'uuid', true),
    ('workspace_members', 'role', 'text', true),
    ('workspace_members', 'created_at', 'timestamp with time zone', true),

    ('contacts', 'id', 'uuid', true),
    ('contacts', 'workspace_id', 'uuid', true),
    ('contacts', 'name', 'text', false),
    ('contacts', 'phone', 'text', false),
    ('contacts', 'user_id', 'text', false),
    ('contacts', 'email', 'text', false),
    ('contacts', 'city', 'text', false),
    ('contacts', 'search_name', 'text', false),
    ('contacts', 'created_at', 'timestamp with time zone', true),
    ('contacts', 'updated_at', 'timestamp with time zone', true),

    ('tags', 'id', 'uuid', true),
    ('tags', 'workspace_id', 'uuid', true),
    ('tags', 'name', 'text', true),
    ('tags', 'color', 'text', false),
    ('tags', 'created_at', 'timestamp with time zone', true),

    ('contact_tags', 'workspace_id', 'uuid', true),
    ('contact_tags', 'contact_id', 'uuid', true),
    ('contact_tags', 'tag_id', 'uuid', true),
    ('contact_tags', 'created_at', 'timestamp with time zone', true),

    ('orders', 'id', 'uuid', true),
    ('orders', 'workspace_id', 'uuid', true),
    ('orders', 'contact_id', 'uuid', false),
    ('orders', 'total', 'numeric(14,2)', true),
    ('orders', 'currency', 'text', true),
    ('orders', 'status', 'text', true),
    ('orders', 'created_at', 'timestamp with time zone', true),
    ('orders', 'updated_at', 'timestamp with time zone', true),

    ('whatsapp_channels', 'id', 'uuid', true),
    ('whatsapp_channels', 'workspace_id', 'uuid', true),
    ('whatsapp_channels', 'phone_number_id', 'text', true),
    ('whatsapp_channels', 'display_phone_number', 'text', false),
    ('whatsapp_channels', 'name', 'text', false),
    ('whatsapp_channels', 'api_key', 'text', true),
    ('whatsapp_channels', 'webhook_secret_hash', 'text', false),
    ('whatsapp_channels', 'app_secret', 'text', false),
    ('whatsapp_channels', 'verify_token', 'text', false),
    ('whatsapp_channels', 'send_read_receipts', 'boolean', true),
    ('whatsapp_channels', 'is_active', 'boolean', true),
    ('whatsapp_channels', 'created_at', 'timestamp with time zone', true),
    ('whatsapp_channels', 'updated_at', 'timestamp with time zone', true),

    ('conversations', 'id', 'uuid', true),
    ('conversations', 'workspace_id', 'uuid', true),
    ('conversations', 'contact_id', 'uuid', false),
    ('conversations', 'phone', 'text', false),
    ('conversations', 'user_id', 'text', false),
    ('conversations', 'profile_name', 'text', false),
    ('conversations', 'username', 'text', false),
    ('conversations', 'search_text', 'text', true),
    ('conversations', 'phone_number_id', 'text', true),
    ('conversations', 'status', 'text', true),
    ('conversations', 'is_read', 'boolean', true),
    ('conversations', 'unread_count', 'integer', true),
    ('conversations', 'last_customer_message_at', 'timestamp with time zone', false),
    ('conversations', 'last_message_at', 'timestamp with time zone', true),
    ('conversations', 'last_message_preview', 'text', false),
    ('conversations', 'assigned_to', 'uuid', false),
    ('conversations', 'created_at', 'timestamp with time zone', true),
    ('conversations', 'updated_at', 'timestamp with time zone', true),

    ('messages', 'id', 'uuid', true),
    ('messages', 'conversation_id', 'uuid', true),
    ('messages', 'workspace_id', 'uuid', true),
    ('messages', 'wamid', 'text', false),
    ('messages', 'direction', 'text', true),
    ('messages', 'type', 'text', true),
    ('messages', 'content', 'jsonb', true),
    ('messages', 'status', 'text', true),
    ('messages', 'status_timestamp', 'timestamp with time zone', false),
    ('messages', 'error_code', 'integer', false),
    ('messages', 'error_message', 'text', false),
    ('messages', 'reaction', 'jsonb', false),
    ('messages', 'media_url', 'text', false),
    ('messages', 'media_mime_type', 'text', false),
    ('messages', 'media_filename', 'text', false),
    ('messages', 'sent_by', 'uuid', false),
    ('messages', 'timestamp', 'timestamp with time zone', true),
    ('messages', 'created_at', 'timestamp with time zone', true);

-- 9 tables
select has_table('public', t, format('table public.%s exists', t))
from unnest(array['workspaces', 'workspace_members', 'contacts', 'tags', 'contact_tags', 'orders',
                  'whatsapp_channels', 'conversations', 'messages']::name[]) t;

-- 87 columns: type (fails too when the column is missing) and nullability
select col_type_is('public', tbl, col, typ, format('%s.%s is %s', tbl, col, typ))
from expected_columns order by tbl, col;
select case when not_null
            then col_not_null('public', tbl, col, format('%s.%s is not null', tbl, col))
            else col_is_null('public', tbl, col, format('%s.%s is nullable', tbl, col)) end
from expected_columns order by tbl, col;

-- Defaults that carry meaning (19)
select col_default_is('public', 'workspaces', 'timezone', 'America/Bogota'::text, 'workspaces.timezone defaults to America/Bogota');
select col_default_is('public', 'workspaces', 'locale', 'en'::text, 'workspaces.locale defaults to en (previews as before)');
select col_default_is('public', 'conversations', 'search_text', ''::text, 'conversations.search_text defaults to empty');
select col_default_is('public', 'workspace_members', 'role', 'agent'::text, 'members are agents by default');
select col_default_is('public', 'orders', 'currency', 'COP'::text, 'orders.currency defaults to COP');
select col_default_is('public', 'orders', 'status', 'pending'::text, 'orders.status defaults to pending');
select col_default_is('public', 'whatsapp_channels', 'is_active', true, 'channels are active by default');
select col_default_is('public', 'conversations', 'id', 'gen_random_uuid()', 'conversations.id defaults to gen_random_uuid()');
select col_default_is('public', 'conversations', 'status', 'active'::text, 'conversations.status defaults to active');
select col_default_is('public', 'conversations', 'is_read', false, 'conversations.is_read defaults to false');
select col_default_is('public', 'conversations', 'unread_count', 0, 'conversations.unread_count defaults to 0');
select col_default_is('public', 'conversations', 'last_message_at', 'now()', 'conversations.last_message_at defaults to now()');
select col_default_is('public', 'conversations', 'created_at', 'now()', 'conversations.created_at defaults to now()');
select col_default_is('public', 'conversations', 'updated_at', 'now()', 'conversations.updated_at defaults to now()');
select col_default_is('public', 'messages', 'id', 'gen_random_uuid()', 'messages.id defaults to gen_random_uuid()');
select col_default_is('public', 'messages', 'content', '{}'::jsonb, 'messages.content defaults to {}');
select col_default_is('public', 'messages', 'status', 'pending'::text, 'messages.status defaults to pending');
select col_default_is('public', 'messages', 'timestamp', 'now()', 'messages.timestamp defaults to now()');
select col_default_is('public', 'messages', 'created_at', 'now()', 'messages.created_at defaults to now()');

select * from finish();
rollback;
