"""The call display (叫号屏) over HTTP on loopback against the real server: who may open it
(display keys made by `hall-server display token`, nothing for anyone else, staff included),
what its stream carries (numbers, windows and window states only), replay after an outage,
revocation ending open streams, and the spoken clip espeak-ng makes (its length read from the
WAV header). The pages in real Chromium: tests/test_display_browser.py."""

from __future__ import annotations

import io
import json
import queue
import shutil
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hall_server import cli, display
from tests.support.server_fixtures import Api, RunningServer, signed_in, start_server_thread

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[RunningServer]:
    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True, ping_seconds=0.5)
    yield srv
    srv.stop()


def run_cli(srv: RunningServer, *args: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    rc = cli.main(["display", *args[:1], "--data-dir", str(srv.data_dir), "--db", srv.db_url, *args[1:]])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return dict(json.loads(out.out))


def display_session(srv: RunningServer, capsys: pytest.CaptureFixture[str],
                    window: int | None = None) -> tuple[requests.Session, str]:
    """A session that opened the address IT printed: it now holds the display cookie."""
    extra = ("--window", str(window)) if window is not None else ()
    out = run_cli(srv, "token", "--url", srv.url, *extra, capsys=capsys)
    s = requests.Session()
    s.trust_env = False
    r = s.get(out["url"], allow_redirects=False, timeout=10)
    assert r.status_code == 303, r.text
    return s, out["key"]


class Stream:
    """The display stream read in a thread: a queue of (event name, data, id)."""

    def __init__(self, s: requests.Session, url: str, headers: dict[str, str] | None = None) -> None:
        self.r = s.get(url, stream=True, timeout=10, headers=headers or {})
        self.q: queue.Queue[tuple[str, dict[str, Any], str]] = queue.Queue()
        self.raw: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        name, data, eid = "message", "", ""
        try:
            for line in self.r.iter_lines(decode_unicode=True):
                self.raw.append(line)
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line.startswith("id: "):
                    eid = line[4:]
                elif line == "" and data:
                    self.q.put((name, json.loads(data), eid))
                    name, data, eid = "message", "", ""
        except (requests.RequestException, AttributeError, ValueError):
            pass  # closed under the reader by close()
        self.q.put(("<closed>", {}, ""))

    def next(self, name: str, timeout: float = 10) -> tuple[dict[str, Any], str]:
        deadline = time.monotonic() + timeout
        while True:
            got, data, eid = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            if got == name:
                return data, eid
            if got == "<closed>":
                raise AssertionError(f"stream closed before {name!r}")

    def close(self) -> None:
        self.r.close()


def call_at(desk: Api, window_no: int) -> dict[str, Any]:
    """A citizen takes a ticket the window serves; the window calls it."""
    cat = desk.get(f"/windows/{window_no}").json()["categories"][0]
    issued = Api(desk.url).post("/tickets", json={"category": cat})
    assert issued.status_code == 201, issued.text
    called = desk.post(f"/windows/{window_no}/call-next").json()["ticket"]
    assert called is not None and called["id"] == issued.json()["id"], called
    return dict(called)


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.getnframes() / w.getframerate()


# ---- what is said ------------------------------------------------------------------------------
def test_words_are_said_as_hall_callers_say_them() -> None:
    assert display.say_zh("A023", 3) == "请 A 零二三 号到 三 号窗口办理"
    assert display.show_zh("A023", 3) == "请 A023 号到 3 号窗口办理"
    assert [display.zh_count(n) for n in (1, 10, 12, 20, 35, 105)] == ["一", "十", "十二", "二十", "三十五", "一零五"]
    assert display.say_en("B107", 12) == "Number B, one, zero, seven, please go to window 12."


# ---- who may open it ---------------------------------------------------------------------------
def test_key_from_the_cli_opens_the_display_once_then_lives_in_a_cookie(
        hall: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_cli(hall, "token", "--url", hall.url, capsys=capsys)
    assert out["url"].startswith(hall.url + "/display?k=d1.hall.0.")
    s = requests.Session()
    s.trust_env = False
    r = s.get(out["url"], allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/display"  # the key leaves the address
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/display" in cookie
    page = s.get(hall.url + "/display", timeout=10)
    assert page.status_code == 200 and "高新区" in page.text and 'data-no="12"' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "unsafe" not in csp and "http" not in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"


def test_nobody_else_gets_anything(hall: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    """Attack: the hall LAN, a signed-in clerk, a forged or cut key, a key for another window."""
    anon = requests.Session()
    anon.trust_env = False
    u = hall.url
    for path in ("/display", "/display/window/1"):
        r = anon.get(u + path, timeout=10)
        assert r.status_code == 401 and "信息管理员" in r.text and "ask IT" in r.text
        assert "data-no=" not in r.text and "now-num" not in r.text
    for path in ("/display/events", "/display/audio/1.wav", "/display/chime.wav"):
        r = anon.get(u + path, timeout=10)
        assert r.status_code == 401 and r.json()["error"]["message_en"], path
    staff = signed_in(u, "1001", 1)
    # A clerk's token is no display key, neither as a cookie nor as a bearer.
    assert anon.get(u + "/display/events", cookies={display.COOKIE: staff.token or ""}, timeout=10).status_code == 401
    assert anon.get(u + "/display/events", headers={"Authorization": f"Bearer {staff.token}"},
                    timeout=10).status_code == 401
    _, key = display_session(hall, capsys)
    # ...and a display key is no staff token: the staff stream still wants one.
    assert anon.get(u + "/api/v1/events", headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code == 401
    forged = key[:-22] + ("A" * 22)
    for bad in (forged, key[:-1], key.replace(".hall.", ".w1."), key.replace(".0.", ".1."), "x" * 500):
        r = anon.get(u + "/display", params={"k": bad}, allow_redirects=False, timeout=10)
        assert r.status_code == 401 and "set-cookie" not in r.headers, bad
        assert anon.get(u + "/display/events", cookies={display.COOKIE: bad}, timeout=10).status_code == 401
    w3, _ = display_session(hall, capsys, window=3)
    assert w3.get(u + "/display/window/3", timeout=10).status_code == 200
    assert w3.get(u + "/display", timeout=10).status_code == 403
    assert w3.get(u + "/display/window/4", timeout=10).status_code == 403
    assert w3.get(u + "/display/events", timeout=10).status_code == 403
    assert w3.get(u + "/display/events", params={"window": 4}, timeout=10).status_code == 403
    r = w3.get(u + "/display/window/4", params={"k": w3.cookies[display.COOKIE]}, allow_redirects=False, timeout=10)
    assert r.status_code == 401
    # A key for a window that does not exist is refused by the CLI.
    rc = cli.main(["display", "token", "--window", "99", "--data-dir", str(hall.data_dir), "--db", hall.db_url])
    assert rc == 1 and "unknown_window" in capsys.readouterr().err


def test_stream_carries_numbers_and_windows_only(hall: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    s, _ = display_session(hall, capsys)
    st = Stream(s, hall.url + "/display/events")
    try:
        board, _ = st.next("board")
        assert board["recent"] == [] and len(board["windows"]) >= 12
        w1 = signed_in(hall.url, "1001", 1)
        win, _ = st.next("window")
        assert win == {"window_no": 1, "state": "open"}
        tk = call_at(w1, 1)
        call, eid = st.next("call")
        assert call["number"] == tk["number"] and call["window_no"] == 1 and call["kind"] == "call"
        assert call["say_zh"] == display.say_zh(tk["number"], 1) and "say_en" not in call
        assert int(eid) == call["id"] and call["age_ms"] < 5000
        assert w1.post(f"/tickets/{tk['id']}/recall").status_code == 200
        again, _ = st.next("call")
        assert again["kind"] == "recall" and again["number"] == tk["number"] and again["id"] > call["id"]
        # Suspended (the citizen fetches a paper): the window is free; resumed: its number again.
        assert w1.post(f"/tickets/{tk['id']}/start").status_code == 200
        assert w1.post(f"/tickets/{tk['id']}/suspend", json={"note": "fetching a paper"}).status_code == 200
        assert st.next("clear")[0] == {"window_no": 1, "number": tk["number"]}
        assert w1.post(f"/tickets/{tk['id']}/resume", json={"window_no": 1}).status_code == 200
        assert st.next("current")[0] == {"window_no": 1, "number": tk["number"]}
        assert w1.post(f"/tickets/{tk['id']}/complete", json={"outcome": "completed"}).status_code == 200
        cleared, _ = st.next("clear")
        assert cleared == {"window_no": 1, "number": tk["number"]}
        # Handed to another window: window 1 is free at once.
        other = call_at(w1, 1)
        st.next("call")
        assert w1.post(f"/tickets/{other['id']}/transfer", json={"to_window_no": 2}).status_code == 200
        assert st.next("clear")[0] == {"window_no": 1, "number": other["number"]}
        w1.post("/windows/1/pause", json={"reason_code": "break"})
        assert st.next("window")[0] == {"window_no": 1, "state": "paused"}
    finally:
        st.close()
    # Nothing but numbers, windows, states and the words: no staff, matter, category, case or
    # ticket id, whatever the staff stream carries.
    text = "\n".join(st.raw)
    for leak in ("1001", "staff", "工作人员", "matter", "category", "case", "ticket", "priority", "break",
                 "paper", "target"):
        assert leak not in text, leak


def test_back_after_an_outage_gets_the_calls_it_missed(hall: RunningServer,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    s, _ = display_session(hall, capsys)
    st = Stream(s, hall.url + "/display/events")
    _, last = st.next("board")
    st.close()  # the TV drops off the network
    tk = call_at(signed_in(hall.url, "1002", 2), 2)
    back = Stream(s, hall.url + "/display/events", headers={"Last-Event-ID": last})
    try:
        missed, _ = back.next("call")
        assert missed["number"] == tk["number"] and missed["window_no"] == 2
        board, _ = back.next("board")
        assert board["recent"][0]["number"] == tk["number"]
        assert next(w for w in board["windows"] if w["no"] == 2)["current"] == tk["number"]
    finally:
        back.close()
    assert s.get(hall.url + "/display/events", headers={"Last-Event-ID": "x"}, timeout=10).status_code == 400


def test_revoke_ends_every_key_and_open_stream(hall: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    s, _ = display_session(hall, capsys)
    st = Stream(s, hall.url + "/display/events")
    st.next("board")
    assert run_cli(hall, "revoke", capsys=capsys) == {"epoch": 1}
    st.next("revoked", timeout=5)  # within a ping (0.5 s here, 15 s by default)
    assert s.get(hall.url + "/display", timeout=10).status_code == 401
    s2, key = display_session(hall, capsys)  # IT makes a new one
    assert ".1." in key and s2.get(hall.url + "/display", timeout=10).status_code == 200


@needs_espeak
def test_each_call_has_its_spoken_clip(hall: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    s, _ = display_session(hall, capsys)
    w3key, _ = display_session(hall, capsys, window=3)
    st = Stream(s, hall.url + "/display/events")
    try:
        st.next("board")
        w1 = signed_in(hall.url, "1001", 1)
        issued = call_at(w1, 1)
        call, _ = st.next("call")
        t0 = time.monotonic()
        r = s.get(f"{hall.url}/display/audio/{call['id']}.wav", timeout=30)
        first = time.monotonic() - t0
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        zh_only = wav_seconds(r.content)
        assert 2.5 < zh_only < 12, zh_only  # the chime and "请 A 零零一 号到 一 号窗口办理"
        cached = list((hall.data_dir / "display-audio").glob("*.wav"))
        assert len(cached) == 1
        t0 = time.monotonic()
        assert s.get(f"{hall.url}/display/audio/{call['id']}.wav", timeout=30).content == r.content
        assert time.monotonic() - t0 <= first + 0.5
        # The recall says the same words: the same clip, no new synthesis.
        w1.post(f"/tickets/{issued['id']}/recall")
        recall, _ = st.next("call")
        assert s.get(f"{hall.url}/display/audio/{recall['id']}.wav", timeout=30).content == r.content
        assert len(list((hall.data_dir / "display-audio").glob("*.wav"))) == 1
        # English switched on: the clip says it in both languages.
        assert run_cli(hall, "english", "on", capsys=capsys) == {"english": True}
        both = wav_seconds(s.get(f"{hall.url}/display/audio/{call['id']}.wav", timeout=30).content)
        assert both > zh_only + 1.5, (zh_only, both)
        # Only calls are spoken: the id of the ticket.issued event is not a clip; a window key
        # gets its own window's clips only.
        assert s.get(f"{hall.url}/display/audio/{call['id'] - 1}.wav", timeout=10).status_code == 404
        assert s.get(f"{hall.url}/display/audio/99999999.wav", timeout=10).status_code == 404
        assert s.get(f"{hall.url}/display/audio/{2**63}.wav", timeout=10).status_code == 422
        assert w3key.get(f"{hall.url}/display/audio/{call['id']}.wav", timeout=10).status_code == 403
        chime = s.get(f"{hall.url}/display/chime.wav", timeout=10)
        assert chime.status_code == 200 and 1.0 <= wav_seconds(chime.content) <= 1.2
    finally:
        st.close()


@pytest.mark.postgres
def test_display_stream_on_postgresql(pg_hall_server: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    """On PostgreSQL the events reach the display through LISTEN/NOTIFY like any stream."""
    s, _ = display_session(pg_hall_server, capsys)
    st = Stream(s, pg_hall_server.url + "/display/events")
    try:
        st.next("board")
        w1 = signed_in(pg_hall_server.url, "1001", 1)
        tk = call_at(w1, 1)
        call, eid = st.next("call")
        assert (call["number"], call["window_no"], int(eid)) == (tk["number"], 1, call["id"])
    finally:
        st.close()
    back = Stream(s, pg_hall_server.url + "/display/events", headers={"Last-Event-ID": str(call["id"] - 1)})
    try:
        assert back.next("call")[0]["number"] == tk["number"]
        board, _ = back.next("board")
        assert board["recent"][0]["number"] == tk["number"]
    finally:
        back.close()
