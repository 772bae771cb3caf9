"""What every servicer needs: the authenticator, the public URL base, the domain services."""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc

from pixport.api.auth import metadata_value
from pixport.domain.auth import Authenticator
from pixport.domain.urls import PublicUrls

# Set by the edge from the Host the caller used; Envoy overwrites any value the caller sent.
EDGE_URL_HEADER = "x-pixport-edge-url"
_SAFE_BASE = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


@dataclass(frozen=True)
class ApiContext:
    authenticator: Authenticator
    configured_public_url: str | None  # PIXPORT_PUBLIC_URL, when set
    default_public_url: str  # the edge on this machine

    def urls(self, context: grpc.aio.ServicerContext) -> PublicUrls:  # type: ignore[type-arg]
        if self.configured_public_url:
            return PublicUrls(self.configured_public_url)
        edge = metadata_value(context, EDGE_URL_HEADER)
        if edge and _SAFE_BASE.match(edge):
            return PublicUrls(edge)
        return PublicUrls(self.default_public_url)
