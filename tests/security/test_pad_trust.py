"""Issue 10, findings 1 and 2 (and 5/6 on the pad's new home, the hall server): nobody at the
window (the PC, the clerk) or on the hall LAN can make a rating count as the citizen's.

Each test is an attack made over HTTP against a real server on loopback; each failed on the
code before the pad moved to the hall server (see the commit message).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, select

from hall_server import schema as t
from tests.pad_helpers import SoftPad, challenge, open_cases, pad_get, pad_post, pair
from tests.support.server_fixtures import (
    RunningServer,
    drop_pg_db,
    fresh_pg_url,
    signed_in,
    start_server_thread,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def srv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    """The attacks run against both stores: the checks are SQL in the rating's transaction."""
    url = None
    if request.param == "postgresql":
        base = os.environ.get("HALL_TEST_PG_URL")
        if not base:
            pytest.skip("HALL_TEST_PG_URL not set")
        url = fresh_pg_url(base)
    s = start_server_thread(db_url=url, data_dir=tmp_path / "hall", demo=True)
    yield s
    s.stop()
    if url is not None:
        drop_pg_db(url)


def _db(srv: RunningServer, q: Any) -> list[dict[str, Any]]:
    eng = create_engine(srv.db_url)
    try:
        with eng.connect() as c:
            return [dict(r) for r in c.execute(q).mappings()]
    finally:
        eng.dispose()


def _forge_link_token(srv: RunningServer, case_id: int) -> str:
    """The rate-later token for `case_id`, made with the server's own secret (what a link
    obtained any way at all would carry)."""
    # The secret lives in its 0600 file in the data folder (never in the database).
    secret = (srv.data_dir / "secret.key").read_text(encoding="ascii").strip()
    key = hmac.new(base64.b64decode(secret), b"hall-rate-later-v1", hashlib.sha256).digest()
    mac = hmac.new(key, f"case:{case_id}".encode(), hashlib.sha256).digest()[:16]
    return f"{case_id}-{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _web() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


# ---- finding 2: the desk cannot get its own key bound -----------------------------------------------
def test_desk_that_swaps_the_key_never_gets_signed(srv: RunningServer) -> None:
    sup = signed_in(srv.url, "8001")
    desk = signed_in(srv.url, "1001", 1)
    real, fake = SoftPad(), SoftPad()
    # (a) The desk's own session can neither start nor confirm a pairing.
    assert desk.post("/windows/1/pads/pairings").status_code == 403
    # (b) The old relay (desk posts the pad's key with its staff token) is gone.
    r = desk.post("/pads/register", json=fake.register_body("x" * 22))
    assert r.status_code in (404, 405), r.text
    # (c) Worst case: the desk got hold of the one-time token and registers ITS key first.
    offer = sup.post("/windows/1/pads/pairings").json()
    r = pad_post(srv.url, "/pad/api/pair", fake.register_body(offer["token"]))
    assert r.status_code == 200 and r.json()["status"] == "registered", r.text
    # The real pad then finds the token used; the supervisor sees the fingerprint the server
    # received, compares it with the real pad's screen, and types what the pad shows.
    assert pad_post(srv.url, "/pad/api/pair", real.register_body(offer["token"])).status_code == 403
    assert sup.get(f"/pads/pairings/{offer['pairing_id']}").json()["fingerprint"] == fake.fingerprint
    assert desk.post(f"/pads/pairings/{offer['pairing_id']}/confirm",
                     json={"fingerprint": fake.fingerprint}).status_code == 403  # staff cannot
    r = sup.post(f"/pads/pairings/{offer['pairing_id']}/confirm", json={"fingerprint": real.fingerprint})
    assert r.status_code == 409 and r.json()["error"]["code"] == "fingerprint_mismatch"
    # The pairing is void: a second try with the desk's fingerprint binds nothing either.
    r = sup.post(f"/pads/pairings/{offer['pairing_id']}/confirm", json={"fingerprint": fake.fingerprint})
    assert r.status_code == 403
    assert desk.get("/windows/1/pads").json()["pads"] == []
    (case_id,) = open_cases(desk, 1, 1)
    forged = fake.rating(case_id=case_id, window_no=1, challenge=challenge(desk, case_id))
    r = desk.post("/ratings", json=forged, key=forged["id"])
    assert r.status_code == 403, r.text
    r = pad_post(srv.url, "/pad/api/rating", fake.pad_body(forged))
    assert r.status_code == 403, r.text
    # (d) The genuine pairing: the real pad's key is bound; the desk's key still signs nothing.
    pair(sup, None, 1, real)
    forged = fake.rating(case_id=case_id, window_no=1, challenge=challenge(desk, case_id))
    for send in (lambda b: desk.post("/ratings", json=b, key=b["id"]),
                 lambda b: pad_post(srv.url, "/pad/api/rating", fake.pad_body(b))):
        r = send(forged)
        assert r.status_code == 403, r.text
    # A desk that re-labels its own signature with the real pad's id: bad signature.
    relabelled = real.rating(case_id=case_id, window_no=1, challenge=challenge(desk, case_id),
                             signer=fake.key)
    assert pad_post(srv.url, "/pad/api/rating", real.pad_body(relabelled)).status_code == 403
    good = real.rating(case_id=case_id, window_no=1, challenge=challenge(desk, case_id))
    r = pad_post(srv.url, "/pad/api/rating", real.pad_body(good))
    assert r.status_code == 200 and r.json()["assurance"] == "signed", r.text
    rows = _db(srv, select(t.ratings).where(t.ratings.c.case_id == case_id))
    assert [(x["pad_id"], x["assurance"]) for x in rows] == [(real.pad_id, "signed")]
    # The same message again (lost answer): the same receipt, still one rating.
    again = pad_post(srv.url, "/pad/api/rating", real.pad_body(good))
    assert again.status_code == 200 and again.json() == r.json()
    assert len(_db(srv, select(t.ratings).where(t.ratings.c.case_id == case_id))) == 1


