"""Server-Sent Events: the parser on awkward byte streams, and EventStream against a real
streaming responder on 127.0.0.1 (drops mid-stream, reconnects with Last-Event-ID, nonsense
lines and bad JSON skipped, close() from another thread, non-retryable answers)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from api_client import HallClient, ServerEvent, errors
from api_client.sse import MAX_LINE_CHARS, SSEFrame, SSEParser

# --- the parser (pure logic) ------------------------------------------------------------------


def feed_all(parser: SSEParser, chunks: list[bytes]) -> list[SSEFrame]:
    out: list[SSEFrame] = []
    for c in chunks:
        out += parser.feed(c)
    return out


STREAM = (
    "\ufeff: hello comment\r\n"
    "retry: 2500\r\n"
    "id: 7\r\n"
    "event: ticket.issued\r\n"
    'data: {"a":\r\n'
    "data:  1}\r\n"
    "\r\n"
    "this line is nonsense\n"
    "data\n"
    "\n"
    "id: 8\r"
    "data: 中文\r"
    "\r"
    "id: 9\n"
    "\n"
    "unknown: field\n"
    "data: last\n"
    "\n"
).encode()


def expected_frames() -> list[SSEFrame]:
    return [
        SSEFrame("7", "ticket.issued", '{"a":\n 1}'),
        SSEFrame("7", "message", ""),  # a bare "data" line is a field with an empty value
        SSEFrame("8", "message", "中文"),
        SSEFrame("9", "message", "last"),
    ]


def test_parser_whole_stream() -> None:
    p = SSEParser()
    assert p.feed(STREAM) == expected_frames()
    assert p.retry_ms == 2500 and p.last_event_id == "9"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 13])
def test_parser_any_chunking_gives_the_same_frames(size: int) -> None:
    # Chunk boundaries fall inside CRLF pairs and inside multi-byte UTF-8 characters.
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert feed_all(SSEParser(), chunks) == expected_frames()


def test_parser_cr_then_lf_in_the_next_read_is_one_line_end() -> None:
    p = SSEParser()
    assert p.feed(b"data: x\r") == []
    assert p.feed(b"\n\r") == [SSEFrame("", "message", "x")]
    assert p.feed(b"\ndata: y\n\n") == [SSEFrame("", "message", "y")]


def test_parser_survives_bad_bytes_and_overlong_lines(caplog) -> None:
    p = SSEParser()
    frames = p.feed(b"data: \xff\xfe ok\n\n")
    assert frames == [SSEFrame("", "message", "\ufffd\ufffd ok")]
    caplog.set_level(logging.WARNING)
    frames = p.feed(b"data: " + b"x" * (MAX_LINE_CHARS + 10))
    frames += p.feed(b"still the same line\n\ndata: after\n\n")
    assert frames == [SSEFrame("", "message", "after")]
    assert "over-long" in caplog.text


def test_parser_id_with_nul_is_ignored_and_empty_id_resets() -> None:
    p = SSEParser()
    p.feed(b"id: 5\n\n")
    p.feed(b"id: 6\x00x\n\n")
    assert p.last_event_id == "5"
    p.feed(b"id\n\n")
    assert p.last_event_id == ""


# --- a real streaming responder ---------------------------------------------------------------


@dataclass
class Conn:
    """What one connection does: a list of steps (bytes to send, a float to sleep, "drop" to
    cut the connection, "hold" to stay silent until the test ends), or an error reply."""

    steps: list[bytes | float | str] = field(default_factory=list)
    status: int = 200
    content_type: str = "text/event-stream"
    chunked: bool = True


class StreamServer:
    def __init__(self, conns: list[Conn]) -> None:
        self.conns = conns
        self.requests: list[dict[str, str]] = []
        self.release = threading.Event()
        self.connected = threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, data: bytes, chunked: bool) -> None:
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    self.wfile.write(data)
                self.wfile.flush()

            def do_GET(self) -> None:
                outer.requests.append({"path": self.path, **dict(self.headers.items())})
                conn = outer.conns.pop(0) if outer.conns else Conn(["hold"])
                if conn.status != 200:
                    body = json.dumps(
                        {
                            "error": {
                                "code": f"c{conn.status}",
                                "message_zh": "错",
                                "message_en": "bad",
                            }
                        }
                    ).encode()
                    self.send_response(conn.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", conn.content_type)
                self.send_header("Cache-Control", "no-cache")
                if conn.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.flush()
                outer.connected.set()
                self.close_connection = True
                try:
                    for step in conn.steps:
                        if isinstance(step, bytes):
                            self._send(step, conn.chunked)
                        elif isinstance(step, float):
                            time.sleep(step)
                        elif step == "drop":
                            self.connection.shutdown(socket.SHUT_RDWR)
                            return
                        elif step == "hold":
                            outer.release.wait(60)
                            return
                    if conn.chunked:
                        self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    return

        class S(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.httpd = S(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stream_server() -> Iterator[Callable[[list[Conn]], StreamServer]]:
    made: list[StreamServer] = []

    def make(conns: list[Conn]) -> StreamServer:
        s = StreamServer(conns)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


TICKET = {
    "id": 31, "number": "A031", "category": "A", "matter_code": None, "priority": "normal",
    "appointment_at": None, "state": "waiting", "window_no": None, "target_window_no": None,
    "issued_at": "2026-11-25T09:00:00Z", "queued_at": "2026-11-25T09:00:00Z", "called_at": None,
    "started_at": None, "finished_at": None, "recalls": 0, "case_id": None,
}  # fmt: skip


def ev(eid: int, etype: str, ticket: dict[str, Any] | None = None) -> bytes:
    data = {"type": etype, "at": "2026-11-25T09:00:01Z", "ticket": ticket or {**TICKET, "id": eid}}
    return f"id: {eid}\nevent: {etype}\ndata: {json.dumps(data)}\n\n".encode()


def collect(stream: Any, n: int) -> list[ServerEvent]:
    out: list[ServerEvent] = []
    for e in stream:
        out.append(e)
        if len(out) == n:
            break
    return out


def test_reconnects_with_last_event_id_and_skips_garbage(stream_server, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="api_client.sse")
    srv = stream_server(
        [
            Conn([b": ping\n\n", ev(1, "ticket.issued"), ev(2, "ticket.called"), "drop"]),
            Conn(
                [
                    b"garbage garbage\n\x00\x01nonsense: \n",
                    b"id: 3\nevent: ticket.issued\ndata: {not json\n\n",
                    b'id: 4\nevent: ticket.issued\ndata: {"ticket": {"id": "x"}}\n\n',
                    ev(5, "ticket.issued"),
                    b'id: 6\nevent: window.paused\ndata: {"type": "window.paused", "window": '
                    b'{"no": 3, "name_zh": "3\xe5\x8f\xb7", "categories": ["A"], "state": "paused"}}\n\n',
                    "hold",
                ]
            ),
        ]
    )
    states: list[str] = []
    with HallClient(srv.url) as c:
        stream = c.events(window_no=3)
        stream.on_state = states.append
        stream.initial_delay = 0.05
        got = collect(stream, 4)
        stream.close()
    assert [e.id for e in got] == ["1", "2", "5", "6"]
    assert got[0].type == "ticket.issued" and got[0].ticket is not None
    assert got[0].ticket.number == "A031" and got[0].at is not None
    assert got[3].type == "window.paused" and got[3].window is not None
    assert got[3].window.state == "paused" and got[3].ticket is None
    assert stream.last_event_id == "6"
    first, second = srv.requests
    assert first["path"] == "/api/v1/events?window_no=3"
    assert "Last-Event-ID" not in first and first["Accept"] == "text/event-stream"
    assert second["Last-Event-ID"] == "2"
    assert states[:5] == ["connecting", "connected", "disconnected", "connecting", "connected"]
    assert states[-1] == "disconnected"
    assert "not JSON" in caplog.text and "Ticket" in caplog.text


def test_close_from_another_thread_ends_a_blocked_iteration(stream_server) -> None:
    srv = stream_server([Conn([ev(1, "ticket.issued"), "hold"])])
    got: list[ServerEvent] = []
    with HallClient(srv.url) as c:
        stream = c.events(last_event_id="0")
        t = threading.Thread(target=lambda: got.extend(stream), daemon=True)
        t.start()
        # wait for the one event, then the reader is blocked in a read with 45 s timeout
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [e.id for e in got] == ["1"]
        stream.close()
        t.join(10)  # a hang guard only; without close() the read would block for 45 s
        assert not t.is_alive()
    assert srv.requests[0]["Last-Event-ID"] == "0"
    assert len(srv.requests) == 1  # closing does not reconnect


def test_close_while_waiting_to_reconnect(stream_server) -> None:
    srv = stream_server([Conn(status=503)] * 3)
    states: list[str] = []
    with HallClient(srv.url) as c:
        stream = c.events()
        stream.initial_delay = 30.0  # would wait long without close()
        stream.on_state = states.append
        t = threading.Thread(target=lambda: list(stream), daemon=True)
        t.start()
        deadline = time.monotonic() + 10
        while "disconnected" not in states and time.monotonic() < deadline:
            time.sleep(0.01)
        stream.close()
        t.join(10)
        assert not t.is_alive()
    assert len(srv.requests) == 1


def test_server_errors_are_retried_then_the_stream_flows(stream_server) -> None:
    srv = stream_server(
        [Conn(status=503), Conn(status=500), Conn([ev(9, "ticket.issued"), "hold"])]
    )
    with HallClient(srv.url) as c:
        stream = c.events()
        stream.initial_delay = 0.02
        got = collect(stream, 1)
        stream.close()
    assert got[0].id == "9" and len(srv.requests) == 3


def test_close_delimited_stream_without_chunking(stream_server) -> None:
    srv = stream_server(
        [Conn([ev(1, "ticket.issued"), 0.05, ev(2, "ticket.issued"), "hold"], chunked=False)]
    )
    with HallClient(srv.url) as c:
        stream = c.events()
        got = collect(stream, 2)
        stream.close()
    assert [e.id for e in got] == ["1", "2"]


@pytest.mark.parametrize(
    ("conn", "exc"),
    [
        (Conn(status=403), errors.PermissionDeniedError),
        (Conn(status=404), errors.NotFoundError),
        (Conn([b"{}"], content_type="application/json"), errors.ApiResponseValidationError),
    ],
)
def test_non_retryable_answers_end_the_iteration(stream_server, conn: Conn, exc: type) -> None:
    srv = stream_server([conn, Conn([ev(1, "ticket.issued")])])
    states: list[str] = []
    with HallClient(srv.url) as c:
        stream = c.events()
        stream.on_state = states.append
        with pytest.raises(exc):
            list(stream)
    assert len(srv.requests) == 1 and states[-1] == "disconnected"


def test_consumer_break_closes_the_connection(stream_server) -> None:
    srv = stream_server([Conn([ev(1, "ticket.issued"), ev(2, "ticket.issued"), "hold"])])
    with HallClient(srv.url) as c:
        stream = c.events()
        it = iter(stream)
        assert next(it).id == "1"
        it.close()  # GeneratorExit at the yield runs the cleanup
        assert stream.state == "disconnected"


def test_a_silent_stream_is_taken_as_dead_and_reopened(stream_server) -> None:
    # No ping within the read timeout: a dead link the OS has not noticed. Reconnect, resume.
    srv = stream_server(
        [Conn([ev(1, "ticket.issued"), "hold"]), Conn([ev(2, "ticket.issued"), "hold"])]
    )
    with HallClient(srv.url) as c:
        stream = c.events(read_timeout=0.3)
        stream.initial_delay = 0.02
        got = collect(stream, 2)
        stream.close()
    assert [e.id for e in got] == ["1", "2"]
    assert srv.requests[1]["Last-Event-ID"] == "1"


def test_pings_keep_a_quiet_stream_open(stream_server) -> None:
    pings: list[bytes | float | str] = [b": ping\n\n", 0.1] * 8
    srv = stream_server([Conn([*pings, ev(1, "ticket.issued"), "hold"])])
    with HallClient(srv.url) as c:
        stream = c.events(
            read_timeout=0.5
        )  # shorter than the whole quiet spell, longer than a ping gap
        got = collect(stream, 1)
        stream.close()
    assert got[0].id == "1" and len(srv.requests) == 1
