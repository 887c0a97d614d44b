"""The core against the real reference server on loopback: session, desk, live queue.

Every test signs in at a real server (fixture `fresh_hall_server`, a fresh SQLite hall per test)
and checks what staff would notice: the ticket called, the state shown, the message given.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from api_client import HallClient
from api_client.models import Ticket, Window
from counter_app.config import Settings
from counter_app.core import CounterCore
from counter_app.errors import CounterError, CredentialError, DeskBusyError, IllegalActionError
from counter_app.events import (
    ConnectionChanged,
    DeskChanged,
    Locked,
    QueueChanged,
    SignedIn,
    SignedOut,
    StatsUpdated,
    TicketArrivedInEmptyQueue,
    TicketTakenElsewhere,
    Unlocked,
)
from counter_desk.wiring import build_core

PASSWORD = "demo1234"


def wait_until(pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Wait on a condition (never a sleep-and-hope); the timeout only bounds a hung test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Recorder:
    def __init__(self) -> None:
        self.events: list[object] = []
        self._lock = threading.Lock()

    def __call__(self, ev: object) -> None:
        with self._lock:
            self.events.append(ev)

    def of(self, cls: type) -> list[Any]:
        with self._lock:
            return [e for e in self.events if isinstance(e, cls)]


def make_settings(tmp: Path, url: str, window_no: int, **kw: Any) -> Settings:
    d = tmp / f"w{window_no}-{time.monotonic_ns()}"
    return Settings(server_url=url, window_no=window_no, data_dir=d / "data",
                    log_dir=d / "logs", idle_lock_minutes=kw.pop("idle_lock_minutes", 0), **kw)


@pytest.fixture
def make_core(fresh_hall_server: Any, tmp_path: Path) -> Iterator[Callable[..., CounterCore]]:
    cores: list[CounterCore] = []

    def factory(window_no: int = 1, url: str | None = None, **kw: Any) -> CounterCore:
        core = build_core(make_settings(tmp_path, url or fresh_hall_server.url, window_no, **kw))
        cores.append(core)
        return core

    yield factory
    for c in cores:
        c.close()


@pytest.fixture
def kiosk(fresh_hall_server: Any) -> Iterator[HallClient]:
    # Issues tickets (no auth needed) and looks at windows as the hall's supervisor.
    c = HallClient(fresh_hall_server.url)
    c.login("8001", PASSWORD)
    yield c
    c.close()


def staff_for(window_no: int) -> str:
    return str(1000 + window_no)


def signed_in(make_core: Callable[..., CounterCore], window_no: int = 1,
              **kw: Any) -> CounterCore:
    core = make_core(window_no, **kw)
    core.session.sign_in(staff_for(window_no), PASSWORD)
    return core


def sharing_window(core: CounterCore) -> tuple[int, str]:
    """Another window of the demo hall that serves a category of this one, and that category."""
    assert core.hall is not None
    mine = set(core.desk.window.categories if core.desk.window else [])
    for w in core.hall.windows:
        if w.no != core.settings.window_no:
            common = sorted(mine & set(w.categories))
            if common:
                return w.no, common[0]
    pytest.fail("the demo hall has no two windows sharing a category")


def category(core: CounterCore) -> str:
    w: Window | None = core.desk.window
    assert w is not None and w.categories
    return w.categories[0]


# -- session -------------------------------------------------------------------------------


def test_sign_in_opens_the_window_and_sign_out_closes_it(make_core: Any, kiosk: HallClient
                                                          ) -> None:
    core = make_core(1)
    rec = Recorder()
    core.bus.subscribe(None, rec)
    me = core.session.sign_in("1001", PASSWORD)
    assert me.staff.staff_no == "1001" and me.window is not None and me.window.no == 1
    assert core.desk.state == "idle"
    assert core.hall is not None and core.hall.pause_reasons
    assert rec.of(SignedIn) and rec.of(SignedIn)[0].staff.staff_no == "1001"
    assert kiosk.window(1).state == "open"
    core.session.sign_out()
    assert kiosk.window(1).state == "closed"
    assert rec.of(SignedOut) and core.desk.state == "closed"


def test_wrong_password_is_a_credential_error_in_both_languages(make_core: Any) -> None:
    core = make_core(1)
    with pytest.raises(CredentialError) as ei:
        core.session.sign_in("1001", "wrong-password")
    assert ei.value.code == "bad_credentials"
    assert ei.value.message("zh") and ei.value.message("en")
    assert not core.session.signed_in


def test_idle_lock_and_unlock_reverifies_with_the_server(make_core: Any) -> None:
    core = signed_in(make_core, 1)
    rec = Recorder()
    core.bus.subscribe(None, rec)
    now = [1000.0]
    s = core.session
    s._clock = lambda: now[0]  # drive idleness without waiting
    s.idle_lock_s = 60
    s.touch()
    now[0] += 59
    assert not s.check_idle()
    now[0] += 2
    assert s.check_idle() and rec.of(Locked)
    # The queue keeps running while locked.
    assert core.live.running
    assert s.unlock("not-it") is False and s.locked
    assert s.unlock(PASSWORD) is True and not s.locked and rec.of(Unlocked)


# -- desk ----------------------------------------------------------------------------------


def test_call_start_complete(make_core: Any, kiosk: HallClient) -> None:
    core = signed_in(make_core, 1)
    rec = Recorder()
    core.bus.subscribe(DeskChanged, rec)
    t = kiosk.issue_ticket(category(core))
    called = core.desk.call_next()
    assert called is not None and called.id == t.id
    assert core.desk.state == "calling" and core.desk.ticket == called
    case = core.desk.start()
    assert core.desk.state == "serving" and case.ticket_id == t.id
    res = core.desk.complete("completed")
    assert res.case.outcome == "completed" and res.ticket.state == "completed"
    assert core.desk.state == "idle" and core.desk.ticket is None
    assert [e.state for e in rec.of(DeskChanged)][-3:] == ["calling", "serving", "idle"]
    assert core.desk.call_next() is None  # nobody waiting: a calm None, not an error
    stats = core.refresh_stats()
    assert stats.served >= 1


def test_rejection_needs_a_reason(make_core: Any, kiosk: HallClient) -> None:
    core = signed_in(make_core, 1)
    kiosk.issue_ticket(category(core))
    core.desk.call_next()
    with pytest.raises(IllegalActionError) as ei:
        core.desk.complete("rejected")
    assert "理由" in ei.value.message("zh")
    assert core.desk.state == "calling"  # nothing lost
    res = core.desk.complete("rejected", reason="材料不符合法定形式")
    assert res.case.outcome == "rejected"


def test_recall_to_the_limit_then_no_show(make_core: Any, kiosk: HallClient) -> None:
    core = signed_in(make_core, 1)
    assert core.hall is not None
    rules = core.hall.rules
    kiosk.issue_ticket(category(core))
    core.desk.call_next()
    with pytest.raises(IllegalActionError) as early:
        core.desk.no_show()
    assert early.value.code == "no_show_too_early"
    assert early.value.message("zh") and early.value.message("en")
    for i in range(rules.recall_limit):
        t = core.desk.recall()
        assert t.recalls == i + 1
    with pytest.raises(IllegalActionError) as limit:
        core.desk.recall()
    assert limit.value.code == "recall_limit"
    assert core.desk.state == "calling"
    gone = core.desk.no_show()
    assert gone.state == "no_show" and core.desk.state == "idle"


def test_no_show_allowed_after_min_recalls(make_core: Any, kiosk: HallClient) -> None:
    core = signed_in(make_core, 1)
    assert core.hall is not None
    kiosk.issue_ticket(category(core))
    core.desk.call_next()
    for _ in range(core.hall.rules.no_show_min_recalls):
        core.desk.recall()
    assert core.desk.no_show().state == "no_show"


def test_transfer_to_a_named_window(make_core: Any, kiosk: HallClient) -> None:
    core = signed_in(make_core, 1)
    other_no, cat = sharing_window(core)
    t = kiosk.issue_ticket(cat)
    core.desk.call_next()
    moved = core.desk.transfer(to_window_no=other_no)
    assert moved.state == "waiting" and moved.target_window_no == other_no
    assert core.desk.state == "idle"
    other = signed_in(make_core, other_no)
    got = other.desk.call_next()
    assert got is not None and got.id == t.id


def test_suspend_and_resume_at_another_window(make_core: Any, kiosk: HallClient) -> None:
    core = signed_in(make_core, 1)
    other_no, cat = sharing_window(core)
    t = kiosk.issue_ticket(cat)
    core.desk.call_next()
    case = core.desk.start()
    s = core.desk.suspend("回家取户口本")
    assert s.state == "suspended" and core.desk.state == "idle"
    other = signed_in(make_core, other_no)
    snap = other.live.refresh()
    assert t.id in [x.id for x in snap.suspended]
    back = other.desk.resume(t.id)
    assert back.state == "serving" and other.desk.state == "serving"
    assert other.desk.case is not None and other.desk.case.id == case.id  # the case continues


def test_return_to_queue_keeps_the_place(make_core: Any, kiosk: HallClient) -> None:
    core = signed_in(make_core, 1)
    t1 = kiosk.issue_ticket(category(core))
    kiosk.issue_ticket(category(core))
    assert core.desk.call_next().id == t1.id  # type: ignore[union-attr]
    back = core.desk.return_to_queue()
    assert back.state == "waiting" and back.queued_at == t1.queued_at
    assert core.live.refresh().waiting[0].id == t1.id


def test_pause_needs_a_reason_and_blocks_calls(make_core: Any, kiosk: HallClient) -> None:
    core = signed_in(make_core, 1)
    assert core.hall is not None
    kiosk.issue_ticket(category(core))
    with pytest.raises(IllegalActionError):
        core.desk.pause("")
    with pytest.raises(IllegalActionError) as unknown:
        core.desk.pause("no-such-reason")
    assert unknown.value.code == "unknown_reason"
    reason = core.hall.pause_reasons[0].code
    w = core.desk.pause(reason)
    assert w.state == "paused" and w.pause_reason_code == reason
    assert core.desk.state == "paused" and kiosk.window(1).state == "paused"
    with pytest.raises(IllegalActionError) as paused:
        core.desk.call_next()
    assert paused.value.code == "window_paused"
    core.desk.resume_window()
    assert core.desk.state == "idle" and core.desk.call_next() is not None


def test_set_matter_and_material(make_core: Any, kiosk: HallClient) -> None:
    core = signed_in(make_core, 1)
    cat = category(core)
    page = kiosk_matters(core, cat)
    kiosk.issue_ticket(cat)
    core.desk.call_next()
    core.desk.start()
    case = core.desk.set_matter(page.code)
    assert case.matter_code == page.code
    if page.checklist:
        item = page.checklist[0].id
        case = core.desk.set_material(item, "received", "原件已核")
        assert any(m.item_id == item and m.status == "received" for m in case.materials)


def kiosk_matters(core: CounterCore, cat: str) -> Any:
    for m in core.client.matters_page(limit=200).items:
        if m.category == cat and not m.deleted:
            return m
    pytest.skip("no matter in the window's category")


def test_double_press_calls_exactly_one_ticket(make_core: Any, kiosk: HallClient) -> None:
    core = signed_in(make_core, 1)
    for _ in range(3):
        kiosk.issue_ticket(category(core))
    results: list[Any] = []
    barrier = threading.Barrier(8)

    def press() -> None:
        barrier.wait()
        try:
            results.append(core.desk.call_next())
        except CounterError as e:
            results.append(e)

    threads = [threading.Thread(target=press) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tickets = [r for r in results if isinstance(r, Ticket)]
    refused = [r for r in results if isinstance(r, CounterError)]
    assert len(tickets) == 1 and len(refused) == 7
    assert all(isinstance(r, (DeskBusyError, IllegalActionError)) for r in refused)
    assert any(isinstance(r, DeskBusyError) for r in refused)
    snap = core.live.refresh()
    assert snap.current is not None and snap.current.id == tickets[0].id
    assert len(snap.waiting) == 2  # the other two were not called


def test_named_call_of_a_ticket_taken_elsewhere_calls_the_next(make_core: Any,
                                                               kiosk: HallClient) -> None:
    core = signed_in(make_core, 1)
    rec = Recorder()
    core.bus.subscribe(TicketTakenElsewhere, rec)
    other_no, cat = sharing_window(core)
    t1 = kiosk.issue_ticket(cat)
    t2 = kiosk.issue_ticket(cat)
    other = signed_in(make_core, other_no)
    assert other.desk.call_ticket(t1.id).id == t1.id  # type: ignore[union-attr]
    got = core.desk.call_ticket(t1.id)
    assert [e.number for e in rec.of(TicketTakenElsewhere)] == [t1.number]
    assert got is not None and got.id == t2.id and core.desk.state == "calling"


def test_restart_mid_service_resumes_the_current_ticket(make_core: Any,
                                                        kiosk: HallClient) -> None:
    core = signed_in(make_core, 1)
    t = kiosk.issue_ticket(category(core))
    core.desk.call_next()
    case = core.desk.start()
    core.close()  # the desk process dies without signing out
    again = signed_in(make_core, 1)
    assert again.desk.state == "serving"
    assert again.desk.ticket is not None and again.desk.ticket.id == t.id
    assert again.desk.case is not None and again.desk.case.id == case.id
    assert again.desk.complete("completed").case.outcome == "completed"


# -- live queue ----------------------------------------------------------------------------


def test_live_queue_gets_a_new_ticket_by_sse(make_core: Any, kiosk: HallClient) -> None:
    core = make_core(1)
    rec = Recorder()
    core.bus.subscribe(None, rec)
    core.session.sign_in("1001", PASSWORD)
    wait_until(lambda: core.live.connection_state == "online", what="stream online")
    wait_until(lambda: core.live.snapshot is not None, what="first snapshot")
    assert core.live.snapshot is not None and not core.live.snapshot.waiting
    seen = core.live.events_seen
    t = kiosk.issue_ticket(category(core))
    wait_until(lambda: rec.of(TicketArrivedInEmptyQueue), what="empty-queue alert")
    assert rec.of(TicketArrivedInEmptyQueue)[0].ticket.id == t.id
    assert core.live.events_seen > seen  # it came by the stream, not a poll
    assert any(t.id in [w.id for w in e.snapshot.waiting] for e in rec.of(QueueChanged))
    assert rec.of(ConnectionChanged)[-1].state == "online"


class EventsCutter:
    """A loopback TCP proxy that can cut the SSE stream while passing every other request.

    It looks at the first request line of each connection: the live queue reads the stream on
    a thread that sends nothing else, so /events connections are told apart by their first line.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.block_events = False
        self._events_socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        with self._lock:
            self.block_events = True
            socks, self._events_socks = self._events_socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restore(self) -> None:
        self.block_events = False

    def close(self) -> None:
        self._stop = True
        self._srv.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                c, _ = self._srv.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(c,), daemon=True).start()

    def _handle(self, c: socket.socket) -> None:
        head = b""
        while b"\r\n" not in head:
            chunk = c.recv(4096)
            if not chunk:
                c.close()
                return
            head += chunk
        is_events = b" /api/v1/events" in head.split(b"\r\n", 1)[0]
        if is_events and self.block_events:
            c.close()
            return
        u = socket.create_connection(("127.0.0.1", self.upstream_port))
        if is_events:
            with self._lock:
                self._events_socks += [c, u]
        u.sendall(head)

        def pipe(a: socket.socket, b: socket.socket) -> None:
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pipe, args=(u, c), daemon=True).start()
        pipe(c, u)


