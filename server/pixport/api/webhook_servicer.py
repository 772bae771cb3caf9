"""pixport.v1.WebhookService: the delivery log and redelivery."""

from __future__ import annotations

from typing import Any

import grpc

from pixport.api.auth import authenticate
from pixport.api.context import ApiContext
from pixport.api.convert import timestamp
from pixport.api.errors import domain_errors
from pixport.domain.errors import FieldViolation, InvalidArgument
from pixport.domain.webhooks import Delivery, DeliveryState, Webhooks
from pixport.v1 import webhook_service_pb2, webhook_service_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
MAX_PAGE_SIZE = 200
_STATES = {
    DeliveryState.PENDING: webhook_service_pb2.WebhookDelivery.STATE_PENDING,
    DeliveryState.DELIVERING: webhook_service_pb2.WebhookDelivery.STATE_DELIVERING,
    DeliveryState.DELIVERED: webhook_service_pb2.WebhookDelivery.STATE_DELIVERED,
    DeliveryState.FAILED: webhook_service_pb2.WebhookDelivery.STATE_FAILED,
}


def delivery_message(delivery: Delivery) -> webhook_service_pb2.WebhookDelivery:
    message = webhook_service_pb2.WebhookDelivery(
        id=delivery.id, job_id=delivery.job_id, url=delivery.url, state=_STATES[delivery.state],
        attempt_count=delivery.attempt_count, last_status_code=delivery.last_status_code or 0,
        last_error=delivery.last_error or "", create_time=timestamp(delivery.created_at),
    )
    if delivery.next_attempt_at is not None:
        message.next_attempt_time.CopyFrom(timestamp(delivery.next_attempt_at))
    if delivery.delivered_at is not None:
        message.deliver_time.CopyFrom(timestamp(delivery.delivered_at))
    message.attempts.extend(
        webhook_service_pb2.WebhookAttempt(
            attempt_time=timestamp(attempt.attempted_at), status_code=attempt.status_code or 0,
            error=attempt.error or "", duration_ms=attempt.duration_ms, response_excerpt=attempt.response_excerpt or "",
        )
        for attempt in delivery.attempts
    )
    return message


class WebhookServicer(webhook_service_pb2_grpc.WebhookServiceServicer):
    def __init__(self, api: ApiContext, webhooks: Webhooks) -> None:
        self._api = api
        self._webhooks = webhooks

    async def ListWebhookDeliveries(
        self, request: webhook_service_pb2.ListWebhookDeliveriesRequest, context: Context
    ) -> webhook_service_pb2.ListWebhookDeliveriesResponse:
        async with domain_errors(context):
            principal = await authenticate(context, self._api.authenticator)
            if request.page_size < 0:
                raise InvalidArgument([FieldViolation("pageSize", "must not be negative")])
            deliveries = await self._webhooks.list_deliveries(
                principal, request.job_id, limit=min(request.page_size or 50, MAX_PAGE_SIZE)
            )
        return webhook_service_pb2.ListWebhookDeliveriesResponse(
            webhook_deliveries=[delivery_message(delivery) for delivery in deliveries]
        )

    async def GetWebhookDelivery(
        self, request: webhook_service_pb2.GetWebhookDeliveryRequest, context: Context
    ) -> webhook_service_pb2.WebhookDelivery:
        async with domain_errors(context):
            principal = await authenticate(context, self._api.authenticator)
            delivery = await self._webhooks.get(principal, request.id)
        return delivery_message(delivery)

    async def RedeliverWebhookDelivery(
        self, request: webhook_service_pb2.RedeliverWebhookDeliveryRequest, context: Context
    ) -> webhook_service_pb2.WebhookDelivery:
        async with domain_errors(context):
            principal = await authenticate(context, self._api.authenticator)
            delivery = await self._webhooks.redeliver(principal, request.id)
        return delivery_message(delivery)
