"""Every Prometheus metric pixport exports, in one place, named as Prometheus' conventions say
(`pixport_` prefix, `_total` for counters, base units such as `_seconds` and `_bytes`).

Modules import the metric they update from here, so names and labels cannot drift between
processes. Label values must have bounded cardinality: RPC method names, status names, outcome
words; organisations only in the top-N gauge below."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Latency buckets from 1 ms to 60 s: RPCs, fetches, pixel work and blob writes all fit.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

RPC_REQUESTS = Counter(
    "pixport_rpc_requests_total", "gRPC calls handled, by method and status code.", ["method", "code"]
)
RPC_DURATION = Histogram(
    "pixport_rpc_duration_seconds", "Time to handle a gRPC call (streams: until they end).", ["method"],
    buckets=LATENCY_BUCKETS,
)
ITEMS_FINISHED = Counter(
    "pixport_items_finished_total", "Import items that reached a final status, by status.", ["status"]
)
FETCH_DURATION = Histogram(
    "pixport_fetch_duration_seconds", "Time to fetch an image's bytes (redirects included), by outcome.",
    ["outcome"], buckets=LATENCY_BUCKETS,
)
PIXELS_DURATION = Histogram(
    "pixport_pixels_duration_seconds", "Time in the pixel pool for one image (waiting included).",
    buckets=LATENCY_BUCKETS,
)
STORE_DURATION = Histogram(
    "pixport_store_duration_seconds", "Time to write an image's original and renditions to the blob store.",
    buckets=LATENCY_BUCKETS,
)
# Queue gauges are read from the database by every server process; under the multiprocess
# exposition of `pixport up` the most recent reading of a live process is the value shown.
QUEUE_ITEMS = Gauge(
    "pixport_queue_items", "Unfinished import items, by state (pending, running).", ["state"],
    multiprocess_mode="livemostrecent",
)
QUEUE_PENDING_BY_ORGANIZATION = Gauge(
    "pixport_queue_pending_items", "Pending import items of the organisations with the most pending work "
    "(the rest summed as organization=\"other\").", ["organization"], multiprocess_mode="livemostrecent",
)
LEASE_RECLAIMS = Counter(
    "pixport_lease_reclaims_total", "Items claimed again after their previous worker's lease expired."
)
ITEM_RETRIES = Counter("pixport_item_retries_total", "Items handed back to the queue for another attempt.")
WEBHOOK_ATTEMPTS = Counter(
    "pixport_webhook_attempts_total", "Webhook delivery attempts, by outcome (delivered, retry, failed).",
    ["outcome"],
)
PIXEL_PROCESS_RESTARTS = Counter(
    "pixport_pixel_process_restarts_total", "Pixel pool processes replaced after they died, timed out or aged."
)
BLOB_BYTES_WRITTEN = Counter(
    "pixport_blob_bytes_written_total", "Bytes written to the blob store (new blobs only)."
)

# The organisations shown by name in QUEUE_PENDING_BY_ORGANIZATION; the rest are summed.
TOP_ORGANIZATIONS = 20
