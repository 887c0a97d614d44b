"""The fault proxy does what each mode says, against a real HTTP server on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.faultproxy import FaultProxy


class Counter(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits = 0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        with Counter.lock:
            Counter.hits += 1
            n = Counter.hits
        body = (b'{"n": %d, "pad": "' % n) + b"x" * 4000 + b'"}'
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[int]:
    Counter.hits = 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Counter)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def post(url: str, timeout: float = 5.0) -> requests.Response:
    with requests.Session() as s:
        s.trust_env = False
        return s.post(url + "/x", json={"a": 1}, timeout=timeout)


def test_pass_forwards(upstream: int) -> None:
    with FaultProxy(upstream) as proxy:
        r = post(proxy.url)
        assert r.status_code == 201 and r.json()["n"] == 1


def test_reset_after_response_means_the_server_did_it(upstream: int) -> None:
    with FaultProxy(upstream, mode="reset_after_response") as proxy:
        with pytest.raises(requests.ConnectionError):
            post(proxy.url)
        assert Counter.hits == 1  # the server handled it; the client only saw a reset
        proxy.set_mode("pass")
        assert post(proxy.url).json()["n"] == 2


def test_cut_mid_body(upstream: int) -> None:
    with FaultProxy(upstream, mode="cut_mid_body") as proxy:
        with pytest.raises(requests.exceptions.RequestException):
            post(proxy.url).json()
        assert Counter.hits == 1


def test_blackhole_times_out_and_reaches_nobody(upstream: int) -> None:
    with FaultProxy(upstream, mode="blackhole", blackhole_s=3.0) as proxy:
        with pytest.raises(requests.exceptions.ReadTimeout):
            post(proxy.url, timeout=0.3)
        assert Counter.hits == 0


def test_delay_still_delivers(upstream: int) -> None:
    with FaultProxy(upstream, mode="delay", delay_s=0.05) as proxy:
        assert post(proxy.url).status_code == 201
        assert proxy.stats.faulted == {"delay": 1}


def test_probability_and_upstream_switch(upstream: int) -> None:
    with FaultProxy(upstream, mode="reset_after_response", probability=0.3, seed=1) as proxy:
        failed = 0
        for _ in range(60):
            try:
                post(proxy.url)
            except requests.ConnectionError:
                failed += 1
        assert Counter.hits == 60  # every request reached the server
        assert failed == proxy.stats.faulted["reset_after_response"]
        assert 5 <= failed <= 35
        proxy.upstream_port = 1  # nothing listens there: the client gets a reset, not a hang
        proxy.set_mode("pass")
        with pytest.raises(requests.ConnectionError):
            post(proxy.url)
        assert proxy.stats.upstream_refused == 1
