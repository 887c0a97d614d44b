"""HTTP transport of the Hall API client: sessions, TLS, timeouts, retries, logging.

Owns everything below the typed methods of :class:`api_client.HallClient`:

- one ``requests.Session`` per thread (``threading.local``): Session is not documented as
  thread-safe, and a desk calls from several worker threads at once;
- ``trust_env`` off by default so ``HTTPS_PROXY``/``REQUESTS_CA_BUNDLE`` in someone's
  environment cannot silently reroute or re-trust the connection; proxies and the CA bundle come
  from configuration; certificate verification is always on (there is deliberately no switch);
- a (connect, read) timeout on every request, and no redirects (an API that redirects is
  misconfigured, and following one could carry the bearer token elsewhere);
- the in-process retry loop: only for calls that are safe to repeat (GET/HEAD, or mutating calls
  carrying an Idempotency-Key), only for errors flagged ``retryable``, exponential backoff with
  full jitter, honouring ``Retry-After``;
- logging of method, path, status, request id and duration only: never query strings, headers,
  tokens, passwords or bodies.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import requests
import urllib3.exceptions

from . import errors

log = logging.getLogger("api_client")

API_PREFIX = "/api/v1"

#: A ``Retry-After`` longer than this is not waited out in-process: the caller (the outbox, the
#: live queue) schedules its own retry instead of a worker thread sleeping for minutes.
MAX_IN_PROCESS_RETRY_AFTER = 30.0


class Transport:
    """Sends requests to one Hall server; see the module docstring for the rules it keeps."""

    def __init__(
        self,
        base_url: str,
        *,
        ca_bundle: str | None,
        proxies: Mapping[str, str] | None,
        timeout: tuple[float, float],
        max_retries: int,
        trust_env: bool,
        user_agent: str,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"server URL must start with http:// or https://: {base_url!r} / "
                "服务器地址须以 http:// 或 https:// 开头"
            )
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        # verify is never False: a CA bundle path, or the system/certifi trust store.
        self.verify: str | bool = ca_bundle or True
        self.proxies: dict[str, str] = dict(proxies or {})
        self.timeout = timeout
        self.max_retries = max_retries
        self.trust_env = trust_env
        self.user_agent = user_agent
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._local = threading.local()
        self._sessions: weakref.WeakSet[requests.Session] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False

    # --- sessions -----------------------------------------------------------------------------

    def session(self) -> requests.Session:
        """This thread's Session, made on first use."""
        s: requests.Session | None = getattr(self._local, "session", None)
        if s is None:
            if self._closed:
                raise errors.ApiConnectionError(
                    message_en="The client has been closed",
                    message_zh="客户端已关闭",
                    code="client_closed",
                    retryable=False,
                )
            s = requests.Session()
            s.trust_env = self.trust_env
            s.verify = self.verify
            s.proxies = dict(self.proxies)
            s.headers["User-Agent"] = self.user_agent
            s.headers["Accept"] = "application/json"
            self._local.session = s
            with self._lock:
                self._sessions.add(s)
        return s

    def close(self) -> None:
        """Close every thread's session (pooled connections); later calls fail clearly."""
        self._closed = True
        with self._lock:
            sessions = list(self._sessions)
            self._sessions.clear()
        for s in sessions:
            s.close()
        self._local = threading.local()

    # --- requests -----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.base_url}{API_PREFIX}{path}"

    def send_once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        """One attempt. Returns a 2xx response; raises an :class:`errors.ApiError` otherwise."""
        what = f"{method} {path}"
        started = time.monotonic()
        try:
            resp = self.session().request(
                method,
                self.url(path),
                params=params,
                json=json_body,
                data=data,
                headers=dict(headers or {}),
                timeout=timeout or self.timeout,
                stream=stream,
                allow_redirects=False,
                # Per call as well as on the session: with trust_env on, requests would
                # otherwise let REQUESTS_CA_BUNDLE replace a configured bundle.
                verify=self.verify,
            )
        except requests.exceptions.InvalidJSONError:
            raise  # a body that cannot be encoded is a bug in the caller, not a network fault
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # The one place requests' errors are mapped; anything else is a bug and propagates.
            err = errors.from_transport_exception(exc, what=what)
            log.warning(
                "%s -> %s after %.0f ms", what, err.code, (time.monotonic() - started) * 1000
            )
            raise err from exc
        elapsed_ms = (time.monotonic() - started) * 1000
        rid = resp.headers.get("X-Request-ID", "-")
        if resp.status_code >= 400:
            if stream:
                # The error envelope is small; read it so from_response can parse it.
                try:
                    _ = resp.content
                except Exception as exc:  # noqa: BLE001
                    resp.close()
                    raise errors.from_transport_exception(exc, what=what) from exc
            err = errors.from_response(resp)
            resp.close()
            log.warning(
                "%s -> %d %s request_id=%s %.0f ms",
                what,
                resp.status_code,
                err.code,
                rid,
                elapsed_ms,
            )
            raise err
        if resp.status_code >= 300 or resp.status_code < 200:
            resp.close()
            log.warning("%s -> unexpected %d request_id=%s", what, resp.status_code, rid)
            raise errors.invalid_response(
                f"{what} answered with HTTP {resp.status_code}",
                request_id=None if rid == "-" else rid,
            )
        log.debug("%s -> %d request_id=%s %.0f ms", what, resp.status_code, rid, elapsed_ms)
        return resp

    def backoff_delay(self, attempt: int, err: errors.ApiError) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None not to retry now."""
        retry_after = getattr(err, "retry_after", None)
        if retry_after is not None:
            if retry_after > MAX_IN_PROCESS_RETRY_AFTER:
                return None
            return float(retry_after)
        # Full jitter (AWS architecture blog): spreads the retries of many desks after an outage.
        cap = min(self.backoff_max, self.backoff_base * (2**attempt))
        return random.uniform(0.0, cap)

    def send(
        self,
        method: str,
        path: str,
        *,
        repeatable: bool,
        max_retries: int | None = None,
        **kw: Any,
    ) -> requests.Response:
        """:meth:`send_once` with the retry loop; ``repeatable`` says the call is safe to repeat."""
        retries = self.max_retries if max_retries is None else max_retries
        attempt = 0
        while True:
            try:
                return self.send_once(method, path, **kw)
            except errors.ApiError as err:
                if not (repeatable and err.retryable) or attempt >= retries:
                    raise
                delay = self.backoff_delay(attempt, err)
                if delay is None:
                    raise
                attempt += 1
                log.info(
                    "%s %s: retry %d/%d in %.2f s after %s",
                    method,
                    path,
                    attempt,
                    retries,
                    delay,
                    err.code,
                )
                self._sleep(delay)
