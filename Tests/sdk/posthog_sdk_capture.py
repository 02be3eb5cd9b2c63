"""Captures events against a running Hedgerow with PostHog's own Python SDK (from PyPI).

Usage: python posthog_sdk_capture.py HOST TOKEN
Sends 120 events with a plain client and 30 with a gzip client, one of them with a fixed uuid and
timestamp, then 20 with each of three capture-v1 clients (`/i/v1/analytics/events`: no compression,
gzip, deflate); flushes and shuts them all down. Exits non-zero if the SDK reports an error (a v1
event the server answers `drop` or `retry` for is one).
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

v1_clients = {
    compression: Posthog(
        token, host=host, on_error=on_error, flush_at=50, max_retries=1, capture_mode="v1", capture_compression=compression
    )
    for compression in ("none", "gzip", "deflate")
}
for compression, client in v1_clients.items():
    for index in range(20):
        client.capture(
            event=f"sdk v1 {compression}",
            distinct_id="v1-user",
            properties={"index": index, "$session_id": "session-1", "$set": {"seen_v1": True}},
        )

for client in (plain, compressed, *v1_clients.values()):
    client.flush()
    client.shutdown()

if errors:
    print("SDK errors:", errors, file=sys.stderr)
    sys.exit(1)
print("ok")
