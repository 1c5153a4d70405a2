// The frontend contract: the queries an agents' browser runs with supabase-js,
// against the local stack through its gateway (scripts/test.sh starts it and
// points WA_TEST_STACK_ENV at its stack.env). docs/FRONTEND.md shows the same
// code. Fixtures are written with psql as the stack's postgres role, the way
// the Python tests make theirs; everything else goes through supabase-js.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createClient } from '@supabase/supabase-js';

function stackEnv() {
  const path = process.env.WA_TEST_STACK_ENV;
  if (!path) throw new Error('WA_TEST_STACK_ENV is not set: run the tests with `make test`');
  const env = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line || line.startsWith('#') || !line.includes('=')) continue;
    const at = line.indexOf('=');
    env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

const env = stackEnv();

function sql(statement) {
  return execFileSync('psql', [env.DATABASE_URL, '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c', statement], {
    encoding: 'utf8',
  }).trim();
}

const b64url = (value) => Buffer.from(value).toString('base64url');

// A user's access token as Supabase Auth signs it (HS256, the stack's secret).
function accessToken(userId) {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = b64url(
    JSON.stringify({ sub: userId, role: 'authenticated', aud: 'authenticated', iat: now, exp: now + 3600 }),
  );
  const signature = createHmac('sha256', env.SUPABASE_JWT_SECRET).update(`${header}.${claims}`).digest('base64url');
  return `${header}.${claims}.${signature}`;
}

// As a browser: the publishable (anon) key, and the signed-in agent's token.
function agentClient(userId) {
  return createClient(env.SUPABASE_URL, env.SUPABASE_ANON_KEY, {
    accessToken: async () => accessToken(userId),
  });
}

