"""Captures events against a running Hedgerow with PostHog's own Python SDK (from PyPI).

Usage: python posthog_sdk_capture.py HOST TOKEN
Sends 120 events with a plain client and 30 with a gzip client, one of them with a fixed uuid and
timestamp, then flushes and shuts both down. Exits non-zero if the SDK reports an error.
"""
import datetime
import sys
import uuid

from posthog import Posthog

host, token = sys.argv[1], sys.argv[2]
errors = []


def on_error(error, items):
    errors.append(f"{error} ({len(items)} items)")


plain = Posthog(token, host=host, on_error=on_error, flush_at=50, max_retries=1)
compressed = Posthog(token, host=host, on_error=on_error, gzip=True, flush_at=50, max_retries=1)

for index in range(120):
    plain.capture(event="sdk plain", distinct_id=f"user-{index % 7}", properties={"index": index, "$set": {"plan": "pro"}})
for index in range(29):
    compressed.capture(event="sdk gzip", distinct_id="gzip-user", properties={"index": index})
compressed.capture(
    event="sdk fixed",
    distinct_id="fixed-user",
    properties={"kind": "fixed"},
    uuid=uuid.UUID("01900000-0000-7000-8000-000000000001"),
    timestamp=datetime.datetime(2024, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc),
)

for client in (plain, compressed):
    client.flush()
    client.shutdown()

if errors:
    print("SDK errors:", errors, file=sys.stderr)
    sys.exit(1)
print("ok")
