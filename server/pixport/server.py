"""The gRPC server process: ImportService, ImageService, readiness, health and reflection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

import asyncpg
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pixport import blobs
from pixport.api.context import ApiContext
from pixport.api.decoding import DecodeErrorInterceptor
from pixport.api.image_servicer import ImageServicer
from pixport.api.import_servicer import ImportServicer
from pixport.api.observability_interceptor import ObservabilityInterceptor
from pixport.api.readiness_servicer import ReadinessServicer
from pixport.api.reflection import enable_server_reflection
from pixport.api.sharinpix_servicers import AlbumServicer, SingleImportServicer
from pixport.api.webhook_servicer import WebhookServicer
from pixport.config import Settings
from pixport.domain.auth import Authenticator
from pixport.domain.images import Images
from pixport.domain.imports import ImportJobs
from pixport.domain.sharinpix import AlbumImages, SingleImports
from pixport.domain.webhooks import Webhooks
from pixport.keys import load_server_key
from pixport.observability.queue_gauges import QueueGauges
from pixport.sealing import Sealer
from pixport.store.db import create_pool, ping
from pixport.store.images import ImageStore
from pixport.store.jobs import JobStore
from pixport.store.notifications import EventHub
from pixport.store.organizations import OrganizationStore
from pixport.store.queue_depth import queue_depth
from pixport.store.sharinpix import SharinpixStore
from pixport.store.webhooks import WebhookStore
from pixport.v1 import (
    album_service_pb2,
    album_service_pb2_grpc,
    image_service_pb2,
    image_service_pb2_grpc,
    import_service_pb2,
    import_service_pb2_grpc,
    readiness_service_pb2,
    readiness_service_pb2_grpc,
    single_import_service_pb2,
    single_import_service_pb2_grpc,
    webhook_service_pb2,
    webhook_service_pb2_grpc,
)

log = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
SERVICE_NAMES = (
    import_service_pb2.DESCRIPTOR.services_by_name["ImportService"].full_name,
    image_service_pb2.DESCRIPTOR.services_by_name["ImageService"].full_name,
    readiness_service_pb2.DESCRIPTOR.services_by_name["ReadinessService"].full_name,
    webhook_service_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name,
    single_import_service_pb2.DESCRIPTOR.services_by_name["SingleImportService"].full_name,
    album_service_pb2.DESCRIPTOR.services_by_name["AlbumService"].full_name,
)


# How long streams and calls in progress get to finish once draining starts.
DRAIN_GRACE_SECONDS = 5.0


async def _set_health(health_servicer: Any, status: Any) -> None:
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, status)


async def _watch_database(pool: asyncpg.Pool, health_servicer: Any) -> None:
    """Keep grpc.health.v1 truthful: NOT_SERVING while the database does not answer."""
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    was_up: bool | None = None
    while True:
        try:
            await ping(pool)
            up = True
        except Exception as error:
            up = False
            if was_up is not False:
                log.warning("database unavailable (%s): health NOT_SERVING", error or type(error).__name__)
        if up and was_up is False:
            log.warning("database answering again: health SERVING")
        was_up = up
        await _set_health(health_servicer, serving if up else not_serving)
        await asyncio.sleep(1 if not up else 2)


async def serve(settings: Settings, dsn: str) -> None:
    pool = await create_pool(dsn, max_size=20)
    hub = EventHub(dsn)
    await hub.start()
    server_key = load_server_key(settings.data_dir)
    authenticator = Authenticator(OrganizationStore(pool), server_key)
    api = ApiContext(
        authenticator=authenticator,
        configured_public_url=settings.configured_public_url,
        default_public_url=settings.public_url,
    )
    draining = asyncio.Event()
    server = grpc.aio.server(interceptors=[ObservabilityInterceptor(draining), DecodeErrorInterceptor()], options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),
    ])
    import_service_pb2_grpc.add_ImportServiceServicer_to_server(
        ImportServicer(api, ImportJobs(JobStore(pool)), hub), server
    )
    blob_store = blobs.from_settings(settings)
    image_service_pb2_grpc.add_ImageServiceServicer_to_server(
        ImageServicer(api, Images(ImageStore(pool)), blob_store), server
    )
    readiness_service_pb2_grpc.add_ReadinessServiceServicer_to_server(ReadinessServicer(pool, blob_store), server)
    sharinpix = SharinpixStore(pool, Sealer(server_key))
    single_import_service_pb2_grpc.add_SingleImportServiceServicer_to_server(
        SingleImportServicer(api, SingleImports(sharinpix)), server
    )
    album_service_pb2_grpc.add_AlbumServiceServicer_to_server(AlbumServicer(api, AlbumImages(sharinpix)), server)
    webhook_service_pb2_grpc.add_WebhookServiceServicer_to_server(
        WebhookServicer(api, Webhooks(WebhookStore(pool))), server
    )
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]  # stubs predate grpc.aio
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    if server.add_insecure_port(address) == 0:
        raise SystemExit(f"cannot listen on {address}")
    await server.start()
    watcher = asyncio.create_task(_watch_database(pool, health_servicer))
    gauges = asyncio.create_task(QueueGauges(lambda: queue_depth(pool)).run(), name="queue-gauges")
    log.info("gRPC server listening on %s", address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    # Drain: health NOT_SERVING (load balancers stop sending), streams end with UNAVAILABLE
    # naming the sequence to resume from, calls in progress get the grace period.
    log.info("gRPC server draining")
    for task in (watcher, gauges):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
    draining.set()
    await server.stop(grace=DRAIN_GRACE_SECONDS)
    log.info("gRPC server stopped")
    await hub.close()
    await blob_store.close()
    await pool.close()
