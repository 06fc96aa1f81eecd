"""Outbound delivery: the adapters that send what the outbox holds (SMTP, the webhook POST) and the worker
that drains the outbox. It sits beside storage/ as infrastructure: it imports core/, security/, settings,
errors, messages and the store's records, never services/ or web/."""
