"""Inbox query benchmark: agents' reads at 200,000 conversations, through the service and in SQL.

Runs on a private stack (its own folder and ports) with the real API as a child
process, then removes everything it started.

    uv run python bench/inbox.py [--quick]

Two phases on the same stack, each seeded with set-based SQL as the stack's
superuser (triggers off for the bulk load, conversation stats then set from the
messages in one UPDATE): "spread", 50 workspaces (one agent each) sharing
200,000 conversations, and "large tenant", ONE workspace of 200,000
conversations on top of them. Conversations have contacts (Spanish names with
accents, E.164 phones), WhatsApp profile names and, one in three, usernames;
10 messages each on average over 60 days. For six reads (first page, search,
unread filter, page 10 by cursor, one conversation, one page of messages) each
phase measures p50/p95 of sequential requests through the service as the
workspace's agent, and the same SQL inside Postgres as `authenticated` under
RLS and as `postgres` (BYPASSRLS), rotating over the workspaces. Searches mix
names (partial, accents, typos), phone digits and usernames. `--quick` divides
every count by 10. The last line printed is one JSON object with the figures
(the large tenant's under "large_tenant").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.tokens import mint_access_token
from tests.support.processes import IsolatedStack, ServiceProcess, free_port_block
from tests.support.stack import psql

FIRST_NAMES = (
    "José", "María", "Andrés", "Sofía", "Camilo", "Valentina", "Sebastián", "Lucía", "Julián",
    "Mónica", "Martín", "Inés", "Raúl", "Ángela", "Óscar", "Verónica", "Héctor", "Natalia",
    "Germán", "Daniela", "Tomás", "Paula", "Nicolás", "Isabel", "Simón", "Carolina", "Joaquín",
    "Marta", "Iván", "Ana", "Jesús", "Beatriz", "Ramón", "Lorena", "Felipe", "Ximena",
)  # fmt: skip
SURNAMES = (
    "Álvarez", "Gómez", "Rodríguez", "Martínez", "Pérez", "Sánchez", "Fernández", "López",
    "García", "Hernández", "Díaz", "Muñoz", "Jiménez", "Ramírez", "Suárez", "Velásquez",
    "Castaño", "Peña", "Ibáñez", "Ortiz", "Restrepo", "Cardona", "Londoño", "Zuluaga", "Giraldo",
    "Ospina", "González", "Rojas", "Vargas", "Castro", "Quintero", "Mejía", "Bermúdez", "Ríos",
)  # fmt: skip
CITIES = ("Bogotá", "Medellín", "Cali", "Barranquilla", "Cartagena", "Bucaramanga", "Pereira")
BODIES = (
    "Hola, ¿tienen disponible la talla M?",
    "Buenas tardes, quiero hacer un pedido",
    "¿Cuánto cuesta el envío a Medellín?",
    "Gracias, ya realicé el pago 🙏",
    "¿A qué hora abren mañana?",
    "Claro que sí, con gusto le ayudamos",
    "Su pedido fue despachado hoy",
    "Le comparto el catálogo actualizado",
    "¿Me confirma la dirección de entrega?",
    "Perfecto, muchas gracias",
)
# Name searches (with and without accents, partial, typo) and phone digits.
NAME_SEARCHES = (
    "José",
    "jose alv",
    "María Gómez",
    "maria gom",
    "Sebastián",
    "rodri",
    "valentina r",
    "muñoz",
    "munoz",
    "Ibañez",
    "gonzales",
)


def sql_literal(value: str | None) -> str:
    if value is None:
        return "null"
    return "'" + value.replace("'", "''") + "'"


def sql_array(values: tuple[str, ...]) -> str:
    return "array[" + ", ".join(sql_literal(v) for v in values) + "]"


@dataclass(frozen=True)
class Phase:
    """One seeded population: `workspaces` workspaces sharing `conversations`."""

    name: str
    label: str  # workspace names are "Tienda <label> <n>"
    digit: str  # the first hex digit of its ids, so phases never collide
    workspaces: int
    conversations: int


def seed_sql(phase: Phase) -> str:
    """Everything in one superuser session: temp tables, triggers off (replica).

    Triggers are off, so what they maintain is set here: the statistics from the
    messages, and conversations.search_text (contact name, WhatsApp profile name,
    username). Every conversation has a profile name (the customer's name as
    WhatsApp shows it, or a variant of it) and one in three a username.
    """
    workspaces, conversations, d = phase.workspaces, phase.conversations, phase.digit
    return f"""
