"""Salesforce: Attachment bodies and Files (ContentVersion) data over the REST API, with OAuth
access tokens refreshed by refresh token when Salesforce answers 401."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from pixport.fetch import Fetcher, FetchError
from pixport.store.sharinpix import SharinpixStore

API_VERSION = "v59.0"
KIND = "salesforce"


def attachment_path(ref: str) -> str:
    # Ids of Files' ContentVersion records start with 068; everything else is a classic Attachment.
    if ref.startswith("068"):
        return f"sobjects/ContentVersion/{ref}/VersionData"
    return f"sobjects/Attachment/{ref}/Body"


class SalesforceConnector:
    name = KIND

    def __init__(self, store: SharinpixStore, fetcher: Fetcher) -> None:
        self._store = store
        self._fetcher = fetcher

    async def fetch(self, organization_id: str, ref: str) -> bytes:
        config = await self._store.connector(organization_id, KIND)
        if not config:
            raise FetchError("Salesforce is not connected for this organisation (pixport connector salesforce)")
        instance = str(config["instance_url"]).rstrip("/")
        url = f"{instance}/services/data/{API_VERSION}/{attachment_path(urllib.parse.quote(ref, safe=''))}"
        token = config.get("access_token") or await self._refresh(organization_id, config)
        try:
            return (await self._fetcher.fetch(url, {"Authorization": f"Bearer {token}"})).data
        except FetchError as error:
            if error.status != 401:
                raise self._explain(error, ref) from None
        token = await self._refresh(organization_id, config)
        try:
            return (await self._fetcher.fetch(url, {"Authorization": f"Bearer {token}"})).data
        except FetchError as error:
            raise self._explain(error, ref) from None

    @staticmethod
    def _explain(error: FetchError, ref: str) -> FetchError:
        if error.status == 404:
            return FetchError(f"Salesforce has no attachment {ref} (HTTP 404)")
        if error.status in (401, 403):
            return FetchError(f"Salesforce refused access to attachment {ref} (HTTP {error.status})")
        return FetchError(f"Salesforce: {error.reason}", retryable=error.retryable, status=error.status)

    async def _refresh(self, organization_id: str, config: dict[str, Any]) -> str:
        body = urllib.parse.urlencode({
            "grant_type": "refresh_token", "client_id": config["client_id"],
            "client_secret": config["client_secret"], "refresh_token": config["refresh_token"],
        }).encode()
        token_url = f"{str(config['instance_url']).rstrip('/')}/services/oauth2/token"
        result = await self._fetcher.post_and_read(
            token_url, body, {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        )
        if result.status != 200:
            raise FetchError(f"Salesforce token refresh failed (HTTP {result.status}); reconnect the organisation",
                             retryable=result.status >= 500)
        try:
            token = json.loads(result.data)["access_token"]
        except (ValueError, KeyError, TypeError):
            raise FetchError("Salesforce token refresh answered without an access token") from None
        await self._store.update_connector(organization_id, KIND, {"access_token": token})
        return str(token)