# ---- finding 1: rate-later is not a back door ------------------------------------------------------------
def test_staff_of_another_window_cannot_get_a_link(srv: RunningServer) -> None:
    desk1 = signed_in(srv.url, "1001", 1)
    desk3 = signed_in(srv.url, "1003", 3)
    (case_id,) = open_cases(desk1, 1, 1)
    r = desk3.get(f"/cases/{case_id}/rate-later-link")
    assert r.status_code == 403, r.text
    assert _db(srv, select(t.rate_later_issues)) == []
    # Its own window (no pad there) gets it, and the issuance is on record.
    r = desk1.get(f"/cases/{case_id}/rate-later-link")
    assert r.status_code == 200, r.text
    issued = _db(srv, select(t.rate_later_issues))
    assert [(x["case_id"], x["issued_to"], x["staff_no"]) for x in issued] == [(case_id, "desk", "1001")]


def test_clerk_cannot_rate_own_case_later_while_a_pad_is_paired(srv: RunningServer) -> None:
    sup = signed_in(srv.url, "8001")
    desk = signed_in(srv.url, "1001", 1)
    pad = SoftPad()
    pair(sup, None, 1, pad)
    (case_id,) = open_cases(desk, 1, 1)
    r = desk.get(f"/cases/{case_id}/rate-later-link")
    assert r.status_code == 403 and r.json()["error"]["code"] == "pad_paired", r.text
    # While the pad's rating is open, even a link obtained some other way cannot pre-empt it.
    challenge(desk, case_id)
    token = _forge_link_token(srv, case_id)
    with _web() as s:
        r = s.post(srv.url + "/rate-later", data={"c": token, "level": "very_satisfied",
                                                  "rid": uuid.uuid4().hex}, allow_redirects=False)
    assert r.status_code == 409, r.text
    assert _db(srv, select(t.ratings).where(t.ratings.c.case_id == case_id)) == []
    # A supervisor may not hand one out while the pad's rating is open either.
    assert sup.get(f"/cases/{case_id}/rate-later-link").status_code == 409


def test_clerk_cannot_rate_a_case_being_served(srv: RunningServer) -> None:
    desk = signed_in(srv.url, "1001", 1)
    cats = desk.get("/windows/1").json()["categories"]
    tk = desk.post("/tickets", json={"category": cats[0]}).json()
    assert desk.post(f"/tickets/{tk['id']}/call", json={"window_no": 1}).status_code == 200
    case_id = int(desk.post(f"/tickets/{tk['id']}/start").json()["case"]["id"])
    r = desk.get(f"/cases/{case_id}/rate-later-link")
    assert r.status_code == 409 and r.json()["error"]["code"] == "case_not_completed", r.text
    token = _forge_link_token(srv, case_id)
    with _web() as s:
        page = s.get(srv.url + "/rate-later", params={"c": token})
        assert page.status_code == 409
        r = s.post(srv.url + "/rate-later", data={"c": token, "level": "very_satisfied",
                                                  "rid": uuid.uuid4().hex}, allow_redirects=False)
    assert r.status_code == 409
    assert _db(srv, select(t.ratings).where(t.ratings.c.case_id == case_id)) == []