\\set ON_ERROR_STOP 1
set session_replication_role = replica;
set maintenance_work_mem = '256MB';
set work_mem = '128MB';
select setseed(0.42);

create temporary table seed_ws as
select w,
       ('b{d}000000-0000-4000-8000-' || lpad(to_hex(w), 12, '0'))::uuid as workspace_id,
       ('b{d}100000-0000-4000-8000-' || lpad(to_hex(w), 12, '0'))::uuid as user_id,
       (9{d}0000000000000 + w)::text as phone_number_id
from generate_series(0, {workspaces - 1}) w;

insert into auth.users (instance_id, id, aud, role, email, email_confirmed_at,
                        raw_app_meta_data, raw_user_meta_data)
select '00000000-0000-0000-0000-000000000000', user_id, 'authenticated', 'authenticated',
       'bench-agent-{d}-' || w || '@example.com', now(),
       '{{"provider":"email","providers":["email"]}}', '{{}}'
from seed_ws;
insert into public.workspaces (id, name, locale)
select workspace_id, 'Tienda {phase.label} ' || w, 'es' from seed_ws;
insert into public.workspace_members (workspace_id, user_id, role)
select workspace_id, user_id, 'agent' from seed_ws;
insert into public.whatsapp_channels (workspace_id, phone_number_id, api_key)
select workspace_id, phone_number_id, 'bench-key-' || w from seed_ws;
insert into public.tags (workspace_id, name, color)
select workspace_id, t.name, t.color
from seed_ws,
     (values ('VIP', '#f59e0b'), ('Mayorista', '#3b82f6'), ('Nuevo', '#10b981')) t(name, color);

-- One row per conversation: its workspace, contact (90% have one), phone and
-- message count (1..19, 10 on average), and the time of its last message.
create temporary table seed_conv as
select s, s / {workspaces} as t, ws.workspace_id, ws.phone_number_id, ws.user_id,
       gen_random_uuid() as id,
       case when (s / {workspaces}) % 10 <> 0 then gen_random_uuid() end as contact_id,
       '+573' || lpad(((s::bigint * 48271) % 1000000000)::text, 9, '0') as phone,
       f.names[1 + floor(random() * cardinality(f.names))::int] || ' ' ||
           f.surnames[1 + floor(random() * cardinality(f.surnames))::int] ||
           case when random() < 0.7
                then ' ' || f.surnames[1 + floor(random() * cardinality(f.surnames))::int]
                else '' end as name,
       f.cities[1 + floor(random() * cardinality(f.cities))::int] as city,
       f.names[1 + floor(random() * cardinality(f.names))::int] as nickname,
       case when s % 3 = 0 then lower(extensions.unaccent(
                f.names[1 + floor(random() * cardinality(f.names))::int])) || '.' || s end
           as username,
       1 + (s * 7) % 19 as n,
       now() - interval '60 days' * random() as last_at
from generate_series(0, {conversations - 1}) s
join seed_ws ws on ws.w = s % {workspaces}
cross join (select {sql_array(FIRST_NAMES)} as names, {sql_array(SURNAMES)} as surnames,
                   {sql_array(CITIES)} as cities) f;

insert into public.contacts (id, workspace_id, name, phone, email, city, created_at, updated_at)
select contact_id, workspace_id, name, phone,
       case when t % 3 = 0 then 'cliente' || s || '@example.com' end,
       city, last_at - interval '90 days', last_at - interval '90 days'
