"""Who may do what on the reference server, over HTTP on loopback: ratings only for the caller's
own window and that window's cases (signed where a pad is paired), case edits only by the
window that holds the case, and a token whose session no longer holds its window acts for it no
more. Supervisors and IT act for any window."""

from __future__ import annotations

import uuid
from typing import Any

from tests.pad_helpers import SoftPad, challenge, open_cases, pair
from tests.support.server_fixtures import RunningServer, signed_in


def rating(case_id: int, window_no: int, source: str = "desk", **kw: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "case_id": case_id, "window_no": window_no,
            "level": "satisfied", "source": source, "rated_at": "2026-11-25T09:30:00Z", **kw}


def code(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    e = r.json()["error"]
    assert e["message_zh"] and e["message_en"]
    return str(e["code"])


def test_ratings_only_for_own_window_and_its_cases(hall_server: RunningServer) -> None:
    url = hall_server.url
    w6 = signed_in(url, "1006", 6)
    w7 = signed_in(url, "1007", 7)
    sup = signed_in(url, "8001")
    a, b, c, d = open_cases(w6, 6, 4)
    (other,) = open_cases(w7, 7, 1)
    # Window 7 may not rate for window 6, nor rate window 6's case as its own.
    body = rating(a, 6)
    assert code(w7.post("/ratings", json=body, key=body["id"]), 403) == "forbidden"
    body = rating(a, 7)
    assert code(w7.post("/ratings", json=body, key=body["id"]), 403) == "wrong_window"
    # Window 6 may not pass window 7's case off as its own either.
    body = rating(other, 6)
    assert code(w6.post("/ratings", json=body, key=body["id"]), 403) == "wrong_window"
    # "later" ratings come only from the rate-later page, never through the API.
    body = rating(a, 6, "later")
    assert code(w6.post("/ratings", json=body, key=body["id"]), 403) == "forbidden"
    # Nothing above was stored: the case is still rateable, unsigned, with no pad paired.
    for case, src in ((a, "desk"), (b, "second_screen"), (c, "serial")):
        body = rating(case, 6, src)
        r = w6.post("/ratings", json=body, key=body["id"])
        assert r.status_code == 201 and r.json()["assurance"] == "unsigned", r.text
    # A supervisor may record a rating for any window (its case must still be that window's).
    body = rating(d, 6)
    assert sup.post("/ratings", json=body, key=body["id"]).status_code == 201


def test_paired_window_accepts_only_pad_signed_ratings(hall_server: RunningServer) -> None:
    url = hall_server.url
    sup = signed_in(url, "8001")
    w8 = signed_in(url, "1008", 8)
    pad = SoftPad()
    pair(sup, w8, 8, pad)
    cases = open_cases(w8, 8, 2)
    for src in ("desk", "second_screen", "serial"):
        body = rating(cases[0], 8, src)
        assert code(w8.post("/ratings", json=body, key=body["id"]), 403) == "signature_required"
    body = pad.rating(case_id=cases[0], window_no=8, challenge=challenge(w8, cases[0]))
    r = w8.post("/ratings", json=body, key=body["id"])
    assert r.status_code == 201 and r.json()["assurance"] == "signed", r.text


def _open_case(desk: Any, window_no: int) -> int:
    """A case being served at the window (started, not completed)."""
    cats = desk.get(f"/windows/{window_no}").json()["categories"]
    tk = desk.post("/tickets", json={"category": cats[0]}).json()
    assert desk.post(f"/tickets/{tk['id']}/call", json={"window_no": window_no}).status_code == 200
    r = desk.post(f"/tickets/{tk['id']}/start")
    assert r.status_code == 200, r.text
    return int(r.json()["case"]["id"])


def test_case_edits_only_by_the_cases_window(hall_server: RunningServer) -> None:
    url = hall_server.url
    w9 = signed_in(url, "1009", 9)
    w10 = signed_in(url, "1010", 10)
    sup = signed_in(url, "8001")
    case = _open_case(w9, 9)
    before = w9.get(f"/cases/{case}").json()
    upload = {"item_id": "x", "filename": "a.pdf", "content_type": "application/pdf", "size": 3,
              "sha256": "0" * 64}
    refused = [
        w10.put(f"/cases/{case}/matter", json={"matter_code": "whatever"}),
        w10.put(f"/cases/{case}/materials/x", json={"status": "received"}),
        w10.put(f"/cases/{case}/notes", json={"notes": "not mine"}),
        w10.post(f"/cases/{case}/documents", json=upload),
    ]
    assert [code(r, 403) for r in refused] == ["forbidden"] * 4
    assert w9.get(f"/cases/{case}").json() == before
    # The case's own window and a supervisor may.
    r = w9.put(f"/cases/{case}/notes", json={"notes": "mine"})
    assert r.status_code == 200 and r.json()["notes"] == "mine", r.text
    r = sup.put(f"/cases/{case}/notes", json={"notes": "checked"})
    assert r.status_code == 200 and r.json()["notes"] == "checked", r.text
    r = w9.post(f"/cases/{case}/documents", json=upload)
    assert r.status_code == 201, r.text


def test_a_token_acts_for_its_window_only_while_its_session_holds_it(hall_server: RunningServer) -> None:
    url = hall_server.url
    old = signed_in(url, "1011", 11)  # A at window 11
    cats = old.get("/windows/11").json()["categories"]
    # A signs in at window 12 (window 11 closes), then B takes window 11.
    moved = signed_in(url, "1011", 12)
    assert old.get("/windows/11").json()["state"] == "closed"
    b = signed_in(url, "1003", 11)
    first = b.post("/tickets", json={"category": cats[0]}).json()
    b.post("/tickets", json={"category": cats[0]})
    # A's old token names window 11 but its session no longer holds it: it acts for it no more.
    assert code(old.post("/windows/11/call-next"), 403) == "window_not_held"
    assert code(old.post(f"/tickets/{first['id']}/call", json={"window_no": 11}), 403) == "window_not_held"
    assert code(old.post("/windows/11/pause", json={"reason_code": "break"}), 403) == "window_not_held"
    assert old.get("/me").json()["window"] is None
    r = b.post("/windows/11/call-next")
    assert r.status_code == 200 and r.json()["ticket"]["id"] == first["id"], r.text
    assert code(old.post(f"/tickets/{first['id']}/recall"), 403) == "window_not_held"
    # A refreshed old token is no better; B and A's new sign-in work as usual.
    refreshed = old.post("/auth/refresh", json={"refresh_token": old.login_body["refresh_token"]})  # type: ignore[index]
    assert refreshed.status_code == 200, refreshed.text
    old.token = refreshed.json()["access_token"]
    assert code(old.post("/windows/11/call-next"), 403) == "window_not_held"
    assert b.post(f"/tickets/{first['id']}/recall").status_code == 200
    assert moved.get("/me").json()["window"]["no"] == 12
    assert moved.post("/windows/12/pause", json={"reason_code": "break"}).status_code == 200


def test_signing_in_again_at_the_same_window_retires_the_old_token(hall_server: RunningServer) -> None:
    url = hall_server.url
    first = signed_in(url, "1004", 3)
    second = signed_in(url, "1004", 3)  # e.g. the desk crashed and was started again
    assert code(first.post("/windows/3/pause", json={"reason_code": "break"}), 403) == "window_not_held"
    assert second.post("/windows/3/pause", json={"reason_code": "break"}).status_code == 200