def test_stats_count_signed_unsigned_and_later_apart(srv: RunningServer) -> None:
    sup = signed_in(srv.url, "8001")
    desk1 = signed_in(srv.url, "1001", 1)
    desk2 = signed_in(srv.url, "1002", 2)
    pad = SoftPad()
    pair(sup, None, 1, pad)
    c_signed, c_signed_bad = open_cases(desk1, 1, 2)
    c_unsigned, c_later = open_cases(desk2, 2, 2)
    for cid, level, reasons in ((c_signed, "very_satisfied", ()), (c_signed_bad, "dissatisfied", ("slow",))):
        body = pad.rating(case_id=cid, window_no=1, challenge=challenge(desk1, cid), level=level,
                          reasons=reasons)
        if reasons:
            known = [r["code"] for r in desk1.get("/rating-reasons").json()["reasons"]]
            body = pad.rating(case_id=cid, window_no=1, challenge=challenge(desk1, cid), level=level,
                              reasons=(known[0],))
        r = pad_post(srv.url, "/pad/api/rating", pad.pad_body(body))
        assert r.status_code == 200, r.text
    d = {"id": str(uuid.uuid4()), "case_id": c_unsigned, "window_no": 2, "level": "satisfied",
         "source": "second_screen", "rated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    assert desk2.post("/ratings", json=d, key=d["id"]).status_code == 201
    url = desk2.get(f"/cases/{c_later}/rate-later-link").json()["url"]
    with _web() as s:
        r = s.post(srv.url + "/rate-later", data={"c": url.split("?c=")[1], "level": "very_satisfied",
                                                  "rid": uuid.uuid4().hex}, allow_redirects=False)
    assert r.status_code == 303, r.text
    st = sup.get("/stats").json()
    assert st["ratings"] == 4
    assert st["ratings_by_assurance"] == {"signed": 2, "unsigned": 1, "later": 1, "entered": 0}  # paper/phone: 0
    assert st["satisfaction_rate"] == 0.75
    assert st["satisfaction_rate_signed"] == 0.5
    rows = _db(srv, select(t.ratings.c.case_id, t.ratings.c.source, t.ratings.c.assurance))
    assert {(r["case_id"], r["source"], r["assurance"]) for r in rows} == {
        (c_signed, "pad", "signed"), (c_signed_bad, "pad", "signed"),
        (c_unsigned, "second_screen", "unsigned"), (c_later, "later", "later")}


# ---- findings 5 and 6 on the server's pad routes ------------------------------------------------------------
def test_pad_routes_need_the_pads_proof_and_keep_nothing_after_idle(tmp_path: Path) -> None:
    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True, pad_rating_seconds=1,
                              pad_not_rated_seconds=2)
    try:
        sup = signed_in(srv.url, "8001")
        desk = signed_in(srv.url, "1001", 1)
        pad, visitor = SoftPad(), SoftPad()
        pair(sup, None, 1, pad)
        (case_id,) = open_cases(desk, 1, 1)
        challenge(desk, case_id)
        # A visitor (no proof, a proof by another key, or a replayed proof) learns nothing, at once.
        t0 = time.monotonic()
        assert pad_get(srv.url, "/pad/api/state", params={"since": 0}).status_code == 422
        r = pad_get(srv.url, "/pad/api/state", params={"since": 0, **visitor.proof(), "pad_id": pad.pad_id})
        assert r.status_code == 403 and "case" not in r.text
        proof = pad.proof()
        first = pad_get(srv.url, "/pad/api/state", params={"since": 0, **proof})
        assert first.status_code == 200 and first.json()["screen"] == "rating", first.text
        assert pad_get(srv.url, "/pad/api/state", params={"since": 0, **proof}).status_code == 403
        assert time.monotonic() - t0 < 10
        # The rate-later link: not without the proof, not while the rating is open.
        r = pad_post(srv.url, "/pad/api/rate-later", {"case_id": case_id, **visitor.proof(), "pad_id": pad.pad_id})
        assert r.status_code == 403
        r = pad_post(srv.url, "/pad/api/rate-later", {"case_id": case_id, **pad.proof()})
        assert r.status_code == 409, r.text
        time.sleep(1.2)  # the on-the-spot rating ran out: "not rated"
        state = pad_get(srv.url, "/pad/api/state", params={"since": 0, **pad.proof()}).json()
        assert state["screen"] == "not_rated" and state["case_id"] == case_id and "url" not in state
        r = pad_post(srv.url, "/pad/api/rate-later", {"case_id": case_id, **pad.proof()})
        assert r.status_code == 200 and r.json()["qr"].startswith("data:image/png;base64,"), r.text
        issued = _db(srv, select(t.rate_later_issues))
        assert [(x["issued_to"], x["pad_id"]) for x in issued] == [("pad", pad.pad_id)]
        time.sleep(2.2)  # back to idle: nothing is handed out any more
        state = pad_get(srv.url, "/pad/api/state", params={"since": 0, **pad.proof()}).json()
        assert state["screen"] == "idle" and "case_id" not in state
        r = pad_post(srv.url, "/pad/api/rate-later", {"case_id": case_id, **pad.proof()})
        assert r.status_code == 409
        # F10 while still serving: the pad asks at once, but when that runs out no link is
        # offered for a case that is not completed.
        cats = desk.get("/windows/1").json()["categories"]
        tk = desk.post("/tickets", json={"category": cats[0]}).json()
        assert desk.post(f"/tickets/{tk['id']}/call", json={"window_no": 1}).status_code == 200
        serving = int(desk.post(f"/tickets/{tk['id']}/start").json()["case"]["id"])
        challenge(desk, serving)
        state = pad_get(srv.url, "/pad/api/state", params={"since": 0, **pad.proof()}).json()
        assert state["screen"] == "rating" and state["request"]["case_id"] == serving
        time.sleep(1.2)
        state = pad_get(srv.url, "/pad/api/state", params={"since": 0, **pad.proof()}).json()
        assert state["screen"] == "idle", state
        r = pad_post(srv.url, "/pad/api/rate-later", {"case_id": serving, **pad.proof()})
        assert r.status_code == 409
    finally:
        srv.stop()


