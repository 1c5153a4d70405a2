-- Every text an agent can write through the Data API has a length cap
-- (docs/SECURITY.md, "The Data API"). contacts.email and contacts.city had
-- none: any member could store megabytes there with one POST, and every
-- co-worker's conversation list (list_conversations, get_conversation) then
-- carried them once per conversation linked to that contact (conversations'
-- contact_id is writable too), so one agent could make each page of the
-- inbox gigabytes.
--
-- 254 characters is the longest address SMTP can deliver to; 200 is the cap
-- names already have. Only a direct write could exceed them (the service
-- writes neither column): such values are dropped, as migration 007 dropped
-- media links it would not have accepted.
update public.contacts set email = null where length(email) > 254;
update public.contacts set city = null where length(city) > 200;
alter table public.contacts
    add constraint contacts_email_length check (length(email) <= 254),
    add constraint contacts_city_length check (length(city) <= 200);
