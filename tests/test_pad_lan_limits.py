"""Limits of the desk's LAN pad server: a bounded number of connections and of waiting
long-polls (extra ones get 503 at once), and only the paired pad's signed heartbeat makes the
link "connected" and sees the real screen; any other browser on the LAN sees only the idle card,
never the case number or the rating request."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from api_client import HallClient
from counter_app.events import PadStateChanged
from counter_app.pad.base import ClerkCard, RatingRequest
from counter_app.pad.lan import LanPadTransport
from counter_app.pad.signing import b64u, heartbeat_message, verify
from tests.pad_helpers import SoftPad, make_desk, pair, serve_one_case, wait_for
from tests.support.server_fixtures import DEMO_PASSWORD, RunningServer, signed_in

CARD = ClerkCard(staff_no="1001", name_zh="张三", name_en="Zhang San", window_no=1,
                 window_name_zh="1 号窗口", window_name_en="Window 1", photo_png=None)
_last_t = [0]


def proof(pad: SoftPad, pad_time: int | None = None, signer: SoftPad | None = None) -> str:
    """The query-string part the pad page adds to each poll."""
    if pad_time is None:
        pad_time = max(int(time.time() * 1000), _last_t[0] + 1)
        _last_t[0] = pad_time
    sig = b64u((signer or pad).key.sign(heartbeat_message(pad.pad_id, pad_time)))
    return f"&pad_id={pad.pad_id}&t={pad_time}&sig={sig}"


def verifier(pad: SoftPad) -> Any:
    def check(pad_id: str, pad_time: int, sig: str) -> bool:
        return pad_id == pad.pad_id and verify(pad.public_key, heartbeat_message(pad_id, pad_time), sig)

    return check


def request(case_no: str = "A0427") -> RatingRequest:
    return RatingRequest(case_id=427, case_no=case_no, window_no=1, matter_name_zh="",
                         matter_name_en="", challenge="AbCdEfGhIjKlMnOpQrStUv", reasons_version="1",
                         reasons=(), timeout_s=60, rate_later_url="http://x/rate-later?c=zz")


@pytest.fixture
def transport() -> Iterator[tuple[LanPadTransport, list[str], SoftPad]]:
    tr = LanPadTransport("127.0.0.1", 0, long_poll_s=0.2, max_connections=4, max_visitor_polls=2)
    pad = SoftPad()
    tr.verify_pad = verifier(pad)
    states: list[str] = []
    tr.start(lambda _r: None, states.append)
    try:
        yield tr, states, pad
    finally:
        tr.stop()


def test_only_the_paired_pad_sees_the_case_and_counts_as_connected(
        transport: tuple[LanPadTransport, list[str], SoftPad]) -> None:
    tr, states, pad = transport
    base = f"http://127.0.0.1:{tr.port}/pad/api"
    tr.ask_rating(request(), CARD)
    # A visitor: idle card only, nothing about the case, not a heartbeat.
    for q in ("", f"&pad_id={pad.pad_id}", proof(pad, signer=SoftPad()),
              f"&pad_id={pad.pad_id}&t=1&sig=AAAA", f"&pad_id={pad.pad_id}&t=zz&sig=AAAA"):
        r = requests.get(f"{base}/state?since=0{q}", timeout=10)
        assert r.status_code == 200
        body = r.json()
        assert body["screen"] == "idle" and body["seq"] == 0 and "request" not in body
        assert "A0427" not in r.text and "challenge" not in r.text
    assert states == []
    assert requests.post(f"{base}/heartbeat", data=b"{}", timeout=10).status_code == 403
    # The pad: the real screen, and the link is up.
    good = proof(pad)
    r = requests.get(f"{base}/state?since=0{good}", timeout=10)
    assert r.json()["screen"] == "rating" and r.json()["request"]["case_no"] == "A0427"
    assert states == ["connected"]
    # The same proof again (a copied URL) is a visitor's.
    again = requests.get(f"{base}/state?since=0{good}", timeout=10)
    assert again.json()["screen"] == "idle" and "A0427" not in again.text
    assert requests.post(f"{base}/heartbeat?x=1{proof(pad)}", data=b"{}", timeout=10).status_code == 200


def _hold(port: int) -> socket.socket:
    """A connection that sends nothing: its handler waits for a request line (holds a slot)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def _status(port: int, path: str = "/pad/api/state?since=0") -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: pad\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
    assert data.startswith(b"HTTP/1.1 "), data[:80]
    return int(data[9:12])


