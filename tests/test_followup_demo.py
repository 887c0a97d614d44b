"""The demo follow-ups (hall_server/followup_demo.py): every state, two overdue, one appeal of
each outcome, through the real operations, once."""

from __future__ import annotations

from hall_server.db import Store
from hall_server.followup_demo import PLAN, seed_followups_demo
from tests.followup_helpers import sql
from tests.support.server_fixtures import RunningServer, signed_in


def test_demo_followups_cover_every_state_and_appeal_outcome(fresh_hall_server: RunningServer) -> None:
    srv = fresh_hall_server
    store = Store(srv.db_url)
    try:
        assert seed_followups_demo(store) == len(PLAN)
        assert seed_followups_demo(store) == 0  # once
    finally:
        store.close()
    sup = signed_in(srv.url, "8001")
    items = [f for f in sup.get("/followups").json()["items"] if f["case_no"].startswith("DEMO-FU-")]
    assert len(items) == len(PLAN)
    assert {f["state"] for f in items} == {"open", "assigned", "called_back", "verified", "rectified",
                                           "answered", "closed"}
    assert sorted((f["state"], f["window_no"]) for f in items if f["overdue"]) == [("assigned", 4), ("open", 6)]
    appeals = sup.get("/appeals").json()["items"]
    assert sorted(a["state"] for a in appeals) == ["pending", "rejected", "upheld"]
    upheld = next(a for a in appeals if a["state"] == "upheld")
    assert sql(srv, "SELECT excluded_from_figures FROM ratings WHERE id = :i", i=upheld["rating_id"]) == [
        {"excluded_from_figures": True}]
    closed = next(f for f in items if f["state"] == "closed")
    view = sup.get(f"/followups/{closed['id']}").json()
    ats = [s["at"] for s in view["timeline"]]
    assert ats == sorted(ats) and view["timeline"][0]["step"] == "open" and view["timeline"][-1]["step"] == "review"
    sup.close()
