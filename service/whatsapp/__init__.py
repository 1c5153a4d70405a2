"""WhatsApp Cloud API (via 360dialog): webhook payloads, domain types, HTTP client."""