def test_live_queue_falls_back_to_polling_when_the_stream_is_cut(
        make_core: Any, kiosk: HallClient, fresh_hall_server: Any) -> None:
    port = int(fresh_hall_server.url.rsplit(":", 1)[1])
    proxy = EventsCutter(port)
    try:
        core = make_core(1, url=proxy.url)
        core.live.poll_interval_s = 0.5
        rec = Recorder()
        core.bus.subscribe(None, rec)
        core.session.sign_in("1001", PASSWORD)
        wait_until(lambda: core.live.connection_state == "online", what="stream online")
        proxy.cut()
        wait_until(lambda: core.live.connection_state == "polling", what="polling fallback")
        events_before = core.live.events_seen
        t = kiosk.issue_ticket(category(core))
        wait_until(lambda: rec.of(TicketArrivedInEmptyQueue), what="ticket seen by polling")
        assert rec.of(TicketArrivedInEmptyQueue)[0].ticket.id == t.id
        assert core.live.events_seen == events_before  # the stream really was down
        states = [e.state for e in rec.of(ConnectionChanged)]
        assert "reconnecting" in states and states[-1] == "polling"
        proxy.restore()
        wait_until(lambda: core.live.connection_state == "online", timeout=90,
                   what="stream back online")
    finally:
        proxy.close()


def test_stats_published(make_core: Any) -> None:
    core = signed_in(make_core, 1)
    rec = Recorder()
    core.bus.subscribe(StatsUpdated, rec)
    stats = core.refresh_stats()
    assert rec.of(StatsUpdated)[0].stats == stats and stats.window_no == 1


def test_a_pause_made_elsewhere_reaches_the_desk(make_core: Any, fresh_hall_server: Any) -> None:
    core = signed_in(make_core, 1)
    assert core.hall is not None
    rec = Recorder()
    core.bus.subscribe(DeskChanged, rec)
    wait_until(lambda: core.live.connection_state == "online", what="stream online")
    sup = HallClient(fresh_hall_server.url)
    try:
        sup.login("8001", PASSWORD)
        sup.pause_window(1, core.hall.pause_reasons[0].code)
    finally:
        sup.close()
    wait_until(lambda: core.desk.state == "paused", what="desk shows the pause")
    assert rec.of(DeskChanged)[-1].state == "paused"
