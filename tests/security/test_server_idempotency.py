"""Finding 4: an Idempotency-Key belongs to its caller. Another window's staff cannot replay it,
an anonymous caller cannot burn a desk's key, and a sign-in reply is never replayed to a caller
whose refresh token was rotated away."""

from __future__ import annotations

import uuid

from tests.pad_helpers import open_cases
from tests.support.server_fixtures import DEMO_PASSWORD, Api, RunningServer, signed_in


def test_another_windows_staff_cannot_replay_a_key(fresh_hall_server: RunningServer) -> None:
    url = fresh_hall_server.url
    w1 = signed_in(url, "1001", 1)
    w3 = signed_in(url, "1003", 3)
    w1.post("/tickets", json={"category": w1.get("/windows/1").json()["categories"][0]})
    key = str(uuid.uuid4())
    first = w1.post("/windows/1/call-next", key=key)
    assert first.status_code == 200, first.text
    stolen = w3.post("/windows/1/call-next", key=key)
    # before: 200 with window 1's ticket, replayed
    assert stolen.headers.get("Idempotent-Replayed") is None
    assert stolen.status_code == 403 and stolen.json()["error"]["code"] in ("window_not_held", "forbidden"), stolen.text
    # the owner still gets its answer replayed
    again = w1.post("/windows/1/call-next", key=key)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()


def test_an_anonymous_ticket_cannot_burn_a_ratings_key(fresh_hall_server: RunningServer) -> None:
    url = fresh_hall_server.url
    w2 = signed_in(url, "1002", 2)
    case_id = open_cases(w2, 2, 1)[0]
    rating_id = str(uuid.uuid4())  # seen on the LAN: rating ids travel in the outbox's requests
    anon = Api(url)
    assert anon.post("/tickets", json={"category": "A"}, key=rating_id).status_code == 201
    body = {"id": rating_id, "case_id": case_id, "window_no": 2, "level": "satisfied",
            "source": "desk", "rated_at": "2026-11-25T09:30:00Z"}
    r = w2.post("/ratings", json=body, key=rating_id)
    assert r.status_code == 201, r.text  # before: 422 idempotency_mismatch, never retried


def test_a_rotated_refresh_token_and_its_old_key_get_no_tokens(fresh_hall_server: RunningServer) -> None:
    url = fresh_hall_server.url
    desk = Api(url)
    login = desk.post("/auth/login", json={"staff_no": "1005", "password": DEMO_PASSWORD, "window_no": 5})
    old_refresh = login.json()["refresh_token"]
    key = str(uuid.uuid4())
    r1 = desk.post("/auth/refresh", json={"refresh_token": old_refresh}, key=key)
    assert r1.status_code == 200
    # the desk rotates again (its next refresh): the first reply's tokens are history
    r2 = desk.post("/auth/refresh", json={"refresh_token": r1.json()["refresh_token"]})
    assert r2.status_code == 200
    # someone who kept the old refresh token and saw the key on the LAN
    thief = Api(url)
    stolen = thief.post("/auth/refresh", json={"refresh_token": old_refresh}, key=key)
    assert stolen.status_code in (401, 409), stolen.text  # before: 200 with fresh-looking tokens
    assert "access_token" not in stolen.text


def test_a_sign_in_reply_is_not_replayed_after_logout(fresh_hall_server: RunningServer) -> None:
    url = fresh_hall_server.url
    key = str(uuid.uuid4())
    body = {"staff_no": "1006", "password": DEMO_PASSWORD, "window_no": 6}
    first = Api(url).post("/auth/login", json=body, key=key)
    assert first.status_code == 200
    desk = Api(url, first.json()["access_token"])
    assert desk.post("/auth/logout").status_code == 204
    again = Api(url).post("/auth/login", json=body, key=key)
    # never the revoked session's tokens again
    assert again.status_code in (200, 409), again.text
    if again.status_code == 200:
        assert again.json()["access_token"] != first.json()["access_token"]
        assert again.headers.get("Idempotent-Replayed") is None


def test_a_window_pcs_key_is_replayed_after_a_shift_change(fresh_hall_server: RunningServer) -> None:
    """The outbox of a window PC re-sends under whoever is signed in there now: the same
    window's key is replayed (the rating is not made twice, nor refused as a duplicate)."""
    url = fresh_hall_server.url
    early = signed_in(url, "1001", 1)
    case_id = open_cases(early, 1, 1)[0]
    rid = str(uuid.uuid4())
    body = {"id": rid, "case_id": case_id, "window_no": 1, "level": "satisfied",
            "source": "desk", "rated_at": "2026-11-25T09:30:00Z"}
    first = early.post("/ratings", json=body, key=rid)
    assert first.status_code == 201
    assert early.post("/auth/logout").status_code == 204
    late = signed_in(url, "1002", 1)  # the next shift at the same window PC
    again = late.post("/ratings", json=body, key=rid)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true", again.text
    assert again.json() == first.json()


def test_a_device_secret_is_not_replayed_after_the_device_was_replaced(fresh_hall_server: RunningServer) -> None:
    url = fresh_hall_server.url
    it = signed_in(url, "9001")
    code1 = it.post("/admin/enrollment-codes", json={"window_no": 7}).json()["code"]
    key = str(uuid.uuid4())
    body = {"enrollment_code": code1, "window_no": 7, "hostname": "pc-7"}
    first = Api(url).post("/devices/enroll", json=body, key=key)
    assert first.status_code == 200, first.text
    assert Api(url).post("/devices/enroll", json=body, key=key).json() == first.json()  # a lost reply
    code2 = it.post("/admin/enrollment-codes", json={"window_no": 7}).json()["code"]
    r = Api(url).post("/devices/enroll", json={"enrollment_code": code2, "window_no": 7, "hostname": "pc-7b",
                                               "replace": True})
    assert r.status_code == 200, r.text
    stale = Api(url).post("/devices/enroll", json=body, key=key)
    assert stale.status_code == 409 and "device_secret" not in stale.text, stale.text
