-- The Data API is a public API: agents' browsers hold a JWT and can call
-- whatever `authenticated` is granted, so everything the service refuses the
-- database refuses too (docs/SECURITY.md, "The Data API").

-- ---------------------------------------------------------------------------
-- messages.wamid: a real UNIQUE constraint
-- ---------------------------------------------------------------------------

-- The partial unique index could not be named by `ON CONFLICT (wamid)` without
-- its predicate, so PostgREST's upsert (`on_conflict=wamid`, what supabase-py
-- and supabase-js send) failed with 42P10. A unique constraint still lets many
-- rows have no wamid (NULLs are distinct), and the ingest's
-- `on conflict (wamid) where wamid is not null` infers it as well.
alter table public.messages add constraint messages_wamid_key unique (wamid);
drop index public.idx_messages_wamid;