from seed_conv where contact_id is not null;

insert into public.contact_tags (workspace_id, contact_id, tag_id)
select c.workspace_id, c.contact_id, t.id
from seed_conv c
join public.tags t on t.workspace_id = c.workspace_id
 and t.name = (array['VIP', 'Mayorista', 'Nuevo'])[1 + c.t % 3]
where c.contact_id is not null and c.t % 5 = 1;

insert into public.orders (workspace_id, contact_id, total, status, created_at, updated_at)
select workspace_id, contact_id, 20000 + (t % 50) * 5000,
       (array['paid', 'shipped', 'delivered'])[1 + t % 3],
       last_at - interval '1 day' * (t % 45), last_at
from seed_conv where contact_id is not null and t % 4 = 2;

-- The profile name: the contact's name, or (one in four) a nickname and a surname.
insert into public.conversations (id, workspace_id, contact_id, phone, phone_number_id,
                                  profile_name, username, search_text,
                                  assigned_to, created_at, updated_at, last_message_at)
select id, workspace_id, contact_id, phone, phone_number_id, p.profile_name, username,
       private.search_text(concat_ws(' ', case when contact_id is not null then name end,
                                     p.profile_name, username)),
       case when t % 5 < 2 then user_id end,
       last_at - interval '90 days', last_at, last_at
from seed_conv
cross join lateral (select case when t % 4 = 1 then nickname || ' ' || split_part(name, ' ', 2)
                                else name end as profile_name) p;

-- Messages k = 1..n of each conversation, 37 minutes apart, the last at last_at;
-- the last one is inbound in 2 of 3 conversations, the others alternate.
insert into public.messages (conversation_id, workspace_id, wamid, direction, type, content,
                             status, status_timestamp, "timestamp", created_at)
select c.id, c.workspace_id, 'wamid.BENCH{d}.' || c.s || '.' || k, d.direction, 'text',
       jsonb_build_object('body', (select {sql_array(BODIES)})[1 + (c.s + k) % {len(BODIES)}]),
       case when d.direction = 'inbound' then 'delivered' else 'read' end,
       ts, ts, ts
from seed_conv c
cross join lateral generate_series(1, c.n) k
cross join lateral (select c.last_at - (c.n - k) * interval '37 minutes' as ts,
                           case when k = c.n then case when c.t % 3 <> 0 then 'inbound'
                                                       else 'outbound' end
                                when (k + c.t) % 2 = 0 then 'inbound'
                                else 'outbound' end as direction) d;

-- Conversation stats from the messages, as the insert trigger would have left them.
create temporary table seed_stats as
select m.conversation_id,
       max(m."timestamp") as last_at,
       max(m."timestamp") filter (where m.direction = 'inbound') as last_in,
       max(m."timestamp") filter (where m.direction = 'outbound') as last_out
from public.messages m
join seed_conv c on c.id = m.conversation_id
group by m.conversation_id;

update public.conversations v
set last_message_at = st.last_at,
    last_customer_message_at = st.last_in,
    last_message_preview = (
        select private.message_preview(m.type, m.content, 'es')
        from public.messages m
        where m.conversation_id = v.id
        order by m."timestamp" desc, m.id desc
        limit 1),
    -- Half the conversations whose customer wrote last are unread.
    unread_count = case when u.unread
                        then (select count(*) from public.messages m
                              where m.conversation_id = v.id and m.direction = 'inbound'
                                and m."timestamp" > coalesce(st.last_out, '-infinity'))
                        else 0 end,
    is_read = not u.unread,
    status = case when c.t % 7 = 3 and not u.unread then 'archived' else 'active' end
from seed_stats st
join seed_conv c on c.id = st.conversation_id
cross join lateral (
    select c.t % 2 = 0 and coalesce(st.last_in > coalesce(st.last_out, '-infinity'), false)
           as unread) u