def test_pad_routes_refuse_foreign_hosts_and_cap_polls_per_address(tmp_path: Path) -> None:
    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True, pad_hosts=("pad.hall.test",),
                              pad_max_polls_per_address=2)
    try:
        sup = signed_in(srv.url, "8001")
        pad = SoftPad()
        pair(sup, None, 1, pad)
        # DNS rebinding: a page on evil.test that resolves to the server gets nothing.
        for path in ("/pad/", "/pad/pad.js"):
            assert pad_get(srv.url, path, headers={"Host": "evil.test"}).status_code == 421
            assert pad_get(srv.url, path, headers={"Host": "pad.hall.test"}).status_code == 200
        r = pad_post(srv.url, "/pad/api/pair", pad.register_body("x" * 22), headers={"Host": "evil.test:80"})
        assert r.status_code == 421
        r = pad_post(srv.url, "/pad/api/pair", pad.register_body("x" * 22),
                     headers={"Origin": "http://evil.test"})
        assert r.status_code == 403
        page = pad_get(srv.url, "/pad/")
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        # Long-polls: at most 2 waiting per address; the third is 503 at once, then it recovers.
        import threading

        seq = pad_get(srv.url, "/pad/api/state", params={"since": 0, **pad.proof()}).json()["seq"]
        results: list[int] = []
        def poll(p: dict[str, Any]) -> None:
            results.append(pad_get(srv.url, "/pad/api/state", params={"since": seq, **p},
                                   timeout=40).status_code)

        threads = [threading.Thread(target=poll, args=(pad.proof(),)) for _ in range(2)]
        for th in threads:
            th.start()
        time.sleep(1.0)
        t0 = time.monotonic()
        r = pad_get(srv.url, "/pad/api/state", params={"since": seq, **pad.proof()})
        assert r.status_code == 503 and r.headers.get("Retry-After") and time.monotonic() - t0 < 5
        for th in threads:
            th.join(40)
        assert results == [200, 200]
        assert pad_get(srv.url, "/pad/api/state", params={"since": 0, **pad.proof()}).status_code == 200
    finally:
        srv.stop()





@pytest.mark.postgres
def test_a_pad_proof_is_good_once_across_server_processes(tmp_path: Path) -> None:
    """Two server processes on one PostgreSQL (the scale-out set-up): a pad's proof seen by one
    is refused by the other. Before, each process remembered proofs only in its own memory, so a
    proof overheard on the LAN opened the pad's screen (and its rate-later QR) once per process."""
    from tests.support.server_fixtures import start_server_process

    base = os.environ.get("HALL_TEST_PG_URL")
    if not base:
        pytest.skip("HALL_TEST_PG_URL not set")
    url = fresh_pg_url(base)
    a = start_server_process(tmp_path / "hall", db_url=url)
    b = start_server_process(tmp_path / "hall", db_url=url)  # same secret file, same database
    try:
        sup = signed_in(a.url, "8001")
        pad = SoftPad()
        pair(sup, None, 1, pad)
        proof = pad.proof()
        assert pad_get(a.url, "/pad/api/state", params={"since": 0, **proof}).status_code == 200
        replay = pad_get(b.url, "/pad/api/state", params={"since": 0, **proof})
        assert replay.status_code == 403 and "case" not in replay.text, replay.text
        # A fresh proof works on either process; the older one is refused on both.
        assert pad_get(b.url, "/pad/api/state", params={"since": 0, **pad.proof()}).status_code == 200
        assert pad_get(a.url, "/pad/api/state", params={"since": 0, **proof}).status_code == 403
    finally:
        a.terminate()
        b.terminate()
        drop_pg_db(url)
