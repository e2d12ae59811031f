"""Every bound in the system, named, unit last.

Limits that vary by jurisdiction or industry are not here: they are rule-set data.
"""

from typing import Final

# Amounts stay within 2**53 - 1 so that every figure in the journal is exact in any JSON
# reader (JavaScript included), well inside PostgreSQL's BIGINT.
amount_fen_max: Final = 2**53 - 1
postings_per_transaction_max: Final = 64
postings_per_transaction_min: Final = 2
batch_transactions_max: Final = 1000
memo_chars_max: Final = 500
name_chars_max: Final = 200
owner_chars_max: Final = 100
idempotency_key_chars_max: Final = 200
request_body_bytes_max: Final = 4 * 1024 * 1024
journal_page_entries_max: Final = 1000
journal_page_entries_default: Final = 100
postings_page_max: Final = 1000
postings_page_default: Final = 100
# Every other list the API answers (releases, refunds, breaks, cross-verifications, a bank's
# payment instructions, rule sets, banks): items per page, after the `after` cursor.
list_page_items_max: Final = 1000
list_page_items_default: Final = 100
# A merchant's exposure costs a handful of queries: fewer of them per page.
exposure_page_merchants_max: Final = 200
exposure_page_merchants_default: Final = 50
# Group commit: how many requests one database transaction may carry, and how long the
# first request of a batch waits for company when the queue is not already busy.
group_commit_requests_max: Final = 256
group_commit_wait_ms: Final = 1.0
# How often the writer's helper, with nothing queued, looks whether the batch in flight has
# landed.
flight_poll_ms: Final = 0.5
appender_queue_requests_max: Final = 20_000
request_timeout_s: Final = 30.0
# What a request refused because the database is away answers in Retry-After: about the
# time a PostgreSQL restart takes (docs/reliability.md).
database_retry_after_s: Final = 3
# A silent database (a hung server, a network that drops packets instead of refusing them)
# never sends an error. How long a write waits for the writer's answer before it is answered
# 503 database_unavailable, `recorded: unknown` (the writer may still commit it when the
# database answers again); and how long making a connection may take (libpq's
# connect_timeout), so the writer's reconnection is bounded too (docs/reliability.md).
write_answer_wait_s: Final = 10
database_connect_timeout_s: Final = 5
# Over TCP, a silent peer on an idle connection is probed after this long, then this often,
# and given up after so many unanswered probes (libpq's keepalives).
database_keepalive_idle_s: Final = 10
database_keepalive_interval_s: Final = 5
database_keepalive_probes_max: Final = 3
# Audit: signed tree heads listed per page, and how often the service signs a new head when
# the journal has grown (also on demand).
tree_heads_page_max: Final = 1000
tree_heads_page_default: Final = 100
tree_head_interval_s: Final = 60.0
