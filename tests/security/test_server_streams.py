"""Finding 7: a live event stream ends when its session ends (sign-out, disabled account, window
taken over by a new sign-in of the same staff elsewhere), and one session cannot hold open an
unbounded number of streams."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.server_fixtures import Api, RunningServer, signed_in, start_server_thread


class Stream:
    """An SSE response read on a thread: each `event:` name lands in `.events`; `.ended` is
    set when the server closes the stream."""

    def __init__(self, url: str, token: str) -> None:
        self.events: queue.Queue[str] = queue.Queue()
        self.ended = threading.Event()
        self.s = requests.Session()
        self.s.trust_env = False
        self.resp = self.s.get(url + "/api/v1/events", stream=True, timeout=(5, 60),
                               headers={"Authorization": f"Bearer {token}"})
        self.status = self.resp.status_code
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.resp.iter_lines(decode_unicode=True):
                if line and line.startswith("event:"):
                    self.events.put(line.split(":", 1)[1].strip())
        except (requests.RequestException, AttributeError, ValueError):  # closed under the reader
            pass
        self.ended.set()

    def close(self) -> None:
        self.resp.close()
        self.s.close()


@pytest.fixture
def srv(tmp_path: Any) -> Iterator[RunningServer]:
    s = start_server_thread(data_dir=tmp_path / "hall", demo=True, ping_seconds=0.5)
    yield s
    s.stop()


def _drain_until_quiet(st: Stream) -> None:
    while True:
        try:
            st.events.get(timeout=0.3)
        except queue.Empty:
            return


def test_stream_ends_when_the_staff_is_disabled(srv: RunningServer) -> None:
    victim = signed_in(srv.url, "1004")  # no window: a look-up session
    st = Stream(srv.url, victim.token or "")
    assert st.status == 200
    Api(srv.url).post("/tickets", json={"category": "A"})
    assert st.events.get(timeout=10) == "ticket.issued"  # the stream works
    it = signed_in(srv.url, "9001")
    assert it.s.patch(srv.url + "/api/v1/admin/staff/1004", json={"disabled": True},
                      headers=it.headers()).status_code == 200
    assert st.ended.wait(5), "stream still open 5 s after the staff was disabled"  # before: open
    _drain_until_quiet(st)
    Api(srv.url).post("/tickets", json={"category": "A"})
    with pytest.raises(queue.Empty):
        st.events.get(timeout=1)
    st.close()


def test_stream_ends_at_logout_even_with_no_events(srv: RunningServer) -> None:
    desk = signed_in(srv.url, "1002", 2)
    st = Stream(srv.url, desk.token or "")
    assert st.status == 200
    time.sleep(0.3)
    assert desk.post("/auth/logout").status_code == 204
    assert st.ended.wait(5), "stream outlived its logout"  # before: kept pinging
    st.close()


def test_streams_per_session_are_capped(srv: RunningServer) -> None:
    desk = signed_in(srv.url, "1003", 3)
    streams = [Stream(srv.url, desk.token or "") for _ in range(12)]
    try:
        codes = [s.status for s in streams]
        assert 429 in codes, codes  # before: 12 x 200
        assert codes.count(200) <= 4, codes
        refused = next(s for s in streams if s.status == 429)
        err = refused.resp.json()["error"]
        assert err["code"] == "too_many_streams" and err["message_zh"] and err["message_en"]
        # another session is not affected
        other = Stream(srv.url, signed_in(srv.url, "1005", 5).token or "")
        assert other.status == 200
        other.close()
    finally:
        for s in streams:
            s.close()
    # closing streams frees their slots
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        again = Stream(srv.url, desk.token or "")
        ok = again.status == 200
        again.close()
        if ok:
            break
        time.sleep(0.2)
    assert ok
