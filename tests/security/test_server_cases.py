"""Issue 10/12, server side: only the case's window (or a supervisor / IT) reads a case and its
notes; the server, not the desk, dates an unsigned rating (the desk's claim is kept apart); the
API explorer loads no script from a CDN (off unless a developer turns it on)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from tests.pad_helpers import open_cases
from tests.security.server_helpers import error_code, sql
from tests.support.server_fixtures import Api, RunningServer, signed_in, start_server_thread


def test_only_the_cases_window_reads_it(fresh_hall_server: RunningServer) -> None:
    url = fresh_hall_server.url
    w1 = signed_in(url, "1001", 1)
    case_id = open_cases(w1, 1, 1)[0]
    assert w1.put(f"/cases/{case_id}/notes", json={"notes": "citizen's phone 13812345678"}).status_code == 200
    w3 = signed_in(url, "1003", 3)
    r = w3.get(f"/cases/{case_id}")
    assert error_code(r, 403) in ("window_not_held", "forbidden")  # before: 200 with the notes
    assert "13812345678" not in r.text
    assert w1.get(f"/cases/{case_id}").json()["notes"].startswith("citizen")
    assert signed_in(url, "8001").get(f"/cases/{case_id}").status_code == 200
    nowin = signed_in(url, "1004")  # signed in without a window
    assert nowin.get(f"/cases/{case_id}").status_code == 403


def test_the_server_dates_unsigned_ratings(fresh_hall_server: RunningServer) -> None:
    url = fresh_hall_server.url
    w2 = signed_in(url, "1002", 2)
    case_id = open_cases(w2, 2, 1)[0]
    rid = str(uuid.uuid4())
    claimed = "2020-01-01T03:00:00Z"  # a desk moving a bad rating to a day nobody looks at
    r = w2.post("/ratings", json={"id": rid, "case_id": case_id, "window_no": 2, "level": "very_dissatisfied",
                                  "reasons": [], "comment": "slow", "source": "desk", "rated_at": claimed})
    assert r.status_code == 201, r.text
    rated_ms, claimed_ms, day = sql(fresh_hall_server,
                                    "SELECT rated_ms, claimed_rated_ms, day FROM ratings WHERE id = :i", i=rid)[0]
    now_ms = datetime.now(UTC).timestamp() * 1000
    assert abs(rated_ms - now_ms) < 60_000  # before: 2020-01-01
    assert claimed_ms == int(datetime(2020, 1, 1, 3, tzinfo=UTC).timestamp() * 1000)
    assert day != "2020-01-01"
    # the reconciliation list still finds it on the day the desk says it captured it
    assert rid in w2.get("/windows/2/ratings?date=2020-01-01").json()["ids"]
    today = w2.get("/stats").json()
    assert "2020-01-01" not in str(today.get("date"))


def test_api_explorer_loads_nothing_from_a_cdn(tmp_path: Path) -> None:
    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True)  # also the demo hall
    try:
        api = Api(srv.url)
        page = api.s.get(srv.url + "/docs", timeout=10)
        assert page.status_code == 404  # before: 200, loading swagger-ui from cdn.jsdelivr.net
        assert api.s.get(srv.url + "/redoc", timeout=10).status_code == 404
        assert api.s.get(srv.url + "/openapi.json", timeout=10).status_code == 200  # the contract stays
    finally:
        srv.stop()
