"""The LAN pad transport under malformed input (hypothesis): 10,000 messages that are truncated,
1 MB, wrong-typed, not UTF-8 or missing fields -> 0 accepted, 0 crashes, and the link still
works after. Plus the desk-side check (PadService) refusing forged ratings and the timeout."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api_client import HallClient
from counter_app.events import PadStateChanged, RatingNotGiven, RatingStored
from counter_app.pad.base import PadRating
from counter_app.pad.lan import LanPadTransport
from tests.pad_helpers import SoftPad, make_desk, pair, serve_one_case, wait_for
from tests.support.server_fixtures import DEMO_PASSWORD, RunningServer, signed_in

REQUIRED = ["rating_id", "case_id", "level", "challenge", "rated_at", "pad_id", "pad_counter",
            "signature", "window_no"]


def valid_message() -> dict[str, Any]:
    return {"rating_id": str(uuid.uuid4()), "case_id": 7, "window_no": 1, "level": "satisfied",
            "reasons": [], "comment": "", "challenge": "AbCdEfGhIjKlMnOpQrStUv",
            "rated_at": "2026-11-25T09:30:00.123Z", "pad_id": "pad_0123456789ab",
            "pad_counter": 3, "signature": "A" * 86}


class Link:
    def __init__(self) -> None:
        self.got: list[PadRating] = []
        self.states: list[str] = []
        self.tr = LanPadTransport("127.0.0.1", 0, long_poll_s=0.2)
        self.tr.start(self.got.append, self.states.append)
        self.base = f"http://127.0.0.1:{self.tr.port}"

    def raw(self, head: bytes, body: bytes, *, shut: bool = True) -> bytes:
        with socket.create_connection(("127.0.0.1", self.tr.port), timeout=10) as s:
            try:
                s.sendall(head + body)
                if shut:
                    s.shutdown(socket.SHUT_WR)
            except OSError:  # the server may answer and close before reading everything
                pass
            chunks = []
            try:
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    chunks.append(c)
            except (ConnectionResetError, TimeoutError):
                pass
            return b"".join(chunks)

    def post(self, body: bytes, length: int | None = None, path: str = "/pad/api/rating") -> int:
        n = len(body) if length is None else length
        head = (f"POST {path} HTTP/1.1\r\nHost: pad\r\nContent-Type: application/json\r\n"
                f"Content-Length: {n}\r\nConnection: close\r\n\r\n").encode()
        resp = self.raw(head, body)
        if not resp and len(body) > 65536:
            return 413  # answered 413 and closed; the reset ate the answer on our side
        assert resp.startswith(b"HTTP/1.1 "), resp[:100]
        return int(resp[9:12])


@pytest.fixture(scope="module")
def link() -> Iterator[Link]:
    lk = Link()
    yield lk
    lk.tr.stop()


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=False), st.text(max_size=30))
wrong_values = {
    "rating_id": st.one_of(st.integers(), st.none(), st.text(max_size=7), st.text(min_size=65, max_size=80), st.lists(st.text())),
    "case_id": st.one_of(st.text(), st.floats(), st.booleans(), st.none(), st.integers(max_value=-1), st.integers(min_value=2**53 + 1)),
    "level": st.one_of(st.integers(), st.text().filter(lambda s: s not in
                       ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied"))),
    "reasons": st.one_of(st.text(), st.integers(), st.lists(st.integers(), min_size=1),
                         st.lists(st.text(min_size=33), min_size=1), st.lists(st.just("A1"), min_size=2)),
    "comment": st.one_of(st.integers(), st.lists(st.text()), st.text(min_size=2001, max_size=2100)),
    "challenge": st.one_of(st.integers(), st.just(""), st.text(alphabet="+/=!中 ", min_size=1)),
    "rated_at": st.one_of(st.integers(), st.text(max_size=30).filter(lambda s: not s.endswith("Z") or len(s) != 24)),
    "pad_id": st.one_of(st.integers(), st.text(alphabet="/ +中", min_size=1)),
    "pad_counter": st.one_of(st.text(), st.booleans(), st.integers(max_value=0), st.floats()),
    "signature": st.one_of(st.integers(), st.just(""), st.text(alphabet="+/=中", min_size=1)),
    "window_no": st.one_of(st.text(), st.booleans(), st.integers(max_value=-1), st.floats()),
}


@st.composite
def wrong_typed(draw: Any) -> bytes:
    m = valid_message()
    keys = draw(st.lists(st.sampled_from(sorted(wrong_values)), min_size=1, max_size=4, unique=True))
    for k in keys:
        m[k] = draw(wrong_values[k])
    return json.dumps(m).encode()


@st.composite
def missing_fields(draw: Any) -> bytes:
    m = valid_message()
    for k in draw(st.lists(st.sampled_from(REQUIRED), min_size=1, unique=True)):
        del m[k]
    return json.dumps(m).encode()


@st.composite
def bad_utf8(draw: Any) -> bytes:
    good = json.dumps(valid_message()).encode()
    i = draw(st.integers(0, len(good)))
    junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe4\xb8", b"\x80\x80"]))
    return good[:i] + junk + good[i:]


@st.composite
def not_json(draw: Any) -> bytes:
    good = json.dumps(valid_message()).encode()
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return good[: draw(st.integers(0, len(good) - 1))]  # cut short but honestly sized
    if kind == 1:
        return json.dumps(draw(st.lists(json_scalars, max_size=5))).encode()  # not an object
    if kind == 2:
        return draw(st.binary(max_size=300)).replace(b"{", b"")
    return b"{\"level\": NaN, \"x\": Infinity}"


N = 2000
SETTINGS = settings(max_examples=N, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


def _ok(link: Link, before: int) -> None:
    assert len(link.got) == before, "a malformed message was accepted"


@SETTINGS
@given(body=wrong_typed())
def test_wrong_types_refused(link: Link, body: bytes) -> None:
    n = len(link.got)
    assert link.post(body) == 400
    _ok(link, n)


@SETTINGS
@given(body=missing_fields())
def test_missing_fields_refused(link: Link, body: bytes) -> None:
    n = len(link.got)
    assert link.post(body) == 400
    _ok(link, n)


@SETTINGS
@given(body=bad_utf8())
def test_bad_utf8_refused(link: Link, body: bytes) -> None:
    n = len(link.got)
    assert link.post(body) == 400
    _ok(link, n)


@SETTINGS
@given(body=not_json())
def test_not_json_refused(link: Link, body: bytes) -> None:
    n = len(link.got)
    assert link.post(body) == 400
    _ok(link, n)


@settings(max_examples=N, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(1, 400), extra=st.integers(1, 10_000))
def test_truncated_bodies_refused(link: Link, cut: int, extra: int) -> None:
    n = len(link.got)
    good = json.dumps(valid_message()).encode()
    part = good[: min(cut, len(good) - 1)]
    assert link.post(part, length=len(part) + extra) in (400, 413)  # declared longer, then EOF
    _ok(link, n)


def test_huge_and_odd_requests_then_the_link_still_works(link: Link) -> None:
    n = len(link.got)
    assert link.post(b"x" * (1 << 20)) == 413  # 1 MB: refused without reading it
    assert link.post(b"{}", length=10**12) == 413
    assert link.post(b"{}", length=-1) == 413
    resp = link.raw(b"POST /pad/api/rating HTTP/1.1\r\nHost: pad\r\nContent-Length: zz\r\n\r\n", b"")
    assert resp.startswith(b"HTTP/1.1 400")
    resp = link.raw(b"POST /pad/api/rating HTTP/1.1\r\nHost: pad\r\nTransfer-Encoding: chunked\r\n\r\n", b"0\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 411")
    resp = link.raw(b"\x00\xff garbage \r\n\r\n", b"")
    assert resp == b"" or b"400" in resp  # the stdlib's own "bad request line" answer
    resp = link.raw(b"GET /pad/../../etc/passwd HTTP/1.1\r\nHost: pad\r\n\r\n", b"")
    assert resp.startswith(b"HTTP/1.1 404")
    assert requests.get(link.base + "/pad/api/state?since=zz", timeout=10).status_code == 400
    assert requests.delete(link.base + "/pad/api/rating", timeout=10).status_code == 405
    assert link.post(b'{"token": 5}', path="/pad/api/pair") == 400
    _ok(link, n)
    # Still serving: the page, the state, and a well-formed message reaches on_rating.
    r = requests.get(link.base + "/pad/", timeout=10)
    assert r.status_code == 200 and "服务评价" in r.text
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert requests.get(link.base + "/pad/api/state?since=0", timeout=10).json()["screen"] == "idle"
    assert link.post(json.dumps(valid_message()).encode()) == 200
    assert len(link.got) == n + 1


def test_heartbeat_connected_then_offline() -> None:
    from tests.test_pad_lan_limits import proof, verifier

    now = [0.0]
    tr = LanPadTransport("127.0.0.1", 0, long_poll_s=0.05, offline_after_s=10, clock=lambda: now[0])
    pad = SoftPad()
    tr.verify_pad = verifier(pad)
    states: list[str] = []
    tr.start(lambda _r: None, states.append)
    try:
        requests.get(f"http://127.0.0.1:{tr.port}/pad/api/state?since=0{proof(pad)}", timeout=10)
        assert states == ["connected"]
        now[0] = 11.0
        tr.check_offline()
        assert states == ["connected", "offline"]
        requests.get(f"http://127.0.0.1:{tr.port}/pad/api/state?since=0{proof(pad)}", timeout=10)
        assert states == ["connected", "offline", "connected"]
    finally:
        tr.stop()


# ---- the desk's own check, through the real PadService and the LAN transport ----------------
@pytest.fixture
def desk(fresh_hall_server: RunningServer, tmp_path: Path) -> Iterator[Any]:
    core = make_desk(fresh_hall_server.url, tmp_path)
    core.pad.thanks_s = 0.2
    try:
        yield core
    finally:
        core.close()


def test_desk_refuses_forged_pad_messages_and_stores_the_real_one(
        desk: Any, fresh_hall_server: RunningServer) -> None:
    kiosk = HallClient(fresh_hall_server.url)
    kiosk.login("8001", DEMO_PASSWORD)
    sup = signed_in(fresh_hall_server.url, "8001")
    relay = signed_in(fresh_hall_server.url, "8001")
    pad = SoftPad()
    states: list[PadStateChanged] = []
    desk.bus.subscribe(PadStateChanged, states.append)
    pair(sup, relay, 1, pad)
    desk.pad.refresh_pad_key()
    stored: list[RatingStored] = []
    desk.bus.subscribe(RatingStored, stored.append)
    case = serve_one_case(desk, kiosk)
    req = desk.pad.request_rating(case)
    url = f"http://127.0.0.1:{desk.pad.transport.port}/pad/api/rating"

    def to_pad_msg(m: dict[str, Any]) -> dict[str, Any]:
        return {"rating_id": m["id"], **{k: m[k] for k in ("case_id", "window_no", "level", "reasons",
                "comment", "challenge", "rated_at", "pad_id", "pad_counter", "signature")}}

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forged = [
        pad.rating(case_id=case.id, window_no=1, challenge=req.challenge, signer=Ed25519PrivateKey.generate()),
        SoftPad().rating(case_id=case.id, window_no=1, challenge=req.challenge),
        pad.rating(case_id=case.id, window_no=1, challenge="x" * 22),
        pad.rating(case_id=case.id + 1, window_no=1, challenge=req.challenge),
        {**pad.rating(case_id=case.id, window_no=1, challenge=req.challenge), "level": "basic"},  # tampered
        pad.rating(case_id=case.id, window_no=1, challenge=req.challenge, level="very_dissatisfied"),
    ]
    codes = []
    for m in forged:
        r = requests.post(url, json=to_pad_msg(m), timeout=10)
        assert r.status_code == 422, r.text
        codes.append(r.json()["error"]["code"])
    assert codes == ["bad_signature", "pad_not_paired", "stale_challenge", "wrong_case",
                     "bad_signature", "reason_required"]
    assert stored == [] and desk.pad.rating_open
    good = pad.rating(case_id=case.id, window_no=1, challenge=req.challenge, level="satisfied")
    r = requests.post(url, json=to_pad_msg(good), timeout=10)
    assert r.status_code == 200 and r.json()["stored"] is True
    assert [s.case_id for s in stored] == [case.id]
    # The pad re-sends after a lost answer: OK again, stored once.
    assert requests.post(url, json=to_pad_msg(good), timeout=10).status_code == 200
    assert len(stored) == 1 and desk.outbox.get(good["id"]) is not None
    # A replay of the same signed message for the next case is refused.
    case2 = serve_one_case(desk, kiosk)
    desk.pad.request_rating(case2)
    again = {**to_pad_msg(good), "rating_id": str(uuid.uuid4())}
    assert requests.post(url, json=again, timeout=10).status_code == 422
    kiosk.close()


def test_no_answer_shows_not_rated(desk: Any, fresh_hall_server: RunningServer) -> None:
    kiosk = HallClient(fresh_hall_server.url)
    kiosk.login("8001", DEMO_PASSWORD)
    missed: list[RatingNotGiven] = []
    desk.bus.subscribe(RatingNotGiven, missed.append)
    desk.pad.timeout_s = 0.3
    case = serve_one_case(desk, kiosk)
    desk.pad.request_rating(case)
    wait_for(lambda: missed, what="RatingNotGiven")
    assert missed[0].case_id == case.id and not desk.pad.rating_open
    seq, scr = desk.pad.transport.snapshot()
    assert scr["screen"] == "not_rated" and "/rate-later?c=" in scr["rate_later_url"]
    assert scr["rate_later_days"] == 5
    qr = requests.get(f"http://127.0.0.1:{desk.pad.transport.port}/pad/api/qr.png", timeout=10)
    assert qr.status_code == 200 and qr.content[:4] == b"\x89PNG"
    kiosk.close()
