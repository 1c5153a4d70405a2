-- Structure: indexes (name, columns, order, uniqueness, predicate, method),
-- triggers (timing, events, level, function), row-level security switched
-- on, and the realtime publication.
begin;
select plan(70);

-- Indexes: the full definition, so columns, DESC, partial predicates, GIN
-- trigram opclasses and uniqueness are all pinned (33).
create temp table expected_indexes (name text, def text) on commit drop;
insert into expected_indexes values
    -- asked for by name in the issue
    ('idx_conversations_workspace', 'CREATE INDEX idx_conversations_workspace ON public.conversations USING btree (workspace_id, status, last_message_at DESC, id DESC)'),
    ('idx_conversations_phone', 'CREATE UNIQUE INDEX idx_conversations_phone ON public.conversations USING btree (workspace_id, phone)'),
    ('idx_conversations_updated', 'CREATE INDEX idx_conversations_updated ON public.conversations USING btree (workspace_id, last_message_at DESC, id DESC)'),
    ('idx_messages_conversation', 'CREATE INDEX idx_messages_conversation ON public.messages USING btree (conversation_id, "timestamp" DESC, id DESC)'),
    ('messages_wamid_key', 'CREATE UNIQUE INDEX messages_wamid_key ON public.messages USING btree (wamid)'),
    -- fuzzy search (trigram)
    ('idx_contacts_name_trgm', 'CREATE INDEX idx_contacts_name_trgm ON public.contacts USING gin (search_name gin_trgm_ops)'),
    ('idx_contacts_phone_trgm', 'CREATE INDEX idx_contacts_phone_trgm ON public.contacts USING gin (phone gin_trgm_ops)'),
    ('idx_conversations_phone_trgm', 'CREATE INDEX idx_conversations_phone_trgm ON public.conversations USING gin (phone gin_trgm_ops)'),
    -- lists, policies and foreign keys
    ('idx_conversations_unread', 'CREATE INDEX idx_conversations_unread ON public.conversations USING btree (workspace_id, last_message_at DESC, id DESC) WHERE (NOT is_read)'),
    ('idx_conversations_contact', 'CREATE INDEX idx_conversations_contact ON public.conversations USING btree (workspace_id, contact_id)'),
    ('idx_conversations_contact_id', 'CREATE INDEX idx_conversations_contact_id ON public.conversations USING btree (contact_id) WHERE (contact_id IS NOT NULL)'),
    ('idx_conversations_assigned_to', 'CREATE INDEX idx_conversations_assigned_to ON public.conversations USING btree (assigned_to) WHERE (assigned_to IS NOT NULL)'),
    ('conversations_workspace_id_id_key', 'CREATE UNIQUE INDEX conversations_workspace_id_id_key ON public.conversations USING btree (workspace_id, id)'),
    ('idx_messages_workspace', 'CREATE INDEX idx_messages_workspace ON public.messages USING btree (workspace_id, conversation_id)'),
    ('idx_messages_sent_by', 'CREATE INDEX idx_messages_sent_by ON public.messages USING btree (sent_by) WHERE (sent_by IS NOT NULL)'),
    ('reply_idempotency_keys_sender_key', 'CREATE UNIQUE INDEX reply_idempotency_keys_sender_key ON public.reply_idempotency_keys USING btree (conversation_id, sent_by, key)'),
    ('idx_workspace_members_user', 'CREATE INDEX idx_workspace_members_user ON public.workspace_members USING btree (user_id, workspace_id)'),
    ('workspace_members_pkey', 'CREATE UNIQUE INDEX workspace_members_pkey ON public.workspace_members USING btree (workspace_id, user_id)'),
    ('contacts_workspace_phone_key', 'CREATE UNIQUE INDEX contacts_workspace_phone_key ON public.contacts USING btree (workspace_id, phone)'),
    ('contacts_workspace_id_id_key', 'CREATE UNIQUE INDEX contacts_workspace_id_id_key ON public.contacts USING btree (workspace_id, id)'),
    ('tags_workspace_name_key', 'CREATE UNIQUE INDEX tags_workspace_name_key ON public.tags USING btree (workspace_id, name)'),
    ('tags_workspace_id_id_key', 'CREATE UNIQUE INDEX tags_workspace_id_id_key ON public.tags USING btree (workspace_id, id)'),
    ('contact_tags_pkey', 'CREATE UNIQUE INDEX contact_tags_pkey ON public.contact_tags USING btree (contact_id, tag_id, workspace_id)'),
    ('idx_contact_tags_workspace_contact', 'CREATE INDEX idx_contact_tags_workspace_contact ON public.contact_tags USING btree (workspace_id, contact_id)'),
    ('idx_contact_tags_workspace_tag', 'CREATE INDEX idx_contact_tags_workspace_tag ON public.contact_tags USING btree (workspace_id, tag_id)'),
    ('idx_contact_tags_tag', 'CREATE INDEX idx_contact_tags_tag ON public.contact_tags USING btree (tag_id)'),
    ('idx_orders_workspace_contact', 'CREATE INDEX idx_orders_workspace_contact ON public.orders USING btree (workspace_id, contact_id, created_at DESC)'),
    ('idx_orders_contact', 'CREATE INDEX idx_orders_contact ON public.orders USING btree (contact_id, created_at DESC)'),
    ('idx_whatsapp_channels_workspace', 'CREATE INDEX idx_whatsapp_channels_workspace ON public.whatsapp_channels USING btree (workspace_id)'),
    ('whatsapp_channels_phone_number_id_key', 'CREATE UNIQUE INDEX whatsapp_channels_phone_number_id_key ON public.whatsapp_channels USING btree (phone_number_id)'),
    ('whatsapp_channels_workspace_id_id_key', 'CREATE UNIQUE INDEX whatsapp_channels_workspace_id_id_key ON public.whatsapp_channels USING btree (workspace_id, id)'),
    ('idx_whatsapp_channels_secret', 'CREATE INDEX idx_whatsapp_channels_secret ON public.whatsapp_channels USING btree (webhook_secret_hash) WHERE (webhook_secret_hash IS NOT NULL)'),
    ('idx_whatsapp_channels_verify_token', 'CREATE INDEX idx_whatsapp_channels_verify_token ON public.whatsapp_channels USING btree (verify_token) WHERE (verify_token IS NOT NULL)');

