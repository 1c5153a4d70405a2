"""Inbound WhatsApp: durable webhook inbox and the worker that turns it into rows."""