where v.id = st.conversation_id;

reset session_replication_role;
vacuum (analyze) auth.users, public.workspaces, public.workspace_members,
    public.whatsapp_channels, public.tags, public.contacts, public.contact_tags,
    public.orders, public.conversations, public.messages;
checkpoint;
"""


def psql_admin(stack: IsolatedStack, sql: str) -> str:
    """SQL as the stack's superuser (supabase_admin) over the unix socket."""
    command = [
        "/usr/lib/postgresql/15/bin/psql", "-X", "-q", "-At",
        "-h", str(stack.folder / "run"), "-p", str(stack.port + 1),
        "-U", "supabase_admin", "-d", "postgres", "-f", "-",
    ]  # fmt: skip
    if os.geteuid() == 0:  # the cluster belongs to the postgres OS user (see stack.sh)
        command = ["runuser", "-u", "postgres", "--", *command]
    result = subprocess.run(command, input=sql, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"seeding failed: {result.stderr}")
    return result.stdout.strip()


@dataclass(frozen=True)
class Case:
    """One request: the agent, the HTTP call, and the SQL the service makes for it."""

    workspace: int
    path: str
    params: dict[str, str]
    sql: str


@dataclass(frozen=True)
class Tenant:
    workspace_id: str
    user_id: str
    token: str
    conversations: list[str]
    phones: list[str]
    usernames: list[str]


QUERIES = ("list", "search", "unread", "page10", "conversation", "messages")


def list_sql(workspace_id: str, **params: str | None) -> str:
    """The RPC call PostgREST makes for list_page (limit + 1 rows, every argument named)."""
    args: dict[str, str | None] = {
        "p_workspace_id": workspace_id,
        "p_search": None,
        "p_status": None,
        "p_is_read": None,
        "p_assigned_to": None,
        "p_limit": "31",
        "p_after_last_message_at": None,
        "p_after_id": None,
    } | params
    named = ", ".join(f"{k} => {sql_literal(v)}" for k, v in args.items())
    return f"select coalesce(json_agg(t), '[]') from public.list_conversations({named}) t"


MESSAGE_COLUMNS = (
    "id,conversation_id,workspace_id,wamid,direction,type,content,status,status_timestamp,"
    "error_code,error_message,reaction,media_url,media_mime_type,media_filename,sent_by,"
    "timestamp,created_at"
)


def get_sql(conversation_id: str) -> str:
    return (
        "select coalesce(json_agg(t), '[]') "
        f"from public.get_conversation(p_conversation_id => '{conversation_id}') t"
    )


def messages_sql(conversation_id: str) -> str:
    """Both calls of the endpoint: the visibility check, then the page (limit + 1)."""
    columns = ", ".join(f'm."{c}"' for c in MESSAGE_COLUMNS.split(","))
    return (
        f"select ({get_sql(conversation_id)}), "
        f"(select coalesce(json_agg(t), '[]') from (select {columns} "
        f"from public.list_messages(p_conversation_id => '{conversation_id}', p_limit => 51, "
        "p_before_timestamp => null, p_before_id => null) m) t)"
    )


def decode_cursor(cursor: str) -> tuple[str, str]:
    raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    at, row_id = raw if isinstance(raw, list) else (raw["at"], raw["id"])
    return str(at), str(row_id)


def search_terms(tenant: Tenant, rng: random.Random) -> list[str]:
    phone = rng.choice(tenant.phones)  # +573XXXXXXXXX
    username = rng.choice(tenant.usernames)  # maria.1234
    return [
        *NAME_SEARCHES,
        phone[6:13],  # 7 digits from the middle
        f"{phone[3:6]} {phone[6:9]}",  # "310 555", as typed
        f"@{username}",
        username.split(".")[0] + ".",  # every username of that first name
    ]


