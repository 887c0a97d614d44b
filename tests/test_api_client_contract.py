"""Contract tests: HallClient against the real reference hall server on loopback.

Every test runs twice, on SQLite and on PostgreSQL (marker ``postgres``; HALL_TEST_PG_URL), each
time on a freshly seeded demo hall with no arrival simulator, so the queue holds only what the
test issues. Credentials are the demo ones (staff 1001.. at window 1.., supervisor 8001, IT
admin 9001, password demo1234).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from api_client import HallClient, ServerEvent, errors
from api_client.models import RatingSubmission
from tests.support.server_fixtures import (
    DEMO_PASSWORD,
    RunningServer,
    drop_pg_db,
    fresh_pg_url,
    start_server_thread,
)

PW = DEMO_PASSWORD

MakeServer = Callable[..., RunningServer]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeServer]:
    """Start a fresh demo hall with optional server settings, on the parametrised database."""
    started: list[RunningServer] = []
    dbs: list[str] = []

    def make(**settings: Any) -> RunningServer:
        data_dir = tmp_path / f"hall{len(started)}"
        if request.param == "postgres":
            base = os.environ.get("HALL_TEST_PG_URL")
            if not base:
                pytest.skip("HALL_TEST_PG_URL not set")
            url = fresh_pg_url(base)
            dbs.append(url)
            srv = start_server_thread(db_url=url, data_dir=data_dir, demo=True, **settings)
        else:
            srv = start_server_thread(data_dir=data_dir, demo=True, **settings)
        started.append(srv)
        return srv

    yield make
    for s in started:
        s.stop()
    for u in dbs:
        drop_pg_db(u)


@pytest.fixture
def server(make_server: MakeServer) -> RunningServer:
    return make_server()


@pytest.fixture
def clients(server: RunningServer) -> Iterator[Callable[[], HallClient]]:
    made: list[HallClient] = []

    def make() -> HallClient:
        c = HallClient(server.url, timeout=(3.05, 20.0))
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def signed_in(
    clients: Callable[[], HallClient], staff_no: str, window_no: int | None
) -> HallClient:
    c = clients()
    c.login(staff_no, PW, window_no)
    return c


# --- sessions ---------------------------------------------------------------------------------


def test_health_hall_and_structure(clients) -> None:
    c = signed_in(clients, "1001", 1)
    h = c.health()
    assert h.status == "ok" and h.time.tzinfo is dt.UTC
    hall = c.hall()
    assert hall.code == "GXQ" and hall.rules.recall_limit >= 1
    assert {cat.code for cat in hall.categories} >= {"A", "B"}
    assert hall.pause_reasons and len(hall.windows) >= 12
    assert [w.no for w in c.windows()] == [w.no for w in hall.windows]
    w1 = c.window(1)
    assert w1.state == "open" and w1.staff is not None and w1.staff.staff_no == "1001"
    assert c.categories() == list(hall.categories)
    photo = c.staff_photo("1001")
    assert photo.startswith(b"\x89PNG")
    with pytest.raises(errors.NotFoundError) as ei:
        c.window(999)
    assert ei.value.code == "not_found" and ei.value.request_id


def test_login_me_refresh_logout(clients) -> None:
    c = clients()
    with pytest.raises(errors.AuthenticationError) as ei:
        c.login("1001", "wrong-password", 1)
    assert ei.value.code == "bad_credentials" and ei.value.message_zh
    res = c.login("1001", PW, 1)
    assert res.window is not None and res.window.state == "open"
    assert res.expires_in > 0 and "access_token" not in repr(res)
    me = c.me()
    assert me.staff.staff_no == "1001" and me.window is not None and me.window.no == 1
    old = c._refresh_token
    again = c.refresh()
    assert again.staff.staff_no == "1001" and c._refresh_token != old  # rotated
    assert c.me().staff.staff_no == "1001"
    # Someone else cannot take window 1 while 1001 is signed in there.
    with pytest.raises(errors.ConflictError) as ei2:
        clients().login("1002", PW, 1)
    assert ei2.value.code == "window_in_use"
    c.logout()
    assert not c.signed_in
    with pytest.raises(errors.AuthenticationError):
        c.me()
    sup = signed_in(clients, "8001", None)
    assert sup.window(1).state == "closed"


def test_expired_access_token_is_refreshed_transparently(make_server: MakeServer) -> None:
    srv = make_server(access_token_seconds=1)
    with HallClient(srv.url) as c:
        c.login("1001", PW, 1)
        token = c._access_token
        # Wait for the condition (the server refusing the token), not for a fixed time.
        deadline = time.monotonic() + 30
        with requests.Session() as raw:
            raw.trust_env = False
            while time.monotonic() < deadline:
                r = raw.get(
                    srv.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=5
                )
                if r.status_code == 401:
                    assert r.json()["error"]["code"] == "token_expired"
                    break
                time.sleep(0.1)
            else:
                pytest.fail("the access token never expired")
        assert c.me().staff.staff_no == "1001"  # refreshed and repeated inside
        assert c._access_token != token


def test_device_enrollment_and_required_device(make_server: MakeServer) -> None:
    srv = make_server(require_device=True)
    with HallClient(srv.url) as it, HallClient(srv.url) as desk:
        it.login("9001", PW)
        code = it.admin_enrollment_code(2)
        assert code.window_no == 2 and code.expires_at > dt.datetime.now(dt.UTC)
        with pytest.raises(errors.PermissionDeniedError) as ei:
            desk.login("1002", PW, 2)
        assert ei.value.code == "device_required"
        cred = desk.enroll(code.code, 2, "pc-window-2")
        assert cred.window_no == 2 and cred.device_secret not in repr(cred)
        with pytest.raises(errors.ApiStatusError):
            desk.enroll(code.code, 2, "pc-window-2")  # single use
        desk.set_device_credential(cred.device_id, cred.device_secret)
        assert desk.login("1002", PW, 2).window is not None


# --- catalog ----------------------------------------------------------------------------------


def test_matters_paging_and_updated_since(server: RunningServer, clients) -> None:
    c = signed_in(clients, "1001", 1)
    page = c.matters_page(limit=100)
    assert len(page.items) == 100 and page.next_after == page.items[-1].code
    full = c.sync_matters()
    codes = [m.code for m in full.items]
    assert len(codes) == 823 and codes == sorted(codes) and len(set(codes)) == 823
    assert full.catalog_version >= 1 and full.next_after is None
    assert c.sync_matters(updated_since=full.catalog_version).items == ()
    one = c.matter(codes[0])
    assert one == full.items[0] and one.checklist
    # An IT import changes one matter: updated_since then returns exactly that one.
    it = signed_in(clients, "9001", None)
    changed = dict(_matter_json(server, codes[5]), name_zh="改过的名称")
    r = requests.post(
        server.url + "/api/v1/admin/matters/import",
        json=[changed],
        headers={
            "Authorization": f"Bearer {it._access_token}",
            "Idempotency-Key": str(uuid.uuid4()),
        },
        timeout=20,
    )
    assert r.status_code == 200, r.text
    delta = c.sync_matters(updated_since=full.catalog_version)
    assert [m.code for m in delta.items] == [codes[5]]
    assert delta.items[0].name_zh == "改过的名称" and delta.catalog_version > full.catalog_version
    with pytest.raises(errors.NotFoundError):
        c.matter("no-such-matter")


def _matter_json(server: RunningServer, code: str) -> dict[str, Any]:
    with requests.Session() as s:
        s.trust_env = False
        tok = s.post(
            server.url + "/api/v1/auth/login", json={"staff_no": "8001", "password": PW}, timeout=10
        ).json()["access_token"]
        r = s.get(
            server.url + f"/api/v1/matters/{code}",
            headers={"Authorization": f"Bearer {tok}"},
            timeout=10,
        )
        return dict(r.json())


# --- the queue --------------------------------------------------------------------------------


def test_ticket_lifecycle_and_conflicts(clients) -> None:
    w1 = signed_in(clients, "1001", 1)
    cat = w1.window(1).categories[0]
    # Window 2 serves the same category? find one that does, to race for a ticket.
    other_no = next(w.no for w in w1.windows() if cat in w.categories and w.no != 1)
    w2 = signed_in(clients, f"{1000 + other_no}", other_no)

    kiosk = clients()  # POST /tickets needs no sign-in
    t = kiosk.issue_ticket(cat)
    assert t.state == "waiting" and t.number.startswith(cat) and t.window_no is None
    assert [x.id for x in w1.queue(1).waiting] == [t.id]

    called = w1.call_next(1)
    assert called is not None and called.id == t.id and called.state == "called"
    assert called.window_no == 1 and called.called_at is not None
    # Window 2 cannot take it any more, and window 1 cannot call twice.
    with pytest.raises(errors.ConflictError) as ei:
        w2.call_ticket(t.id, other_no)
    assert ei.value.code == "ticket_taken"
    assert w2.call_next(other_no) is None  # nobody else is waiting
    with pytest.raises(errors.ConflictError) as ei:
        w1.call_next(1)
    assert ei.value.code == "window_busy"
    with pytest.raises(errors.ConflictError) as ei:
        w2.recall(t.id)
    assert ei.value.code == "not_your_ticket"
    with pytest.raises(errors.ConflictError) as ei:
        w1.no_show(t.id)
    assert ei.value.code == "no_show_too_early"
    assert {"recalls_needed", "seconds_left"} <= set(ei.value.details)

    assert w1.recall(t.id).recalls == 1
    snap = w1.queue(1)
    assert snap.current is not None and snap.current.id == t.id and snap.waiting == ()

    started = w1.start_service(t.id)
    assert started.ticket.state == "serving" and started.case.ticket_id == t.id
    assert started.case.window_no == 1 and started.case.staff_no == "1001"
    with pytest.raises(errors.ConflictError) as ei:
        w1.recall(t.id)
    assert ei.value.code == "illegal_transition" and ei.value.details.get("state") == "serving"

    matter = w1.sync_matters().items[0]
    case = w1.set_case_matter(started.case.id, matter.code)
    assert case.matter_code == matter.code
    assert [m.item_id for m in case.materials] == [i.id for i in matter.checklist]
    case = w1.set_material(case.id, matter.checklist[0].id, "received", "original seen")
    assert case.materials[0].status == "received"
    case = w1.set_case_notes(case.id, "备注 notes")
    assert w1.case(case.id).notes == "备注 notes"

    done = w1.complete(t.id, "completed", note="ok")
    assert done.ticket.state == "completed" and done.ticket.finished_at is not None
    assert done.case.outcome == "completed" and done.case.completed_at is not None
    assert w1.ticket(t.id).state == "completed"
    with pytest.raises(errors.UnprocessableEntityError):
        w1.complete(t.id, "no-such-outcome")


def test_suspend_resume_transfer_and_pause(clients) -> None:
    w1 = signed_in(clients, "1001", 1)
    hall = w1.hall()
    cat = w1.window(1).categories[0]
    t = clients().issue_ticket(cat)
    assert w1.call_next(1) is not None
    w1.start_service(t.id)
    s = w1.suspend(t.id, note="fetching ID card")
    assert s.state == "suspended"
    assert [x.id for x in w1.queue(1).suspended] == [t.id]
    r = w1.resume(t.id, 1)
    assert r.state == "serving"
    back = w1.return_to_queue(t.id)
    assert back.state == "waiting" and back.queued_at == t.queued_at
    again = w1.call_next(1)
    assert again is not None and again.id == t.id
    target = next(w.no for w in hall.windows if w.no != 1)
    moved = w1.transfer(t.id, to_window_no=target)
    assert moved.target_window_no == target and moved.state == "waiting"
    reason = hall.pause_reasons[0].code
    paused = w1.pause_window(1, reason)
    assert paused.state == "paused" and paused.pause_reason_code == reason
    with pytest.raises(errors.ConflictError) as ei:
        w1.call_next(1)
    assert ei.value.code == "window_paused"
    with pytest.raises(errors.UnprocessableEntityError) as ei2:
        w1.pause_window(1, "no-such-reason")
    assert ei2.value.code == "unknown_reason"
    assert w1.resume_window(1).state == "open"
    assert w1.close_window(1).state == "closed"


# --- ratings: idempotent replay ---------------------------------------------------------------


def _served_case(clients, w1: HallClient) -> int:
    t = clients().issue_ticket(w1.window(1).categories[0])
    assert w1.call_next(1) is not None
    return w1.complete(t.id, "completed").case.id


def test_submit_rating_replays_and_refuses_mismatch(clients) -> None:
    w1 = signed_in(clients, "1001", 1)
    case_id = _served_case(clients, w1)
    reasons = w1.rating_reasons()
    assert reasons.reasons and reasons.version
    ch = w1.rating_challenge(case_id)
    assert ch.case_id == case_id and w1.rating_challenge(case_id).challenge == ch.challenge
    rating = RatingSubmission(
        id=str(uuid.uuid4()),
        case_id=case_id,
        window_no=1,
        level="very_satisfied",
        rated_at=dt.datetime.now(dt.UTC),
        source="desk",
        reasons_version=reasons.version,
    )
    first = w1.submit_rating(rating, idempotency_key=rating.id)
    assert first.case_id == case_id and first.level == "very_satisfied"
    assert first.assurance in ("signed", "unsigned")
    # The outbox re-sends after a lost answer: same key, same body -> the same receipt.
    again = w1.submit_rating(rating, idempotency_key=rating.id)
    assert again == first
    # Same key, different body: refused, never a second rating.
    changed = RatingSubmission(**{**_fields(rating), "level": "satisfied"})
    with pytest.raises(errors.UnprocessableEntityError) as ei:
        w1.submit_rating(changed, idempotency_key=rating.id)
    assert ei.value.code == "idempotency_mismatch" and not ei.value.retryable
    # A second rating for the same case under a new key: 409.
    other = RatingSubmission(**{**_fields(rating), "id": str(uuid.uuid4())})
    with pytest.raises(errors.ConflictError) as ei2:
        w1.submit_rating(other, idempotency_key=other.id)
    assert ei2.value.code == "case_already_rated"
    # A bad rating needs a reason or a comment.
    case2 = _served_case(clients, w1)
    bad = RatingSubmission(
        id=str(uuid.uuid4()), case_id=case2, window_no=1, level="very_dissatisfied",
        rated_at=dt.datetime.now(dt.UTC), source="desk", reasons_version=reasons.version,
    )  # fmt: skip
    with pytest.raises(errors.UnprocessableEntityError) as ei3:
        w1.submit_rating(bad, idempotency_key=bad.id)
    assert ei3.value.code == "reason_required"
    today = w1.stats(window_no=1).date
    assert w1.window_rating_ids(1, today) == [rating.id]
    stats = w1.stats(today, 1)
    assert stats.served == 2 and stats.ratings == 1 and len(stats.tickets_per_hour) == 24
    assert stats.ratings_by_level["very_satisfied"] == 1 and stats.satisfaction_rate == 1.0


def _fields(r: RatingSubmission) -> dict[str, Any]:
    return {f: getattr(r, f) for f in r.__dataclass_fields__}


# --- documents --------------------------------------------------------------------------------


def test_document_upload_resumes_after_a_partial_send(server: RunningServer, clients) -> None:
    w1 = signed_in(clients, "1001", 1)
    t = clients().issue_ticket(w1.window(1).categories[0])
    assert w1.call_next(1) is not None
    case = w1.start_service(t.id).case
    data = b"%PDF-1.4\n" + os.urandom(300_000) + b"\n%%EOF\n"
    digest = hashlib.sha256(data).hexdigest()
    up = w1.create_upload(case.id, "m1", "id-card.pdf", "application/pdf", len(data), digest)
    assert up.offset == 0 and up.size == len(data)
    first = 100_000
    assert w1.upload_chunk(up.upload_id, 0, data[:first]) == first
    # The desk "crashes" here. A new client asks where to resume and finishes.
    w1b = signed_in(clients, "1001", 1)
    assert w1b.upload_offset(up.upload_id) == first
    with pytest.raises(errors.ConflictError) as ei:
        w1b.upload_chunk(up.upload_id, 0, data[:first])  # a stale offset
    assert ei.value.code == "offset_mismatch" and ei.value.details["offset"] == first
    status = w1b.upload_status(up.upload_id)
    assert (status.offset, status.complete, status.receipt) == (first, False, None)
    off = first
    while off < len(data):
        off = w1b.upload_chunk(up.upload_id, off, data[off : off + 64_000])
    status = w1b.upload_status(up.upload_id)
    assert status.complete and status.receipt is not None
    assert status.receipt.sha256 == digest and status.receipt.size == len(data)
    with pytest.raises(errors.UnprocessableEntityError) as ei2:
        w1b.create_upload(case.id, "m1", "x.exe", "application/x-msdownload", 10, digest)
    assert ei2.value.code == "unsupported_type"


# --- live events ------------------------------------------------------------------------------


def test_events_deliver_ticket_issued(clients) -> None:
    w1 = signed_in(clients, "1001", 1)
    cat = w1.window(1).categories[0]
    stream = w1.events(window_no=1, last_event_id="0")
    states: list[str] = []
    stream.on_state = states.append
    got: list[ServerEvent] = []
    issued: list[int] = []

    def consume() -> None:
        for e in stream:
            got.append(e)
            if e.type == "ticket.issued":  # the fresh hall has no other tickets than ours
                stream.close()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    issued.append(clients().issue_ticket(cat).id)
    reader.join(30)  # a hang guard: the event arrives at once
    assert not reader.is_alive()
    ours = [e for e in got if e.type == "ticket.issued" and e.ticket and e.ticket.id == issued[0]]
    assert len(ours) == 1 and ours[0].at is not None and ours[0].ticket is not None
    assert ours[0].ticket.category == cat
    assert stream.last_event_id is not None and int(stream.last_event_id) >= int(ours[0].id)
    assert states[:2] == ["connecting", "connected"] and states[-1] == "disconnected"
    # Resuming from before that event replays it: nothing is missed across a reconnect.
    before = str(int(ours[0].id) - 1)
    again = w1.events(window_no=1, last_event_id=before)
    first = next(iter(again))
    again.close()
    assert first.id == ours[0].id and first.ticket == ours[0].ticket
