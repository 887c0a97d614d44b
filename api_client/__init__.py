"""Typed client of the Hall API (docs/hall-api.md): the only way the desk talks to the server.

``from api_client import HallClient, errors, models``. Blocking and thread-safe; built on
requests (one Session per thread, TLS verification always on, timeouts on every call, retries
only where safe). Every failure is an :class:`api_client.errors.ApiError` with zh and en
messages; no requests exception and no ``KeyError`` from a bad body gets out. Live events come
from :meth:`HallClient.events` as a reconnecting :class:`EventStream`. No GUI imports here.
"""

from __future__ import annotations

from . import errors, models
from .client import USER_AGENT, HallClient
from .errors import ApiError
from .models import ServerEvent
from .sse import EventStream, SSEParser

__all__ = [
    "USER_AGENT",
    "ApiError",
    "EventStream",
    "HallClient",
    "SSEParser",
    "ServerEvent",
    "errors",
    "models",
]