def build_cases(
    tenants: list[Tenant], cursors: list[str], count: int, rng: random.Random
) -> dict[str, list[Case]]:
    cases: dict[str, list[Case]] = {q: [] for q in QUERIES}
    for i in range(count):
        w = i % len(tenants)
        tenant = tenants[w]
        ws = tenant.workspace_id
        base = {"workspace_id": ws, "limit": "30"}
        cases["list"].append(Case(w, "/api/conversations", base, list_sql(ws)))
        terms = search_terms(tenant, rng)
        term = terms[i % len(terms)]
        cases["search"].append(
            Case(w, "/api/conversations", base | {"search": term}, list_sql(ws, p_search=term))
        )
        cases["unread"].append(
            Case(w, "/api/conversations", base | {"is_read": "false"}, list_sql(ws, p_is_read="f"))
        )
        at, after = decode_cursor(cursors[w])
        cases["page10"].append(
            Case(
                w,
                "/api/conversations",
                base | {"cursor": cursors[w]},
                list_sql(ws, p_after_last_message_at=at, p_after_id=after),
            )
        )
        conversation = rng.choice(tenant.conversations)
        cases["conversation"].append(
            Case(w, f"/api/conversations/{conversation}", {}, get_sql(conversation))
        )
        conversation = rng.choice(tenant.conversations)
        cases["messages"].append(
            Case(
                w,
                f"/api/conversations/{conversation}/messages",
                {"limit": "50"},
                messages_sql(conversation),
            )
        )
    return cases


