"""Guarded HTTP egress: fetch URLs chosen by strangers without reaching anything private."""

from __future__ import annotations

from pixport.fetch.client import Fetcher, FetchResult, PostResult
from pixport.fetch.errors import FetchError
from pixport.fetch.limits import FetchLimits
from pixport.fetch.policy import ALLOW_CIDRS_ENV, EgressPolicy
from pixport.fetch.urls import validate_url

__all__ = [
    "ALLOW_CIDRS_ENV",
    "EgressPolicy",
    "FetchError",
    "FetchLimits",
    "FetchResult",
    "Fetcher",
    "PostResult",
    "validate_url",
]
