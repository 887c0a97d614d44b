"""Issue 10 finding 2: the two pairing paths that keep the window PC out, really run.

`/pair/` (the supervisor's own device, no script): a clerk's password gets nothing, a forged
ticket gets nothing, a typed fingerprint that does not match voids the pairing, the right one
binds the pad. `hall-server pad-pair` (IT on the server box): the same, from a terminal.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from hall_server import schema as t
from tests.pad_helpers import SoftPad, pad_post
from tests.security.test_pad_trust import _db
from tests.support.server_fixtures import (
    DEMO_PASSWORD,
    RunningServer,
    signed_in,
    start_server_thread,
)


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[RunningServer]:
    s = start_server_thread(data_dir=tmp_path / "hall", demo=True)
    yield s
    s.stop()


def _form(s: requests.Session, srv: RunningServer, **data: str) -> requests.Response:
    return s.post(srv.url + "/pair/", data=data, timeout=30)


def _hidden(page: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert m, name
    return m.group(1).replace("&amp;", "&")


def _qr_url(page: str, tmp: Path) -> str:
    m = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert m
    png = tmp / "qr.png"
    png.write_bytes(base64.b64decode(m.group(1)))
    out = subprocess.run(["zbarimg", "--quiet", "--raw", str(png)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_pair_page_binds_only_the_fingerprint_the_pad_shows(srv: RunningServer, tmp_path: Path) -> None:
    desk = signed_in(srv.url, "1002", 2)
    with requests.Session() as s:
        s.trust_env = False
        assert "name=\"password\"" in s.get(srv.url + "/pair/", timeout=30).text
        # A clerk (or the desk, with the clerk's password) cannot start a pairing here.
        r = _form(s, srv, action="start", staff_no="1002", password=DEMO_PASSWORD, window_no="2")
        assert r.status_code == 403 and "id=\"code\"" not in r.text
        assert _db(srv, select(t.pad_pairings)) == []
        # A cross-site form post is refused.
        r = s.post(srv.url + "/pair/", data={"action": "start", "staff_no": "8001", "password": DEMO_PASSWORD,
                                              "window_no": "2"}, headers={"Origin": "http://evil.test"}, timeout=30)
        assert r.status_code == 403
        # The supervisor on their own device.
        r = _form(s, srv, action="start", staff_no="8001", password=DEMO_PASSWORD, window_no="2")
        assert r.status_code == 200, r.text
        ticket = _hidden(r.text, "ticket")
        url = _qr_url(r.text, tmp_path)
        assert url.startswith(srv.url + "/pad/#pair=")
        token = url.split("#pair=")[1]
        # A ticket edited to another pairing or staff is refused.
        forged = ticket.replace("8001", "8002")
        assert _form(s, srv, action="status", ticket=forged).status_code == 403
        r = _form(s, srv, action="status", ticket=ticket)
        assert "id=\"server-fp\"" not in r.text  # nothing registered yet
        # A key slipped in first (say by the desk) shows a fingerprint that is not the pad's.
        fake, real = SoftPad(), SoftPad()
        assert pad_post(srv.url, "/pad/api/pair", fake.register_body(token)).status_code == 200
        r = _form(s, srv, action="status", ticket=ticket)
        assert fake.fingerprint in r.text
        r = _form(s, srv, action="confirm", ticket=ticket, fingerprint=real.fingerprint)
        assert r.status_code == 409
        assert desk.get("/windows/2/pads").json()["pads"] == []
        # Again, with the real pad first: its fingerprint typed in lower case without dashes.
        r = _form(s, srv, action="start", staff_no="8001", password=DEMO_PASSWORD, window_no="2")
        ticket = _hidden(r.text, "ticket")
        token = _qr_url(r.text, tmp_path).split("#pair=")[1]
        assert pad_post(srv.url, "/pad/api/pair", real.register_body(token)).status_code == 200
        r = _form(s, srv, action="confirm", ticket=ticket,
                  fingerprint=real.fingerprint.replace("-", "").lower())
        assert r.status_code == 200 and real.pad_id in r.text, r.text
    assert [p["pad_id"] for p in desk.get("/windows/2/pads").json()["pads"]] == [real.pad_id]
    rows = _db(srv, select(t.pads).where(t.pads.c.pad_id == real.pad_id))
    assert rows[0]["paired_by"] == "8001"


def test_cli_pad_pair_on_the_server_box(srv: RunningServer) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hall_server", "pad-pair", "--window", "3", "--db", srv.db_url,
         "--data-dir", str(srv.data_dir), "--public-url", srv.url, "--wait", "60", "--fingerprint-stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    first = proc.stdout.readline()
    m = re.search(r"#pair=([A-Za-z0-9_-]+)", first)
    assert m, first
    pad = SoftPad()
    assert pad_post(srv.url, "/pad/api/pair", pad.register_body(m.group(1))).status_code == 200
    out, err = proc.communicate(pad.fingerprint + "\n", timeout=60)
    assert proc.returncode == 0, err
    assert pad.fingerprint in out and pad.pad_id in out
    desk = signed_in(srv.url, "1003", 3)
    assert [p["pad_id"] for p in desk.get("/windows/3/pads").json()["pads"]] == [pad.pad_id]
