"""Whom a repository call runs as, in its signature.

Both are PostgREST clients (and `ServiceClient` the service role's
supabase-py client); the difference is the token they carry, and so who
decides what the call may touch. A function taking `AgentDb` is safe to
call with any agent's request: RLS and the grants of `authenticated` decide.
One taking `ServiceDb` bypasses RLS, so its caller has checked the agent's
right first (or acts for no agent: the worker, the ledger, the CLI).
"""

from __future__ import annotations

from typing import NewType

from postgrest import AsyncPostgrestClient
from supabase import AsyncClient

# PostgREST with one agent's access token: every read and write under RLS.
AgentDb = NewType("AgentDb", AsyncPostgrestClient)
# PostgREST with the service-role key: no RLS; bookkeeping only the service does.
ServiceDb = NewType("ServiceDb", AsyncPostgrestClient)
# supabase-py with the service-role key (the webhook inbox, channels, workspaces,
# the worker and the CLI): no RLS either. Agents never get one of these.
ServiceClient = NewType("ServiceClient", AsyncClient)