const ids = {
  workspace: randomUUID(),
  otherWorkspace: randomUUID(),
  agent: randomUUID(),
  teammate: randomUUID(),
  otherAgent: randomUUID(),
  ana: randomUUID(),
  luis: randomUUID(),
  foreignContact: randomUUID(),
  multi: randomUUID(), // a member of both workspaces
  first: randomUUID(), // newest, unread, unassigned
  second: randomUUID(), // read, assigned to the agent
  third: randomUUID(), // archived, assigned to the teammate
  foreign: randomUUID(),
};
const userId = `CO.${String(Math.floor(Math.random() * 1e15)).padStart(15, '0')}`;
const phone = () => `+57300${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
const channel = String(Math.floor(1e14 + Math.random() * 8e14));
const otherChannel = String(Math.floor(1e14 + Math.random() * 8e14));
let agent;
let otherAgent;

before(() => {
  const user = (id) =>
    `('00000000-0000-0000-0000-000000000000', '${id}', 'authenticated', 'authenticated', 'fe-${id}@example.test')`;
  const i = ids;
  sql(`
    insert into auth.users (instance_id, id, aud, role, email) values
      ${user(i.agent)}, ${user(i.teammate)}, ${user(i.otherAgent)}, ${user(i.multi)};
    insert into public.workspaces (id, name) values
      ('${i.workspace}', 'Frontend A'), ('${i.otherWorkspace}', 'Frontend B');
    insert into public.workspace_members (workspace_id, user_id) values
      ('${i.workspace}', '${i.agent}'), ('${i.workspace}', '${i.teammate}'),
      ('${i.otherWorkspace}', '${i.otherAgent}'),
      ('${i.workspace}', '${i.multi}'), ('${i.otherWorkspace}', '${i.multi}');
    insert into public.whatsapp_channels (workspace_id, phone_number_id, display_phone_number, name, api_key) values
      ('${i.workspace}', '${channel}', '+57 601 555 0001', 'A', 'fe-key-a-${i.workspace}'),
      ('${i.otherWorkspace}', '${otherChannel}', '+57 601 555 0002', 'B', 'fe-key-b-${i.workspace}');
    insert into public.contacts (id, workspace_id, name, phone, city) values
      ('${i.ana}', '${i.workspace}', 'Ana Gómez', '+573001110001', 'Medellín'),
      ('${i.luis}', '${i.workspace}', 'Luis Peña', '+573001110002', 'Cali'),
      ('${i.foreignContact}', '${i.otherWorkspace}', 'Otro', '+573001110003', 'Bogotá');
    insert into public.tags (workspace_id, name) values ('${i.workspace}', 'VIP'), ('${i.workspace}', 'Mayorista');
    insert into public.contact_tags (workspace_id, contact_id, tag_id)
      select '${i.workspace}', '${i.ana}', t.id from public.tags t where t.workspace_id = '${i.workspace}';
    insert into public.conversations (id, workspace_id, contact_id, phone, phone_number_id, status, assigned_to) values
      ('${i.first}', '${i.workspace}', '${i.ana}', '${phone()}', '${channel}', 'active', null),
      ('${i.second}', '${i.workspace}', null, '${phone()}', '${channel}', 'active', '${i.agent}'),
      ('${i.third}', '${i.workspace}', null, '${phone()}', '${channel}', 'active', '${i.teammate}'),
      ('${i.foreign}', '${i.otherWorkspace}', null, '${phone()}', '${otherChannel}', 'active', null);
    insert into public.messages (conversation_id, wamid, direction, type, content, status, "timestamp") values
      ('${i.third}', 'wamid.FE.${i.third}', 'inbound', 'text', '{"body": "tercera"}', 'delivered', now() - interval '3 hours'),
      ('${i.second}', 'wamid.FE.${i.second}', 'inbound', 'text', '{"body": "segunda"}', 'delivered', now() - interval '2 hours'),
      ('${i.first}', 'wamid.FE.${i.first}.1', 'inbound', 'text', '{"body": "uno"}', 'delivered', now() - interval '50 minutes'),
      ('${i.first}', 'wamid.FE.${i.first}.2', 'inbound', 'text', '{"body": "dos"}', 'delivered', now() - interval '40 minutes'),
      ('${i.first}', 'wamid.FE.${i.first}.3', 'inbound', 'text', '{"body": "tres"}', 'delivered', now() - interval '30 minutes'),
      ('${i.foreign}', 'wamid.FE.${i.foreign}', 'inbound', 'text', '{"body": "ajena"}', 'delivered', now() - interval '1 minute');
    update public.conversations set is_read = true, unread_count = 0 where id = '${i.second}';
    -- The second customer is known by WhatsApp username only: no phone, a user id.
    update public.conversations set phone = null, user_id = '${userId}', profile_name = 'Valentina Ríos',
      username = 'vale.rios' where id = '${i.second}';
    -- An inbound message reopens a conversation, so archive after the messages.
    update public.conversations set status = 'archived' where id = '${i.third}';
  `);
  agent = agentClient(ids.agent);
  otherAgent = agentClient(ids.otherAgent);
});

after(() => {
  sql(`
    delete from public.workspaces where id in ('${ids.workspace}', '${ids.otherWorkspace}');
    delete from auth.users where id in ('${ids.agent}', '${ids.teammate}', '${ids.otherAgent}', '${ids.multi}');
  `);
});

// The conversation list: newest first, who the customer is (phone and/or
// WhatsApp user id, profile name, username), the linked contact and its tags.
const LIST =
  'id, workspace_id, phone, user_id, profile_name, username, status, is_read, unread_count, assigned_to, ' +
  'last_message_at, last_message_preview, contact:contacts(id, name, phone, city, contact_tags(tag:tags(name)))';

function list(client) {
  return client.from('conversations').select(LIST).order('last_message_at', { ascending: false }).order('id', { ascending: false });
}

test('conversations come newest first with the embedded contact', async () => {
  const { data, error } = await list(agent);
  assert.equal(error, null);
  assert.deepEqual(
    data.map((c) => c.id),
    [ids.first, ids.second, ids.third],
  );
  const [first] = data;
  assert.equal(first.unread_count, 3);
  assert.equal(first.is_read, false);
  assert.equal(first.last_message_preview, 'tres');
  assert.equal(first.contact.name, 'Ana Gómez');
  assert.equal(first.contact.phone, '+573001110001');
  assert.equal(first.contact.city, 'Medellín');
  assert.deepEqual(first.contact.contact_tags.map((t) => t.tag.name).sort(), ['Mayorista', 'VIP']);
  assert.equal(data[1].contact, null);
  // Without a linked contact, the customer's WhatsApp identity names the row.
  assert.deepEqual(
    [data[1].phone, data[1].user_id, data[1].profile_name, data[1].username],
    [null, userId, 'Valentina Ríos', 'vale.rios'],
  );
  assert.ok(data.every((c) => c.workspace_id === ids.workspace));
});

test('a member of several workspaces gets every row labelled, and filters one', async () => {
  const multi = agentClient(ids.multi);
  const all = await list(multi);
  assert.equal(all.error, null);
  assert.deepEqual(
    all.data.map((c) => [c.id, c.workspace_id]),
    [
      [ids.foreign, ids.otherWorkspace],
      [ids.first, ids.workspace],
      [ids.second, ids.workspace],
      [ids.third, ids.workspace],
    ],
  );
  const one = await list(multi).eq('workspace_id', ids.workspace);
  assert.deepEqual(one.data.map((c) => c.id), [ids.first, ids.second, ids.third]);
});

test('filters by status, read state and assignee', async () => {
  const archived = await list(agent).eq('status', 'archived');
  assert.deepEqual(archived.data.map((c) => c.id), [ids.third]);
  const unread = await list(agent).eq('status', 'active').eq('is_read', false);
  assert.deepEqual(unread.data.map((c) => c.id), [ids.first]);
  const mine = await list(agent).eq('assigned_to', ids.agent);
  assert.deepEqual(mine.data.map((c) => c.id), [ids.second]);
  const unassigned = await list(agent).is('assigned_to', null);
  assert.deepEqual(unassigned.data.map((c) => c.id), [ids.first]);
});

test("a conversation's messages in order", async () => {
  const { data, error } = await agent
    .from('messages')
    .select('id, direction, type, content, status, timestamp, reaction, media_mime_type, media_filename')
    .eq('conversation_id', ids.first)
    .order('timestamp', { ascending: true })
    .order('id', { ascending: true });
  assert.equal(error, null);
  assert.deepEqual(
    data.map((m) => m.content.body),
    ['uno', 'dos', 'tres'],
  );
});

test('mark read, archive, unarchive and link a contact by update', async () => {
  const read = await agent.from('conversations').update({ is_read: true, unread_count: 0 }).eq('id', ids.first).select('is_read, unread_count').single();
  assert.equal(read.error, null);
  assert.deepEqual(read.data, { is_read: true, unread_count: 0 });

  const archived = await agent.from('conversations').update({ status: 'archived' }).eq('id', ids.first).select('status').single();
  assert.equal(archived.data.status, 'archived');
  const restored = await agent.from('conversations').update({ status: 'active' }).eq('id', ids.first).select('status').single();
  assert.equal(restored.data.status, 'active');

  const linked = await agent.from('conversations').update({ contact_id: ids.luis }).eq('id', ids.second).select('contact:contacts(name, city)').single();
  assert.equal(linked.error, null);
  assert.deepEqual(linked.data.contact, { name: 'Luis Peña', city: 'Cali' });

  // A contact of another workspace cannot be linked (composite foreign key).
  const foreign = await agent.from('conversations').update({ contact_id: ids.foreignContact }).eq('id', ids.second);
  assert.equal(foreign.error?.code, '23503');

  const assigned = await agent.from('conversations').update({ assigned_to: ids.teammate }).eq('id', ids.second).select('assigned_to').single();
  assert.equal(assigned.error, null);
  assert.equal(assigned.data.assigned_to, ids.teammate);
  // Nor can an agent of another workspace be assigned.
  const outsider = await agent.from('conversations').update({ assigned_to: ids.otherAgent }).eq('id', ids.second);
  assert.equal(outsider.error?.code, '23503');
  // Columns agents do not write are refused by the database.
  const preview = await agent.from('conversations').update({ last_message_preview: 'forged' }).eq('id', ids.second);
  assert.equal(preview.error?.code, '42501');
});

test("another workspace's agent gets nothing and changes nothing", async () => {
  const listed = await list(otherAgent);
  assert.deepEqual(listed.data.map((c) => c.id), [ids.foreign]);
  const messages = await otherAgent.from('messages').select('id').eq('conversation_id', ids.first);
  assert.deepEqual(messages.data, []);
  const updated = await otherAgent.from('conversations').update({ status: 'archived' }).eq('id', ids.first).select('id');
  assert.equal(updated.error, null);
  assert.deepEqual(updated.data, []);
  assert.equal(sql(`select status from public.conversations where id = '${ids.first}'`), 'active');
  const contacts = await otherAgent.from('contacts').select('id').in('id', [ids.ana, ids.luis]);
  assert.deepEqual(contacts.data, []);
});

test('the service role stores a delivery once: upsert on wamid ignoring duplicates', async () => {
  const service = createClient(env.SUPABASE_URL, env.SUPABASE_SERVICE_ROLE_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
  });
  const wamid = `wamid.FE.upsert.${randomUUID()}`;
  const row = {
    conversation_id: ids.first,
    workspace_id: ids.workspace,
    wamid,
    direction: 'inbound',
    type: 'text',
    content: { body: 'una vez' },
    status: 'delivered',
  };
  const first = await service.from('messages').upsert(row, { onConflict: 'wamid', ignoreDuplicates: true }).select('id');
  assert.equal(first.error, null);
  assert.equal(first.data.length, 1);
  const again = await service
    .from('messages')
    .upsert({ ...row, content: { body: 'otra vez' } }, { onConflict: 'wamid', ignoreDuplicates: true })
    .select('id');
  assert.equal(again.error, null);
  assert.deepEqual(again.data, []);
  assert.equal(sql(`select count(*) || ':' || min(content ->> 'body') from public.messages where wamid = '${wamid}'`), '1:una vez');
});
