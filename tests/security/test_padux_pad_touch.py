"""Who may keep a pad's rating open (POST /pad/api/touch) or reopen it (POST /pad/api/reopen),
on a real demo server on loopback: a paired pad cannot act on another window's case or reopen an
open one (the live attacks of tests/security/attacks_padux.py run in test_live_attacks.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pad_helpers import open_cases, pad_post
from tests.support.server_fixtures import RunningServer, signed_in, start_server_thread


@pytest.fixture
def short_srv(tmp_path: Path) -> Iterator[RunningServer]:
    s = start_server_thread(data_dir=tmp_path / "hall", demo=True, pad_rating_seconds=8)
    yield s
    s.stop()


def test_touch_and_reopen_only_for_the_proven_pad_and_its_case(short_srv: RunningServer) -> None:
    """A LAN visitor cannot keep a window's rating open or reopen it; a paired pad cannot for
    another window's case, nor reopen a case that is not on its QR screen."""
    from tests.pad_helpers import SoftPad, pair

    sup = signed_in(short_srv.url, "8001")
    d1 = signed_in(short_srv.url, "1001", 1)
    d2 = signed_in(short_srv.url, "1002", 2)
    p1, p2 = SoftPad(), SoftPad()
    pair(sup, d1, 1, p1)
    pair(sup, d2, 2, p2)
    (c1,) = open_cases(d1, 1, 1)
    assert d1.post(f"/cases/{c1}/rating-challenge").status_code == 200
    anon = pad_post(short_srv.url, "/pad/api/touch", {"case_id": c1, "pad_id": p1.pad_id, "t": 1, "sig": "AA"})
    assert anon.status_code == 403
    other = pad_post(short_srv.url, "/pad/api/touch", {"case_id": c1, **p2.proof()})
    assert other.status_code == 409 and other.json()["error"]["code"] == "not_offered"
    early = pad_post(short_srv.url, "/pad/api/reopen", {"case_id": c1, **p1.proof()})
    assert early.status_code == 409  # still open: nothing to reopen
    ok = pad_post(short_srv.url, "/pad/api/touch", {"case_id": c1, **p1.proof()})
    assert ok.status_code == 200, ok.text
    assert ok.json()["open_until_ms"] - ok.json()["server_ms"] == 8000