select is(pg_get_indexdef(to_regclass('public.' || name)), def, format('index %s', name))
from expected_indexes order by name;

-- The same with pgTAP's own index assertions for the five named in the issue (5)
select has_index('public', 'conversations', 'idx_conversations_workspace',
                 array['workspace_id', 'status', 'last_message_at', 'id']::name[], 'idx_conversations_workspace columns');
select has_index('public', 'conversations', 'idx_conversations_phone', array['workspace_id', 'phone']::name[],
                 'idx_conversations_phone columns');
select has_index('public', 'conversations', 'idx_conversations_updated',
                 array['workspace_id', 'last_message_at', 'id']::name[], 'idx_conversations_updated columns');
select has_index('public', 'messages', 'idx_messages_conversation',
                 array['conversation_id', '"timestamp"', 'id']::name[], 'idx_messages_conversation columns');
select has_index('public', 'messages', 'messages_wamid_key', array['wamid']::name[], 'messages_wamid_key columns');

-- Triggers: full definitions (14) and the functions' security (3)
create temp table expected_triggers (tbl text, name text, def text) on commit drop;
insert into expected_triggers values
    ('workspaces', 'workspaces_updated_at', 'CREATE TRIGGER workspaces_updated_at BEFORE UPDATE ON public.workspaces FOR EACH ROW EXECUTE FUNCTION private.update_updated_at_column()'),
    ('contacts', 'contacts_set_workspace', 'CREATE TRIGGER contacts_set_workspace BEFORE INSERT ON public.contacts FOR EACH ROW EXECUTE FUNCTION private.set_workspace_id()'),
    ('contacts', 'contacts_updated_at', 'CREATE TRIGGER contacts_updated_at BEFORE UPDATE ON public.contacts FOR EACH ROW EXECUTE FUNCTION private.update_updated_at_column()'),
    ('tags', 'tags_set_workspace', 'CREATE TRIGGER tags_set_workspace BEFORE INSERT ON public.tags FOR EACH ROW EXECUTE FUNCTION private.set_workspace_id()'),
    ('contact_tags', 'contact_tags_set_workspace', 'CREATE TRIGGER contact_tags_set_workspace BEFORE INSERT ON public.contact_tags FOR EACH ROW EXECUTE FUNCTION private.set_workspace_id()'),
    ('orders', 'orders_set_workspace', 'CREATE TRIGGER orders_set_workspace BEFORE INSERT ON public.orders FOR EACH ROW EXECUTE FUNCTION private.set_workspace_id()'),
    ('orders', 'orders_updated_at', 'CREATE TRIGGER orders_updated_at BEFORE UPDATE ON public.orders FOR EACH ROW EXECUTE FUNCTION private.update_updated_at_column()'),
    ('whatsapp_channels', 'whatsapp_channels_updated_at', 'CREATE TRIGGER whatsapp_channels_updated_at BEFORE UPDATE ON public.whatsapp_channels FOR EACH ROW EXECUTE FUNCTION private.update_updated_at_column()'),
    ('conversations', 'conversations_set_workspace', 'CREATE TRIGGER conversations_set_workspace BEFORE INSERT ON public.conversations FOR EACH ROW EXECUTE FUNCTION private.set_workspace_id()'),
    ('conversations', 'conversations_updated_at', 'CREATE TRIGGER conversations_updated_at BEFORE UPDATE ON public.conversations FOR EACH ROW EXECUTE FUNCTION private.update_updated_at_column()'),
    ('conversations', 'conversations_check_assignee', 'CREATE TRIGGER conversations_check_assignee BEFORE INSERT OR UPDATE OF assigned_to ON public.conversations FOR EACH ROW EXECUTE FUNCTION private.check_conversation_assignee()'),
    ('messages', 'messages_set_workspace', 'CREATE TRIGGER messages_set_workspace BEFORE INSERT ON public.messages FOR EACH ROW EXECUTE FUNCTION private.set_workspace_id()'),
    ('messages', 'messages_enforce_status', 'CREATE TRIGGER messages_enforce_status BEFORE UPDATE ON public.messages FOR EACH ROW EXECUTE FUNCTION private.enforce_message_status()'),
    ('messages', 'update_conversation_on_message', 'CREATE TRIGGER update_conversation_on_message AFTER INSERT ON public.messages REFERENCING NEW TABLE AS new_messages FOR EACH STATEMENT EXECUTE FUNCTION private.update_conversation_on_message()');

