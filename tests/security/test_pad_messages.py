"""Issue 10 findings 5/6 on the pad's new home: the hall server's `/pad/api/rating` under
malformed input (hypothesis; the strategies of the old desk LAN-server test): wrong types,
missing fields, bad UTF-8, not JSON, truncated or huge bodies -> always a 4xx with a zh/en
message, never a 5xx, 0 ratings stored; a valid signed rating is still accepted after; and 64
idle TCP connections do not lock the pad out (the old desk server's 16-slot lockout)."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select

from hall_server import schema as t
from tests.pad_helpers import SoftPad, challenge, open_cases, pad_get, pair
from tests.support.server_fixtures import RunningServer, signed_in, start_server_thread

REQUIRED = ["rating_id", "case_id", "level", "challenge", "rated_at", "pad_id", "pad_counter",
            "signature", "window_no"]


def valid_message() -> dict[str, Any]:
    return {"rating_id": str(uuid.uuid4()), "case_id": 7, "window_no": 1, "level": "satisfied",
            "reasons": [], "comment": "", "challenge": "AbCdEfGhIjKlMnOpQrStUv",
            "rated_at": "2026-11-25T09:30:00.123Z", "pad_id": "pad_0123456789ab",
            "pad_counter": 3, "signature": "A" * 86}


class Link:
    def __init__(self, srv: RunningServer) -> None:
        self.srv = srv
        self.base = srv.url
        self.port = int(srv.url.rsplit(":", 1)[1])
        self.s = requests.Session()
        self.s.trust_env = False

    def post(self, body: bytes) -> requests.Response:
        return self.s.post(self.base + "/pad/api/rating", data=body,
                           headers={"Content-Type": "application/json"}, timeout=30)

    def ratings(self) -> int:
        eng = create_engine(self.srv.db_url)
        try:
            with eng.connect() as c:
                return int(c.execute(select(func.count()).select_from(t.ratings)).scalar_one())
        finally:
            eng.dispose()


@pytest.fixture(scope="module")
def link(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Link]:
    srv = start_server_thread(data_dir=tmp_path_factory.mktemp("hall"), demo=True)
    lk = Link(srv)
    yield lk
    lk.s.close()
    srv.stop()


def refused(r: requests.Response) -> None:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:200])
    err = r.json()["error"]
    assert err["message_zh"] and err["message_en"]


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


N = 400
SETTINGS = settings(max_examples=N, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@SETTINGS
@given(body=st.one_of(wrong_typed(), missing_fields(), bad_utf8(), not_json()))
def test_malformed_pad_messages_are_refused_with_a_clear_error(link: Link, body: bytes) -> None:
    refused(link.post(body))


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(1, 400))
def test_truncated_bodies_refused(link: Link, cut: int) -> None:
    good = json.dumps(valid_message()).encode()
    refused(link.post(good[: min(cut, len(good) - 1)]))


def test_huge_bodies_then_a_real_rating_still_works(link: Link) -> None:
    assert link.post(b"x" * (1 << 20)).status_code == 413
    assert link.s.delete(link.base + "/pad/api/rating", timeout=10).status_code == 405
    assert link.ratings() == 0  # nothing of the thousands above was stored
    sup = signed_in(link.base, "8001")
    desk = signed_in(link.base, "1001", 1)
    pad = SoftPad()
    pair(sup, None, 1, pad)
    (case_id,) = open_cases(desk, 1, 1)
    body = pad.rating(case_id=case_id, window_no=1, challenge=challenge(desk, case_id))
    r = link.post(json.dumps(pad.pad_body(body)).encode())
    assert r.status_code == 200 and r.json()["assurance"] == "signed", r.text
    assert link.ratings() == 1


def test_idle_sockets_do_not_lock_the_pad_out(tmp_path: Path) -> None:
    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True)
    socks: list[socket.socket] = []
    try:
        sup = signed_in(srv.url, "8001")
        pad = SoftPad()
        pair(sup, None, 1, pad)
        port = int(srv.url.rsplit(":", 1)[1])
        for i in range(64):  # the old desk server answered 503 for 30 s from the 17th on
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i % 2:
                s.sendall(b"GET /pad/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
            socks.append(s)
        t0 = time.monotonic()
        r = pad_get(srv.url, "/pad/api/state", params={"since": 0, **pad.proof()})
        assert r.status_code == 200 and time.monotonic() - t0 < 5, r.text
        assert pad_get(srv.url, "/pad/").status_code == 200
    finally:
        for s in socks:
            s.close()
        srv.stop()
