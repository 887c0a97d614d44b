"""Pads on the reference server: pairing (token, code, expiry, single use, unpair) and the
check of signed ratings, including >=1,000 forged/replayed messages of each kind: 0 accepted."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

from counter_app.pad.signing import canonical_message, epoch_ms, unb64u, verify
from hall_server import rating_check as server_pads
from tests.pad_helpers import SoftPad, challenge, open_cases, pad_post, pair
from tests.support.server_fixtures import RunningServer, signed_in, start_server_thread

LEVELS = ["very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied"]


def _rows(server: RunningServer, sql: str, **params: Any) -> list[Any]:
    eng = create_engine(server.db_url)
    try:
        with eng.connect() as c:
            return list(c.execute(text(sql), params).mappings())
    finally:
        eng.dispose()


def test_signed_rating_end_to_end_and_desk_refused(hall_server: RunningServer) -> None:
    sup = signed_in(hall_server.url, "8001")
    desk = signed_in(hall_server.url, "1002", 2)
    pad = SoftPad()
    reg = pair(sup, desk, 2, pad)
    assert reg["window_no"] == 2 and reg["last_counter"] == 0
    listed = desk.get("/windows/2/pads").json()["pads"]
    assert [p["pad_id"] for p in listed] == [pad.pad_id]
    c1, c2, c3 = open_cases(desk, 2, 3)
    body = pad.rating(case_id=c1, window_no=2, challenge=challenge(desk, c1), comment="很好 ok \"q\" \n")
    r = desk.post("/ratings", json=body, key=body["id"])
    assert r.status_code == 201, r.text
    assert r.json()["assurance"] == "signed"
    # Where a pad is paired, every rating it did not sign is refused: desk, second screen,
    # serial (the window PC relays them all, so it could make any of them up).
    d = {"id": str(uuid.uuid4()), "case_id": c2, "window_no": 2, "level": "very_satisfied",
         "source": "desk", "rated_at": "2026-11-25T09:30:00Z"}
    for src in ("desk", "second_screen", "serial"):
        d = {**d, "id": str(uuid.uuid4()), "source": src}
        r = desk.post("/ratings", json=d, key=d["id"])
        assert r.status_code == 403 and r.json()["error"]["code"] == "signature_required", src
    # The stored row carries a signature that verifies over the canonical message.
    row = _rows(hall_server, "SELECT * FROM ratings WHERE id = :i", i=body["id"])[0]
    assert row["assurance"] == "signed"
    from api_client.models import parse_datetime

    msg = canonical_message(rating_id=row["id"], pad_id=row["pad_id"], window_no=row["window_no"],
                            case_id=row["case_id"], challenge=row["challenge"], level=row["level"],
                            reasons=json.loads(row["reasons"]), comment=row["comment"],
                            pad_counter=row["pad_counter"],
                            pad_time=epoch_ms(parse_datetime(body["rated_at"])))
    assert verify(pad.public_key, msg, row["signature"])
    ch = _rows(hall_server, "SELECT closed_ms FROM rating_challenges WHERE case_id = :c", c=c1)[0]
    assert ch["closed_ms"] is not None
    # A gap in the counter is accepted but flagged.
    body = pad.rating(case_id=c3, window_no=2, challenge=challenge(desk, c3), counter=pad.counter + 5)
    assert desk.post("/ratings", json=body, key=body["id"]).status_code == 201
    flags = _rows(hall_server, "SELECT * FROM pad_flags WHERE pad_id = :p", p=pad.pad_id)
    assert [f["kind"] for f in flags] == ["counter_gap"]
    assert desk.get("/windows/2/pads").json()["pads"][0]["gaps"] == 1
    # Unpair: only a supervisor/IT; afterwards the desk may rate again (no pad at the window).
    assert desk.s.delete(f"{hall_server.url}/api/v1/windows/2/pads/{pad.pad_id}",
                         headers=desk.headers()).status_code == 403
    assert sup.s.delete(f"{hall_server.url}/api/v1/windows/2/pads/{pad.pad_id}",
                        headers=sup.headers()).status_code == 204
    assert desk.get("/windows/2/pads").json()["pads"] == []
    d = {**d, "id": str(uuid.uuid4()), "source": "second_screen"}
    r = desk.post("/ratings", json=d, key=d["id"])
    assert r.status_code == 201 and r.json()["assurance"] == "unsigned", r.text


def test_canonical_message_matches_the_server_copy() -> None:
    rng = random.Random(5)
    for _ in range(300):
        kw = dict(rating_id=str(uuid.uuid4()), pad_id="pad_" + uuid.uuid4().hex[:10],
                  window_no=rng.randint(0, 99), case_id=rng.randint(0, 2**40),
                  challenge=uuid.uuid4().hex, level=rng.choice(LEVELS),
                  reasons=rng.sample(["B3", "A1", "C2", "a0"], rng.randint(0, 4)),
                  comment="".join(chr(rng.choice([rng.randint(0, 0x7F), rng.randint(0x4E00, 0x9FA5),
                                                  0x2028, 0x1F600])) for _ in range(rng.randint(0, 12))),
                  pad_counter=rng.randint(1, 2**40), pad_time=rng.randint(0, 2**45))
        assert canonical_message(**kw) == server_pads.canonical_message(**kw)  # type: ignore[arg-type]


@pytest.fixture
def short_pairing_server(tmp_path: Path) -> Iterator[RunningServer]:
    srv = start_server_thread(data_dir=tmp_path, demo=True, pad_pairing_seconds=1)
    try:
        yield srv
    finally:
        srv.stop()


def test_pairing_refusals(short_pairing_server: RunningServer) -> None:
    url = short_pairing_server.url
    sup = signed_in(url, "8001")
    it = signed_in(url, "9001")
    desk = signed_in(url, "1003", 3)
    # Staff cannot start a pairing.
    assert desk.post("/windows/3/pads/pairings").status_code == 403
    # Expired token (TTL 1 s here).
    pr = sup.post("/windows/3/pads/pairings").json()
    assert len(unb64u(pr["token"])) == 16 and len(pr["code"]) == 6 and pr["expires_in"] == 1
    time.sleep(1.2)
    r = pad_post(url, "/pad/api/pair", SoftPad().register_body(pr["token"]))
    assert r.status_code == 403 and r.json()["error"]["details"]["reason"] == "expired"
    # Unknown token.
    r = pad_post(url, "/pad/api/pair", SoftPad().register_body("A" * 22))
    assert r.status_code == 403 and r.json()["error"]["code"] == "pairing_invalid"
    # Reused token: the first use wins, the second is refused.
    pr = it.post("/windows/3/pads/pairings").json()
    first, second = SoftPad(), SoftPad()
    assert pad_post(url, "/pad/api/pair", first.register_body(pr["token"])).status_code == 200
    r = pad_post(url, "/pad/api/pair", second.register_body(pr["token"]))
    assert r.status_code == 403 and r.json()["error"]["details"]["reason"] == "used"
    assert desk.get("/windows/3/pads").json()["pads"] == []  # registered is not bound
    ok = it.post(f"/pads/pairings/{pr['pairing_id']}/confirm", json={"fingerprint": first.fingerprint.lower()})
    assert ok.status_code == 200, ok.text
    assert [p["pad_id"] for p in desk.get("/windows/3/pads").json()["pads"]] == [first.pad_id]
    # A bad public key is refused.
    pr = sup.post("/windows/3/pads/pairings").json()
    for key in ("A" * 43, "A" * 42 + "=", "B" * 42, "+/" * 22):
        bad = {**SoftPad().register_body(pr["token"]), "public_key": key}
        r = pad_post(url, "/pad/api/pair", bad)
        assert r.status_code == 422, key
    # The fallback code: five wrong codes, then even the right one (the 6th try) is refused.
    pr = sup.post("/windows/3/pads/pairings").json()
    wrong = [f"{(int(pr['code']) + k) % 10**6:06d}" for k in range(1, 6)]
    p3 = SoftPad()
    for code in wrong:
        r = pad_post(url, "/pad/api/pair", {"code": code, "window_no": 3, "pad_id": p3.pad_id,
                                               "public_key": p3.public_key, "alg": "Ed25519"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "bad_pairing_code"
    r = pad_post(url, "/pad/api/pair", {"code": pr["code"], "window_no": 3, "pad_id": p3.pad_id,
                                           "public_key": p3.public_key, "alg": "Ed25519"})
    assert r.status_code == 403
    # A right code on the first try pairs, and unpairs the window's previous pad.
    pr = sup.post("/windows/3/pads/pairings").json()
    r = pad_post(url, "/pad/api/pair", {"code": pr["code"], "window_no": 3, "pad_id": p3.pad_id,
                                           "public_key": p3.public_key, "alg": "Ed25519"})
    assert r.status_code == 200, r.text
    assert sup.post(f"/pads/pairings/{pr['pairing_id']}/confirm",
                    json={"fingerprint": p3.fingerprint}).status_code == 200
    assert [p["pad_id"] for p in desk.get("/windows/3/pads").json()["pads"]] == [p3.pad_id]


N = 1000


def test_forged_and_replayed_messages_are_never_accepted(fresh_hall_server: RunningServer) -> None:
    url = fresh_hall_server.url
    sup = signed_in(url, "8001")
    desk = signed_in(url, "1004", 4)
    other = signed_in(url, "1005", 5)
    rng = random.Random(1234)
    reasons = [r["code"] for r in desk.get("/rating-reasons").json()["reasons"]]
    pad, old_pad, other_pad = SoftPad(), SoftPad(), SoftPad()
    pair(sup, desk, 4, old_pad)
    pair(sup, desk, 4, pad)  # old_pad is now unpaired
    pair(sup, other, 5, other_pad)
    stranger = Ed25519PrivateKey.generate()

    # Open cases with their challenges: every forgery below targets a case that a genuine
    # rating could still rate, so the only reason for refusal is the forgery itself.
    pool = open_cases(desk, 4, 12)
    chal = {c: challenge(desk, c) for c in pool}
    # Some rated cases: their messages are replayed, their (closed) challenges reused.
    rated = open_cases(desk, 4, 3)
    rated_msgs = []
    for c in rated:
        m = pad.rating(case_id=c, window_no=4, challenge=challenge(desk, c))
        assert desk.post("/ratings", json=m, key=m["id"]).status_code == 201
        rated_msgs.append(m)
    foreign = open_cases(other, 5, 2)
    foreign_ch = [challenge(other, c) for c in foreign]

    def fields() -> dict[str, Any]:
        level = rng.choice(LEVELS)
        rs = tuple(rng.sample(reasons, rng.randint(1, 2))) if level in LEVELS[3:] else ()
        comment = "".join(rng.choice("好差慢ab c\n\"\\") for _ in range(rng.randint(0, 8)))
        c = rng.choice(pool)
        return {"case_id": c, "window_no": 4, "level": level, "reasons": rs, "comment": comment}

    def fresh(**over: Any) -> dict[str, Any]:
        f = fields()
        f.update(over)
        f.setdefault("challenge", chal[f["case_id"]])
        return f

    def wrong_key() -> dict[str, Any]:
        return pad.rating(**fresh(), counter=pad.counter + 1, signer=stranger)

    def tampered() -> dict[str, Any]:
        m = pad.rating(**fresh(), counter=pad.counter + 1)
        k = rng.choice(["level", "comment", "case_id", "pad_counter", "rated_at", "reasons"])
        m[k] = {"level": "very_dissatisfied" if m["level"] != "very_dissatisfied" else "satisfied",
                "comment": m["comment"] + "x", "case_id": rng.choice([c for c in pool if c != m["case_id"]]),
                "pad_counter": m["pad_counter"] + 1, "rated_at": "2026-11-25T01:02:03.004Z",
                "reasons": sorted(set(m["reasons"]) ^ {reasons[0]}) or [reasons[1]]}[k]
        if m["level"] in LEVELS[3:] and not m["reasons"]:
            m["reasons"] = [reasons[2]]
        return m

    def unpaired_pad() -> dict[str, Any]:
        who = rng.choice([old_pad, SoftPad(), other_pad])
        return who.rating(**fresh(), counter=10**6 + rng.randint(0, 10**6))

    def replayed() -> dict[str, Any]:
        return dict(rng.choice(rated_msgs))

    def stale_or_foreign_challenge() -> dict[str, Any]:
        kind = rng.randrange(3)
        ch = (rng.choice(rated_msgs)["challenge"] if kind == 0 else
              rng.choice(foreign_ch) if kind == 1 else uuid.uuid4().hex[:22])
        return pad.rating(**fresh(challenge=ch), counter=pad.counter + 1 + rng.randint(0, 3))

    def old_counter() -> dict[str, Any]:
        return pad.rating(**fresh(), counter=rng.randint(0, pad.counter))

    def desk_unsigned() -> dict[str, Any]:
        f = fresh()
        src = rng.choice(["desk", "pad"])
        return {"id": str(uuid.uuid4()), "case_id": f["case_id"], "window_no": 4,
                "level": f["level"], "reasons": list(f["reasons"]), "comment": f["comment"],
                "source": src, "rated_at": "2026-11-25T09:30:00Z",
                "pad_id": pad.pad_id if src == "pad" and rng.random() < 0.5 else None,
                "pad_counter": None, "challenge": None, "signature": None}

    kinds = {"wrong_key": wrong_key, "tampered": tampered, "unpaired_pad": unpaired_pad,
             "replayed": replayed, "stale_or_foreign_challenge": stale_or_foreign_challenge,
             "old_counter": old_counter, "desk_unsigned": desk_unsigned}
    before = _rows(fresh_hall_server, "SELECT count(*) AS n FROM ratings")[0]["n"]
    accepted: dict[str, int] = {}
    codes: dict[str, set[str]] = {}
    for name, make in kinds.items():
        accepted[name] = 0
        codes[name] = set()
        for i in range(N):
            m = make()
            # Half of the signed forgeries go the pad's own way (straight to the hall server's
            # /pad/api/rating), half through a desk session's /ratings: both are refused alike.
            # (A replay of a stored message on the pad's route is answered with its receipt,
            # idempotently: tests/security/test_pad_trust.py.)
            if i % 2 and name not in ("desk_unsigned", "replayed"):
                r = pad_post(url, "/pad/api/rating", pad.pad_body(m))
            else:
                r = desk.post("/ratings", json=m, key=str(uuid.uuid4()))
            if r.status_code < 300:
                accepted[name] += 1
            else:
                assert r.status_code in (400, 403, 409, 422), r.text
                if r.json()["error"]["code"] != "bad_field":  # e.g. counter 0: refused on its type
                    codes[name].add(r.json()["error"]["code"])
    assert accepted == {k: 0 for k in kinds}, accepted
    assert _rows(fresh_hall_server, "SELECT count(*) AS n FROM ratings")[0]["n"] == before
    assert codes["wrong_key"] == {"bad_signature"}
    assert codes["tampered"] == {"bad_signature"}
    assert codes["unpaired_pad"] == {"pad_not_paired"}
    assert codes["replayed"] == {"case_already_rated"}
    assert codes["stale_or_foreign_challenge"] == {"stale_challenge"}
    assert codes["old_counter"] == {"counter_replayed"}
    assert codes["desk_unsigned"] == {"signature_required"}
    # The pool was rateable all along: a genuine rating of each case is accepted.
    for c in pool:
        m = pad.rating(case_id=c, window_no=4, challenge=chal[c])
        r = desk.post("/ratings", json=m, key=m["id"])
        assert r.status_code == 201 and r.json()["assurance"] == "signed", r.text