select is((select pg_get_triggerdef(t.oid) from pg_trigger t
           where t.tgrelid = to_regclass('public.' || e.tbl) and t.tgname = e.name),
          e.def, format('trigger %s on %s', e.name, e.tbl))
from expected_triggers e order by e.tbl, e.name;

select ok((select prosecdef from pg_proc where oid = 'private.update_conversation_on_message()'::regprocedure),
          'update_conversation_on_message is security definer (agents cannot write the statistics columns)');
select ok(not (select prosecdef from pg_proc where oid = 'private.set_workspace_id()'::regprocedure),
          'set_workspace_id runs as the caller (a message''s conversation must be visible to its writer)');
select ok(not (select prosecdef from pg_proc where oid = 'private.enforce_message_status()'::regprocedure),
          'enforce_message_status runs as the caller');

-- Row-level security is on for every table (9)
select ok((select relrowsecurity from pg_class where oid = to_regclass('public.' || t)),
          format('RLS is enabled on public.%s', t))
from unnest(array['workspaces', 'workspace_members', 'contacts', 'tags', 'contact_tags', 'orders',
                  'whatsapp_channels', 'conversations', 'messages']) t;

-- Realtime publication (6)
select ok(exists (select 1 from pg_publication_tables
                  where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = t),
          format('supabase_realtime publishes public.%s', t))
from unnest(array['conversations', 'messages']) t;
select ok((select pubinsert and pubupdate and pubdelete from pg_publication where pubname = 'supabase_realtime'),
          'supabase_realtime publishes inserts, updates and deletes');
select is((select rowfilter from pg_publication_tables
           where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'messages'), null,
          'messages are published without a row filter');
select ok(not exists (select 1 from pg_publication_tables
                      where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'whatsapp_channels'),
          'whatsapp_channels (secrets) are not published');
select ok((select count(*) from pg_publication_tables pt
           where pt.pubname = 'supabase_realtime' and pt.schemaname = 'public' and pt.tablename = 'conversations'
             and 'last_message_preview' = any (pt.attnames) and 'unread_count' = any (pt.attnames)) = 1,
          'conversations are published with their statistics columns');

select * from finish();
rollback;
