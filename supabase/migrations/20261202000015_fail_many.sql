-- One call fails a batch's events: a tenant's poison events (and any other
-- event a batch cannot file) used to cost one round trip each, alongside the
-- other tenants' ingest (docs/SECURITY.md, "Tenant isolation of failures").
-- Same rule as public.fail_webhook_event (migration 003), set-based.

create function public.fail_webhook_events(p_failures jsonb)
returns table (id bigint, status text)
    language plpgsql
    set search_path = ''
as $$
begin
    -- The worker sends at most one claimed batch (WORKER_BATCH_SIZE <= 1000).
    if jsonb_typeof(p_failures) is distinct from 'array' or jsonb_array_length(p_failures) > 1000 then
        raise exception 'fail_webhook_events takes an array of at most 1000 failures'
            using errcode = '22023';
    end if;
    return query
    update public.webhook_events e
    set status = case when e.attempts >= f.max_attempts then 'dead' else 'pending' end,
        next_attempt_at = now() + least(
            interval '15 minutes',
            make_interval(secs => power(2, least(e.attempts, 20)) * (0.5 + random()))
        ),
        locked_until = null,
        last_error = left(f.error, 2000)
    from jsonb_to_recordset(p_failures) as f(id bigint, error text, max_attempts integer)
    where e.id = f.id
    returning e.id, e.status;
end;
$$;

revoke execute on function public.fail_webhook_events(jsonb) from public, anon, authenticated;
grant execute on function public.fail_webhook_events(jsonb) to service_role;