def test_connections_over_the_cap_get_503_then_service_resumes(
        transport: tuple[LanPadTransport, list[str], SoftPad]) -> None:
    tr, _states, _pad = transport
    held = [_hold(tr.port) for _ in range(4)]
    try:
        wait_for(lambda: tr._slots._value == 0, what="all slots taken")  # type: ignore[attr-defined]
        for _ in range(20):
            assert _status(tr.port) == 503
        r = requests.get(f"http://127.0.0.1:{tr.port}/pad/", timeout=10)
        assert r.status_code == 503 and r.json()["error"]["code"] == "busy"
        assert r.headers["Retry-After"] == "2"
    finally:
        for s in held:
            s.close()
    wait_for(lambda: tr._slots._value == 4, what="slots released")  # type: ignore[attr-defined]
    assert _status(tr.port, "/pad/") == 200


def test_visitor_long_polls_are_capped(transport: tuple[LanPadTransport, list[str], SoftPad]) -> None:
    tr, states, pad = transport
    tr.long_poll_s = 60.0
    base = f"http://127.0.0.1:{tr.port}/pad/api"
    answers: list[int] = []

    def visitor() -> None:
        answers.append(requests.get(f"{base}/state?since=0", timeout=120).status_code)

    waiting = [threading.Thread(target=visitor) for _ in range(2)]
    for t in waiting:
        t.start()
    wait_for(lambda: tr._visitor_polls == 2, what="two visitor polls waiting")
    r = requests.get(f"{base}/state?since=0", timeout=10)
    assert r.status_code == 503 and r.json()["error"]["code"] == "busy"
    # The pad itself is not crowded out.
    tr.long_poll_s = 0.2
    assert requests.get(f"{base}/state?since=0{proof(pad)}", timeout=10).json()["seq"] >= 1
    assert states == ["connected"]
    # A pairing wakes waiting visitor polls at once (so a pad that just paired polls again,
    # now with its proof, instead of waiting out the minute).
    with tr._cond:
        tr._pair_epoch += 1
        tr._cond.notify_all()
    for t in waiting:
        t.join(30)
    assert answers == [200, 200]


# ---- through the real desk: PadService checks the proof with the key from the server -------
@pytest.fixture
def desk(fresh_hall_server: RunningServer, tmp_path: Path) -> Iterator[Any]:
    core = make_desk(fresh_hall_server.url, tmp_path)
    try:
        yield core
    finally:
        core.close()


def test_desk_recognises_only_its_paired_pad(desk: Any, fresh_hall_server: RunningServer) -> None:
    kiosk = HallClient(fresh_hall_server.url)
    kiosk.login("8001", DEMO_PASSWORD)
    states: list[str] = []
    desk.bus.subscribe(PadStateChanged, lambda e: states.append(e.state))
    base = f"http://127.0.0.1:{desk.pad.transport.port}/pad/api"
    pad = SoftPad()
    # Paired on the server behind the desk's back: the desk learns the key when the pad polls.
    pair(signed_in(fresh_hall_server.url, "8001"), signed_in(fresh_hall_server.url, "8001"), 1, pad)
    desk.pad._key_asked_at = None
    case = serve_one_case(desk, kiosk)
    desk.pad.request_rating(case)
    stranger = SoftPad()
    r = requests.get(f"{base}/state?since=0{proof(stranger)}", timeout=30)
    assert r.json()["screen"] == "idle" and case.case_no not in r.text
    assert "connected" not in states
    r = requests.get(f"{base}/state?since=0{proof(pad)}", timeout=30)
    assert r.json()["screen"] == "rating" and r.json()["request"]["case_no"] == case.case_no
    wait_for(lambda: "connected" in states, what="connected")
    kiosk.close()