async def measure_http(
    client: httpx.AsyncClient, tenants: list[Tenant], cases: list[Case]
) -> tuple[list[float], int]:
    """Sequential requests (latency, not throughput); milliseconds and non-200 count."""
    latencies: list[float] = []
    failures = 0
    for case in cases:
        headers = {"Authorization": f"Bearer {tenants[case.workspace].token}"}
        started = time.perf_counter()
        response = await client.get(case.path, params=case.params, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            failures += 1
    return latencies, failures


def measure_sql(
    database_url: str, tenants: list[Tenant], cases: list[Case], *, rls: bool
) -> list[float]:
    """The same statements inside Postgres, each timed with clock_timestamp()."""
    subs = ", ".join(sql_literal(tenants[c.workspace].user_id) for c in cases)
    statements = ", ".join(sql_literal(c.sql) for c in cases)
    block = f"""
do $bench$
declare
    subs text[] := array[{subs}];
    statements text[] := array[{statements}];
    started timestamptz;
    times text := '';
begin
    for i in 1 .. cardinality(statements) loop
        perform set_config('request.jwt.claims',
            json_build_object('sub', subs[i], 'role', 'authenticated')::text, true);
        started := clock_timestamp();
        execute statements[i];
        times := times || (extract(epoch from clock_timestamp() - started) * 1000)::text || ' ';
    end loop;
    raise notice 'times=%', times;
end $bench$;
"""
    role = "set role authenticated;" if rls else ""
    result = subprocess.run(
        ["psql", database_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
        input=role + block,
        check=True,
        capture_output=True,
        text=True,
    )
    for line in result.stderr.splitlines():
        if "times=" in line:
            return [float(x) for x in line.split("times=")[1].split()]
    raise RuntimeError(result.stderr)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def load_tenants(database_url: str, secret: str, phase: Phase) -> list[Tenant]:
    rows = psql(
        database_url,
        f"""
        select m.workspace_id, m.user_id,
               (select string_agg(x.id::text, ',') from (
                    select c.id from public.conversations c where c.workspace_id = m.workspace_id
                    order by md5(c.id::text) limit 40) x),
               (select string_agg(x.phone, ',') from (
                    select c.phone from public.conversations c where c.workspace_id = m.workspace_id
                    order by md5(c.phone) limit 40) x),
               (select string_agg(x.username, ',') from (
                    select c.username from public.conversations c
                    where c.workspace_id = m.workspace_id and c.username is not null
                    order by md5(c.username) limit 40) x)
        from public.workspace_members m
        join public.workspaces w on w.id = m.workspace_id
        where w.name like 'Tienda {phase.label} %'
        order by w.name collate "C"
        limit {phase.workspaces}
        """,
    )
    tenants = []
    for line in rows.splitlines():
        workspace_id, user_id, conversations, phones, usernames = line.split("|")
        token = mint_access_token(secret, user_id, ttl_seconds=4 * 3600)
        tenants.append(
            Tenant(
                workspace_id,
                user_id,
                token,
                conversations.split(","),
                phones.split(","),
                usernames.split(","),
            )
        )
    return tenants


async def page10_cursors(client: httpx.AsyncClient, tenants: list[Tenant]) -> list[str]:
    """Follow next_cursor 9 times per workspace: the cursor of its 10th page."""
    cursors = []
    for tenant in tenants:
        cursor: str | None = None
        for _ in range(9):
            params = {"workspace_id": tenant.workspace_id, "limit": "30"}
            if cursor:
                params["cursor"] = cursor
            response = await client.get(
                "/api/conversations",
                params=params,
                headers={"Authorization": f"Bearer {tenant.token}"},
            )
            response.raise_for_status()
            cursor = response.json()["next_cursor"]
            assert cursor, "fewer than 10 pages"
        assert cursor is not None
        cursors.append(cursor)
    return cursors


@dataclass
class Measured:
    """A phase's latencies per query, in milliseconds."""

    phase: Phase
    http: dict[str, list[float]]
    failures: dict[str, int]
    sql_rls: dict[str, list[float]]
    sql_plain: dict[str, list[float]]
    seed_seconds: float
    counts: list[str]


async def measure_phase(
    stack: IsolatedStack, api_url: str, phase: Phase, warmup: int, measured: int
) -> Measured:
    database_url = stack.env["DATABASE_URL"]
    started = time.perf_counter()
    psql_admin(stack, seed_sql(phase))
    seed_seconds = time.perf_counter() - started
    in_phase = (
        "workspace_id in (select id from public.workspaces "
        f"where name like 'Tienda {phase.label} %')"
    )
    counts = psql(
        database_url,
        f"select (select count(*) from public.conversations where {in_phase}), "
        f"(select count(*) from public.messages where {in_phase}), "
        f"(select count(*) from public.contacts where {in_phase}), "
        f"(select count(*) from public.conversations where {in_phase} and not is_read), "
        f"(select count(*) from public.conversations where {in_phase} and status = 'archived'), "
        f"(select count(*) from public.conversations where {in_phase} "
        " and assigned_to is not null), "
        f"(select count(*) from public.conversations where {in_phase} "
        " and last_customer_message_at > now() - interval '24 hours')",
    ).split("|")
    tenants = load_tenants(database_url, stack.env["SUPABASE_JWT_SECRET"], phase)
    rng = random.Random(7)

    http: dict[str, list[float]] = {}
    failures: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=api_url, timeout=30.0) as client:
        cursors = await page10_cursors(client, tenants)
        cases = build_cases(tenants, cursors, warmup + measured, rng)
        for query in QUERIES:
            latencies, failed = await measure_http(client, tenants, cases[query])
            http[query] = latencies[warmup:]
            failures[query] = failed

    sql_rls: dict[str, list[float]] = {}
    sql_plain: dict[str, list[float]] = {}
    for query in QUERIES:
        sql_rls[query] = measure_sql(database_url, tenants, cases[query], rls=True)[warmup:]
        sql_plain[query] = measure_sql(database_url, tenants, cases[query], rls=False)[warmup:]
    return Measured(phase, http, failures, sql_rls, sql_plain, seed_seconds, counts)


def report(m: Measured, warmup: int, measured: int) -> dict[str, Any]:
    """Prints the phase's table; returns its figures."""
    counts = m.counts
    print(
        f"== {m.phase.name}: seeded {int(counts[0]):,} conversations, {int(counts[1]):,} "
        f"messages, {int(counts[2]):,} contacts in {m.phase.workspaces} workspace(s) in "
        f"{m.seed_seconds:.1f}s ({int(counts[3]):,} unread, {int(counts[4]):,} archived, "
        f"{int(counts[5]):,} assigned, {int(counts[6]):,} with an open 24h window)"
    )
    print(
        f"{measured} sequential requests per query after {warmup} of warm-up, "
        "rotating over the workspaces; milliseconds"
    )
    print(
        f"{'query':>13} {'http p50':>9} {'http p95':>9} {'rls p50':>8} {'rls p95':>8} "
        f"{'sql p50':>8} {'sql p95':>8} {'rls x':>6} {'non-200':>8}"
    )
    overhead: dict[str, float] = {}
    for query in QUERIES:
        overhead[query] = statistics.median(m.sql_rls[query]) / statistics.median(
            m.sql_plain[query]
        )
        print(
            f"{query:>13} {percentile(m.http[query], 50):>9.1f} "
            f"{percentile(m.http[query], 95):>9.1f} "
            f"{percentile(m.sql_rls[query], 50):>8.2f} {percentile(m.sql_rls[query], 95):>8.2f} "
            f"{percentile(m.sql_plain[query], 50):>8.2f} "
            f"{percentile(m.sql_plain[query], 95):>8.2f} "
            f"{overhead[query]:>6.2f} {m.failures[query]:>8}"
        )
    worst = max(overhead, key=lambda q: overhead[q])
    figures: dict[str, Any] = {}
    for query in QUERIES:
        figures[f"{query}_p50_ms"] = round(percentile(m.http[query], 50), 2)
        figures[f"{query}_p95_ms"] = round(percentile(m.http[query], 95), 2)
    return figures | {
        "rls_overhead_ratio": round(overhead[worst], 3),
        "rls_overhead_worst_query": worst,
        "rls_overhead": {q: round(v, 3) for q, v in overhead.items()},
        "sql_rls_p50_ms": {q: round(percentile(v, 50), 3) for q, v in m.sql_rls.items()},
        "sql_rls_p95_ms": {q: round(percentile(v, 95), 3) for q, v in m.sql_rls.items()},
        "sql_no_rls_p50_ms": {q: round(percentile(v, 50), 3) for q, v in m.sql_plain.items()},
        "sql_no_rls_p95_ms": {q: round(percentile(v, 95), 3) for q, v in m.sql_plain.items()},
        "non_200": sum(m.failures.values()),
        "conversations": int(counts[0]),
        "messages": int(counts[1]),
        "workspaces": m.phase.workspaces,
        "seed_seconds": round(m.seed_seconds, 1),
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="everything / 10, for a smoke test")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    phases = (
        Phase("spread", "Bench", "0", 50 // (5 if args.quick else 1), 200_000 // scale),
        # One tenant as big as all of the above together: what search must stay fast for.
        Phase("large tenant", "Grande", "2", 1, 200_000 // scale),
    )
    warmup, measured = (5, 40) if args.quick else (20, 200)

    stack = IsolatedStack("bench-inbox")
    stack.up()
    api = None
    results: list[Measured] = []
    try:
        api = ServiceProcess("api", stack.env, port=free_port_block(1, start=58600))
        api.start()
        await api.wait_healthy()
        for phase in phases:
            results.append(await measure_phase(stack, api.url, phase, warmup, measured))
    finally:
        if api is not None:
            api.stop()
        stack.destroy()

    spread, large = (report(m, warmup, measured) for m in results)
    print(
        "http: through the service (Litestar -> PostgREST -> Postgres) as the agent; "
        "rls: the same SQL as `authenticated`; sql: as `postgres` (BYPASSRLS); "
        "rls x: ratio of the SQL medians"
    )
    figures = spread | {
        "requests_per_query": measured,
        "quick": args.quick,
        "large_tenant_search_p95_ms": large["search_p95_ms"],
        "large_tenant": large,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
