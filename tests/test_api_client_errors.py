"""HallClient against small real HTTP(S) responders on 127.0.0.1: error mapping, retries, TLS.

No hall server needed: each test starts a ``ScriptedServer`` (``http.server`` in a thread) that
answers from a script: 500 then 200, 429 with Retry-After, garbage JSON, a cut-off body, a slow
answer, and TLS servers whose certificates are refused (unknown CA, wrong host, expired).
``ScriptedServer`` is also used by tests/test_api_client_sse.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme

from api_client import HallClient, errors

HEALTH = {"status": "ok", "version": "0.1.0", "time": "2026-11-25T09:30:00Z", "database": "sqlite"}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON, bytes -> as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate_to: int | None = None  # send only this many body bytes, then close
    drop: bool = False  # close the connection without answering


def envelope(
    code: str, status_msg: str = "", details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message_zh": f"中文：{code}",
            "message_en": f"English: {code} {status_msg}".strip(),
            "request_id": "rid-from-body",
            "details": details or {},
        }
    }


Handler = Callable[[Seen], Reply]


class ScriptedServer:
    """A real HTTP/1.1 server on loopback answering from a list of replies or a function."""

    def __init__(self, script: list[Reply] | Handler, ssl_context: ssl.SSLContext | None = None):
        self.seen: list[Seen] = []
        self.connections = 0
        self._script = script
        self._lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # one write per answer: no Nagle/delayed-ACK stalls

            def log_message(self, *a: Any) -> None:
                pass

            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                seen = Seen(self.command, self.path, {k: v for k, v in self.headers.items()}, body)
                reply = outer._next(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(reply.body, bytes):
                    payload = reply.body
                    ctype = "application/octet-stream"
                elif reply.body is None:
                    payload = b""
                    ctype = "application/json"
                else:
                    payload = json.dumps(reply.body).encode()
                    ctype = "application/json"
                self.send_response(reply.status)
                hdrs = {"Content-Type": ctype, "X-Request-ID": f"rid-{len(outer.seen)}"}
                hdrs.update(reply.headers)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                if reply.truncate_to is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    if reply.truncate_to is not None:
                        self.wfile.write(payload[: reply.truncate_to])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_HEAD = do_DELETE = _any

        class S(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # refused TLS handshakes and dropped clients are what these tests do

            def get_request(self) -> tuple[socket.socket, Any]:
                sock, addr = super().get_request()
                with outer._lock:
                    outer.connections += 1
                return sock, addr

        self.httpd = S(("127.0.0.1", 0), H)
        scheme = "http"
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(
                self.httpd.socket, server_side=True, do_handshake_on_connect=False
            )
            scheme = "https"
        self.port = self.httpd.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            if callable(self._script):
                script = self._script
            else:
                if not self._script:
                    return Reply(599, envelope("script_exhausted"))
                return self._script.pop(0)
        return script(seen)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def make(script: list[Reply] | Handler, **kw: Any) -> ScriptedServer:
        s = ScriptedServer(script, **kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def client_for(server: ScriptedServer, **kw: Any) -> HallClient:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("timeout", (2.0, 5.0))
    return HallClient(server.url, **kw)


# --- retries and status mapping ---------------------------------------------------------------


def test_500_then_200_is_retried_and_succeeds(scripted) -> None:
    srv = scripted([Reply(500, envelope("internal")), Reply(200, HEALTH)])
    with client_for(srv) as c:
        h = c.health()
    assert h.status == "ok" and h.time == dt.datetime(2026, 11, 25, 9, 30, tzinfo=dt.UTC)
    assert [s.path for s in srv.seen] == ["/api/v1/health", "/api/v1/health"]


def test_persistent_500_gives_server_error_with_envelope(scripted) -> None:
    srv = scripted([Reply(503, envelope("db_down", details={"x": 1}))] * 5)
    with client_for(srv, max_retries=2) as c, pytest.raises(errors.ServerError) as ei:
        c.health()
    e = ei.value
    assert len(srv.seen) == 3  # 1 + max_retries
    assert (e.status, e.code, e.retryable) == (503, "db_down", True)
    assert e.message_zh == "中文：db_down" and e.message_en.startswith("English: db_down")
    assert e.details == {"x": 1}
    assert e.request_id == "rid-3"  # the X-Request-ID header of the last (third) answer
    assert isinstance(e, errors.ApiStatusError) and isinstance(e, errors.ApiError)


def test_5xx_without_envelope_still_has_a_bilingual_message(scripted) -> None:
    srv = scripted([Reply(502, b"<html>Bad gateway</html>")])
    with client_for(srv, max_retries=0) as c, pytest.raises(errors.ServerError) as ei:
        c.health()
    assert ei.value.code == "http_502"
    assert "502" in ei.value.message_en and "502" in ei.value.message_zh
    assert "服务器" in ei.value.message("zh")


def test_429_retry_after_is_honoured(scripted, monkeypatch) -> None:
    srv = scripted(
        [Reply(429, envelope("rate_limited"), headers={"Retry-After": "2"}), Reply(200, HEALTH)]
    )
    waited: list[float] = []
    with client_for(srv) as c:
        monkeypatch.setattr(c._transport, "_sleep", waited.append)
        assert c.health().status == "ok"
    assert waited == [2.0]
    assert len(srv.seen) == 2


def test_long_retry_after_is_left_to_the_caller(scripted, monkeypatch) -> None:
    srv = scripted([Reply(429, envelope("rate_limited"), headers={"Retry-After": "120"})] * 3)
    waited: list[float] = []
    with client_for(srv) as c, pytest.raises(errors.RateLimitError) as ei:
        monkeypatch.setattr(c._transport, "_sleep", waited.append)
        c.health()
    assert ei.value.retry_after == 120.0 and ei.value.retryable
    assert waited == [] and len(srv.seen) == 1


def test_backoff_is_exponential_with_full_jitter(scripted, monkeypatch) -> None:
    srv = scripted([Reply(500, envelope("boom"))] * 4)
    waited: list[float] = []
    with client_for(srv, max_retries=3, backoff_base=1.0, backoff_max=3.0) as c:
        monkeypatch.setattr(c._transport, "_sleep", waited.append)
        with pytest.raises(errors.ServerError):
            c.health()
    assert len(waited) == 3 and len(srv.seen) == 4
    for delay, cap in zip(waited, [1.0, 2.0, 3.0], strict=True):
        assert 0.0 <= delay <= cap


def test_409_conflict_is_not_retried_and_keeps_code_and_details(scripted) -> None:
    srv = scripted([Reply(409, envelope("ticket_taken", details={"state": "called"}))] * 3)
    with client_for(srv) as c, pytest.raises(errors.ConflictError) as ei:
        c.call_ticket(7, 3)
    assert (ei.value.code, ei.value.details, ei.value.retryable) == (
        "ticket_taken",
        {"state": "called"},
        False,
    )
    assert len(srv.seen) == 1


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (413, errors.PayloadTooLargeError),
        (422, errors.UnprocessableEntityError),
        (460, errors.ChecksumMismatchError),
        (418, errors.ApiStatusError),
    ],
)
def test_status_classes(scripted, status: int, cls: type[errors.ApiStatusError]) -> None:
    srv = scripted([Reply(status, envelope(f"code_{status}"))] * 3)
    with client_for(srv) as c, pytest.raises(cls) as ei:
        c.health()
    assert ei.value.status == status and ei.value.code == f"code_{status}"
    assert not ei.value.retryable and len(srv.seen) == 1


def test_idempotency_in_progress_is_retried_with_the_same_key(scripted) -> None:
    ticket = {
        "id": 5, "number": "A005", "category": "A", "matter_code": None, "priority": "normal",
        "appointment_at": None, "state": "called", "window_no": 3, "target_window_no": None,
        "issued_at": "2026-11-25T09:00:00Z", "queued_at": "2026-11-25T09:00:00Z",
        "called_at": "2026-11-25T09:10:00.123456+00:00", "started_at": None,
        "finished_at": None, "recalls": 1, "case_id": None,
    }  # fmt: skip
    srv = scripted([Reply(409, envelope("idempotency_in_progress")), Reply(200, ticket)])
    with client_for(srv) as c:
        t = c.recall(5)
    assert t.recalls == 1 and t.called_at is not None and t.called_at.tzinfo is dt.UTC
    keys = [s.headers.get("Idempotency-Key") for s in srv.seen]
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]


def test_idempotency_key_sent_on_mutations_only_and_caller_key_used(scripted) -> None:
    srv = scripted(
        lambda s: Reply(200, {"ticket": None}) if s.method == "POST" else Reply(200, HEALTH)
    )
    with client_for(srv) as c:
        c.health()
        assert c.call_next(3) is None
        assert c.call_next(3) is None
        c.call_next(3, idempotency_key="outbox-row-42")
    get, p1, p2, p3 = srv.seen
    assert "Idempotency-Key" not in get.headers
    assert p1.headers["Idempotency-Key"] != p2.headers["Idempotency-Key"]
    assert p3.headers["Idempotency-Key"] == "outbox-row-42"
    assert get.headers["User-Agent"].startswith("counter-app/")


# --- bad answers ------------------------------------------------------------------------------


def test_garbage_json_is_a_validation_error_not_retried(scripted) -> None:
    srv = scripted([Reply(200, b"{not json"), Reply(200, HEALTH)])
    with client_for(srv) as c, pytest.raises(errors.ApiResponseValidationError) as ei:
        c.health()
    assert ei.value.code == "invalid_response" and not ei.value.retryable
    assert "JSON" in ei.value.message_en and "接口约定" in ei.value.message_zh
    assert len(srv.seen) == 1


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"version": "1", "time": "2026-11-25T09:30:00Z"}, "Health.status is missing"),
        ({**HEALTH, "status": 3}, "Health.status should be a string"),
        ({**HEALTH, "time": "yesterday"}, "Health.time is not an ISO 8601"),
        ({**HEALTH, "time": "2026-11-25T09:30:00"}, "Health.time has no time zone"),
        ([1, 2], "Health is not an object"),
        (None, "not JSON"),
    ],
)
def test_body_not_matching_the_model(scripted, body: Any, needle: str) -> None:
    srv = scripted([Reply(200, body)])
    with client_for(srv) as c, pytest.raises(errors.ApiResponseValidationError) as ei:
        c.health()
    assert needle in ei.value.message_en
    assert ei.value.request_id == "rid-1"


def test_truncated_body_is_a_retryable_connection_error(scripted) -> None:
    full = json.dumps(HEALTH).encode()
    srv = scripted([Reply(200, full, truncate_to=10)] * 3)
    with client_for(srv, max_retries=1) as c, pytest.raises(errors.ApiConnectionError) as ei:
        c.health()
    assert ei.value.retryable and ei.value.code == "connection_broken"
    assert len(srv.seen) == 2


def test_truncated_then_whole_succeeds(scripted) -> None:
    full = json.dumps(HEALTH).encode()
    srv = scripted([Reply(200, full, truncate_to=10), Reply(200, HEALTH)])
    with client_for(srv) as c:
        assert c.health().version == "0.1.0"


def test_dropped_connection_is_a_connection_error(scripted) -> None:
    srv = scripted([Reply(drop=True)] * 3)
    with client_for(srv, max_retries=0) as c, pytest.raises(errors.ApiConnectionError) as ei:
        c.health()
    assert ei.value.retryable


def test_slow_answer_times_out(scripted) -> None:
    srv = scripted([Reply(200, HEALTH, delay=1.5)] * 2)
    with (
        client_for(srv, timeout=(2.0, 0.3), max_retries=0) as c,
        pytest.raises(errors.ApiTimeoutError) as ei,
    ):
        c.health()
    assert ei.value.retryable and ei.value.code == "timeout"
    assert "超时" in ei.value.message_zh


def test_connection_refused_on_a_closed_port() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with HallClient(f"http://127.0.0.1:{port}", max_retries=1, backoff_base=0.01) as c:
        with pytest.raises(errors.ApiConnectionError) as ei:
            c.health()
    assert ei.value.retryable and ei.value.code == "connection_error"
    assert "无法连接" in ei.value.message_zh


def test_environment_proxy_is_ignored_by_default(scripted, monkeypatch) -> None:
    # A proxy variable pointing at a dead port: with trust_env off, the client must not use it.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    srv = scripted([Reply(200, HEALTH)])
    with client_for(srv, max_retries=0) as c:
        assert c.health().status == "ok"


def test_configured_proxy_is_used(scripted) -> None:
    # The scripted server plays the proxy: a proxied request line carries the absolute URL.
    proxy = scripted([Reply(200, HEALTH)])
    with HallClient("http://hall.invalid:8123", proxies={"http": proxy.url}) as c:
        assert c.health().status == "ok"
    assert proxy.seen[0].path == "http://hall.invalid:8123/api/v1/health"


def test_bad_base_url_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="http"):
        HallClient("hall.local:8123")


def test_closed_client_refuses_calls(scripted) -> None:
    srv = scripted([Reply(200, HEALTH)])
    c = client_for(srv)
    c.close()
    with pytest.raises(errors.ApiConnectionError) as ei:
        c.health()
    assert ei.value.code == "client_closed"


# --- TLS: verification always on, failures never retried ---------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _tls_server(scripted, cert: trustme.LeafCert) -> ScriptedServer:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return scripted([Reply(200, HEALTH)] * 5, ssl_context=ctx)


def test_tls_with_the_configured_ca_works(scripted, ca, tmp_path) -> None:
    srv = _tls_server(scripted, ca.issue_cert("127.0.0.1"))
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with HallClient(srv.url, ca_bundle=str(bundle)) as c:
        assert c.health().status == "ok"


def _refused(scripted, cert: trustme.LeafCert, bundle: str | None) -> errors.ApiTLSError:
    srv = _tls_server(scripted, cert)
    with HallClient(srv.url, ca_bundle=bundle, max_retries=3, backoff_base=0.01) as c:
        with pytest.raises(errors.ApiTLSError) as ei:
            c.health()
    err = ei.value
    assert not err.retryable and err.code == "tls_error"
    assert "证书" in err.message_zh
    # Never retried: exactly one connection reached the server, and no request got through.
    deadline = time.monotonic() + 5
    while srv.connections < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.connections == 1 and srv.seen == []
    return err


def test_tls_unknown_ca_refused_once(scripted, ca) -> None:
    # No bundle: the system store does not know our test CA.
    _refused(scripted, ca.issue_cert("127.0.0.1"), None)


def test_tls_wrong_host_name_refused_once(scripted, ca, tmp_path) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    _refused(scripted, ca.issue_cert("hall.example.org"), str(bundle))


def test_tls_expired_certificate_refused_once(scripted, ca, tmp_path) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    cert = ca.issue_cert("127.0.0.1", not_before=past - dt.timedelta(days=60), not_after=past)
    _refused(scripted, cert, str(bundle))


def test_tls_cannot_be_switched_off() -> None:
    import inspect

    params = inspect.signature(HallClient).parameters
    assert not {"verify", "insecure", "verify_tls"} & set(params)
    c = HallClient("https://127.0.0.1:1")
    assert c._transport.session().verify is True
    c.close()


# --- tokens -----------------------------------------------------------------------------------

STAFF = {"staff_no": "1001", "name_zh": "张三", "name_en": "Zhang San", "role": "staff",
         "photo_url": None, "disabled": False}  # fmt: skip


def login_body(n: int) -> dict[str, Any]:
    return {"access_token": f"ACCESS-{n}-secret", "refresh_token": f"REFRESH-{n}-secret",
            "token_type": "bearer", "expires_in": 900, "staff": STAFF, "window": None}  # fmt: skip


class TokenServer:
    """Issues ACCESS-n/REFRESH-n; ``expire()`` kills the access token only; counts refreshes."""

    def __init__(self) -> None:
        self.n = 0
        self.access_valid = 0
        self.refreshes = 0
        self.lock = threading.Lock()

    def expire(self) -> None:
        with self.lock:
            self.access_valid = -1

    def __call__(self, s: Seen) -> Reply:
        with self.lock:
            if s.path == "/api/v1/auth/login":
                self.n += 1
                self.access_valid = self.n
                return Reply(200, login_body(self.n))
            if s.path == "/api/v1/auth/refresh":
                if json.loads(s.body)["refresh_token"] != f"REFRESH-{self.n}-secret":
                    return Reply(401, envelope("unauthorized"))
                self.refreshes += 1
                self.n += 1
                self.access_valid = self.n
                return Reply(200, login_body(self.n))
            if s.headers.get("Authorization") != f"Bearer ACCESS-{self.access_valid}-secret":
                return Reply(401, envelope("token_expired"))
            return Reply(200, {"staff": STAFF, "window": None})


def test_token_expired_refreshes_once_and_repeats(scripted, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = TokenServer()
    srv = scripted(tokens)
    with client_for(srv, device_id="dev-1", device_secret="DEVSECRET") as c:
        res = c.login("1001", "PASSWORD-canary", 3)
        assert "ACCESS" not in repr(res) and res.staff.name_zh == "张三"
        tokens.expire()
        me = c.me()
        assert me.staff.staff_no == "1001"
    assert tokens.refreshes == 1
    paths = [s.path for s in srv.seen]
    assert paths == ["/api/v1/auth/login", "/api/v1/me", "/api/v1/auth/refresh", "/api/v1/me"]
    assert srv.seen[0].headers["X-Device-Id"] == "dev-1"
    assert "X-Device-Secret" not in srv.seen[1].headers
    text = caplog.text
    for canary in ("PASSWORD-canary", "ACCESS-", "REFRESH-", "DEVSECRET"):
        assert canary not in text
    assert "/me" in text  # the calls are logged, just without secrets


def test_concurrent_expiry_refreshes_only_once(scripted) -> None:
    tokens = TokenServer()
    srv = scripted(tokens)
    with client_for(srv) as c:
        c.login("1001", "pw")
        tokens.expire()
        barrier = threading.Barrier(6)
        results: list[Any] = []

        def work() -> None:
            barrier.wait()
            try:
                results.append(c.me().staff.staff_no)
            except Exception as exc:  # noqa: BLE001
                results.append(exc)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == ["1001"] * 6
    assert tokens.refreshes == 1


def test_failed_refresh_signs_out(scripted) -> None:
    tokens = TokenServer()
    srv = scripted(tokens)
    with client_for(srv) as c:
        c.login("1001", "pw")
        tokens.expire()
        tokens.n += 5  # the refresh token is unknown too
        with pytest.raises(errors.AuthenticationError) as ei:
            c.me()
        assert ei.value.code == "unauthorized"
        assert not c.signed_in


def test_too_many_login_attempts_not_retried(scripted) -> None:
    srv = scripted([Reply(429, envelope("too_many_attempts"), headers={"Retry-After": "1"})] * 3)
    with client_for(srv) as c, pytest.raises(errors.RateLimitError) as ei:
        c.login("1001", "wrong")
    assert ei.value.code == "too_many_attempts" and not ei.value.retryable
    assert len(srv.seen) == 1


# --- uploads ----------------------------------------------------------------------------------


def test_upload_chunk_headers_and_offset(scripted) -> None:
    srv = scripted(
        [
            Reply(204, None, headers={"Upload-Offset": "5"}),
            Reply(409, envelope("offset_mismatch", details={"offset": 5})),
            Reply(200, None, headers={"Upload-Offset": "5", "Upload-Length": "10"}),
            Reply(204, None, headers={}),
        ]
    )
    with client_for(srv) as c:
        assert c.upload_chunk("u1", 0, b"hello") == 5
        with pytest.raises(errors.ConflictError) as ei:
            c.upload_chunk("u1", 0, b"hello")
        assert ei.value.code == "offset_mismatch" and ei.value.details["offset"] == 5
        assert c.upload_offset("u1") == 5
        with pytest.raises(errors.ApiResponseValidationError):
            c.upload_chunk("u1", 5, b"world")
    p = srv.seen[0]
    assert p.method == "PATCH" and p.path == "/api/v1/uploads/u1" and p.body == b"hello"
    assert p.headers["Content-Type"] == "application/offset+octet-stream"
    assert p.headers["Upload-Offset"] == "0"
    digest = base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
    assert p.headers["Upload-Checksum"] == f"sha256 {digest}"
    assert srv.seen[2].method == "HEAD"
