"""Server and client-library figures (issue 2): call-next round trip through `api_client`
against the requests floor, server call-next throughput with 16 connections on SQLite and
PostgreSQL (with the double-assignment count), and new-ticket fan-out to 100 SSE subscribers.

Every server runs as its own process (`python -m hall_server`), like a hall's, and the floor
responder too, so the client's process measures only the client side. The load generator is
a small asyncio HTTP/1.1 keep-alive client: requests in 16 threads would measure the GIL.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from bench.common import figure, percentile

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 16
THROUGHPUT_CALLS = int(os.environ.get("BENCH_CALLS", "10000"))
RTT_CALLS = int(os.environ.get("BENCH_RTT_CALLS", "2000"))
SSE_SUBSCRIBERS = 100
SSE_TICKETS = int(os.environ.get("BENCH_SSE_TICKETS", "60"))
PASSWORD = "demo1234"

_FLOOR_SERVER = textwrap.dedent(
    """
    import asyncio, sys
    BODY = b'{"ticket": null}'
    RESP = (b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: "
            + str(len(BODY)).encode() + b"\\r\\n\\r\\n" + BODY)
    async def handle(r, w):
        try:
            while True:
                head = await r.readuntil(b"\\r\\n\\r\\n")
                n = 0
                for line in head.split(b"\\r\\n"):
                    if line.lower().startswith(b"content-length:"):
                        n = int(line.split(b":")[1])
                if n:
                    await r.readexactly(n)
                w.write(RESP)
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            w.close()
    async def main():
        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        print(srv.sockets[0].getsockname()[1], flush=True)
        await srv.serve_forever()
    asyncio.run(main())
    """
)


# ---- processes ----------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProc:
    def __init__(self, db_url: str | None, data_dir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "hall_server", "serve", "--demo", "--host", "127.0.0.1",
                "--port", str(self.port), "--data-dir", str(data_dir)]
        if db_url:
            args += ["--db", db_url]
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + 60
        with requests.Session() as s:
            s.trust_env = False
            while True:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"hall server did not start; see {data_dir / 'server.log'}")
                try:
                    if s.get(self.url + "/api/v1/health", timeout=1).ok:
                        break
                except requests.RequestException:
                    time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _add_windows(db_url: str, numbers: range, category: str, only: range | None = None) -> None:
    """The demo hall has 13 windows; the 16-connection figure needs 16 calling windows."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.begin() as conn:
        for no in numbers:
            exists = conn.execute(text("SELECT 1 FROM windows WHERE no = :no"), {"no": no}).first()
            if not exists:
                conn.execute(
                    text("INSERT INTO windows (no, name_zh, name_en, categories, state) "
                         "VALUES (:no, :zh, :en, :c, 'closed')"),
                    {"no": no, "zh": f"{no}号窗口", "en": f"Window {no}", "c": category},
                )
        if only is None:
            conn.execute(text("UPDATE windows SET categories = :c"), {"c": category})
    engine.dispose()


# ---- a minimal asyncio HTTP/1.1 client -----------------------------------------------------
class RawConn:
    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.token = token
        self.r: asyncio.StreamReader
        self.w: asyncio.StreamWriter

    async def open(self) -> RawConn:
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def request(self, method: str, path: str, body: Any = None,
                      key: str | None = None) -> tuple[int, bytes]:
        data = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} /api/v1{path} HTTP/1.1", "Host: 127.0.0.1",
                f"Content-Length: {len(data)}"]
        if data:
            head.append("Content-Type: application/json")
        if self.token:
            head.append(f"Authorization: Bearer {self.token}")
        if key:
            head.append(f"Idempotency-Key: {key}")
        self.w.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        raw = await self.r.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, chunked = 0, False
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
        if not chunked:
            return status, await self.r.readexactly(length) if length else b""
        out = b""
        while True:
            size = int((await self.r.readline()).strip() or b"0", 16)
            chunk = await self.r.readexactly(size + 2)
            if size == 0:
                return status, out
            out += chunk[:-2]

    def close(self) -> None:
        self.w.close()


def _login(url: str, staff_no: str, window_no: int | None) -> str:
    with requests.Session() as s:
        s.trust_env = False
        body: dict[str, Any] = {"staff_no": staff_no, "password": PASSWORD}
        if window_no is not None:
            body["window_no"] = window_no
        r = s.post(url + "/api/v1/auth/login", json=body, timeout=30)
        r.raise_for_status()
        return str(r.json()["access_token"])


async def _issue(port: int, n: int, category: str = "A", conns: int = 8) -> None:
    pool = [await RawConn(port).open() for _ in range(conns)]
    per = [n // conns + (1 if i < n % conns else 0) for i in range(conns)]

    async def run(c: RawConn, k: int) -> None:
        for _ in range(k):
            status, body = await c.request("POST", "/tickets", {"category": category})
            if status != 201:
                raise RuntimeError(f"issue ticket: {status} {body[:200]!r}")

    await asyncio.gather(*(run(c, k) for c, k in zip(pool, per, strict=True)))
    for c in pool:
        c.close()


# ---- figures -------------------------------------------------------------------------------
def requests_floor(n: int) -> tuple[float, float]:
    proc = subprocess.Popen([sys.executable, "-c", _FLOOR_SERVER], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        s = requests.Session()
        s.trust_env = False
        url = f"http://127.0.0.1:{port}/api/v1/windows/1/call-next"
        for _ in range(200):
            s.post(url, json=None, headers={"Idempotency-Key": "warm"})
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            s.post(url, json=None, headers={"Idempotency-Key": f"k{i}"}).json()
            times.append((time.perf_counter() - t0) * 1000)
        s.close()
        return percentile(times, 50), percentile(times, 95)
    finally:
        proc.kill()
        proc.wait()


def call_next_rtt(tmp: Path) -> list[dict[str, Any]]:
    from api_client import HallClient

    floor50, floor95 = requests_floor(RTT_CALLS)
    srv = ServerProc(None, tmp / "rtt")
    try:
        asyncio.run(_issue(srv.port, RTT_CALLS + 50))
        client = HallClient(srv.url)
        client.login("1001", PASSWORD, window_no=1)
        times = []
        for i in range(RTT_CALLS + 50):
            t0 = time.perf_counter()
            ticket = client.call_next(1)
            dt = (time.perf_counter() - t0) * 1000
            if ticket is None:
                raise RuntimeError("queue ran dry")
            client.complete(ticket.id, "completed")
            if i >= 50:  # warm-up
                times.append(dt)
        client.close()
    finally:
        srv.stop()
    return [
        figure("call_next_rtt_p50_ms", percentile(times, 50), floor=floor50, n=len(times)),
        figure("call_next_rtt_p95_ms", percentile(times, 95), floor=floor95, target="ratio<=3",
               n=len(times)),
    ]


async def _call_next_load(port: int, tokens: list[str], calls: list[int], lat: list[float],
                          stop_after: int) -> None:
    conns = [await RawConn(port, tok).open() for tok in tokens]
    done = 0

    async def window(no: int, c: RawConn) -> None:
        nonlocal done
        while done < stop_after:
            t0 = time.perf_counter()
            status, body = await c.request("POST", f"/windows/{no}/call-next")
            lat.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"call-next {no}: {status} {body[:200]!r}")
            ticket = json.loads(body)["ticket"]
            if ticket is None:
                return
            calls.append(int(ticket["id"]))
            done += 1
            status, body = await c.request("POST", f"/tickets/{ticket['id']}/complete",
                                           {"outcome": "completed"})
            if status != 200:
                raise RuntimeError(f"complete: {status} {body[:200]!r}")

    await asyncio.gather(*(window(i + 1, c) for i, c in enumerate(conns)))
    for c in conns:
        c.close()


def throughput(tmp: Path, db: str) -> list[dict[str, Any]]:
    data = tmp / f"tp-{db}"
    data.mkdir(parents=True)
    db_url: str | None = None
    if db == "postgres":
        base = os.environ.get("HALL_TEST_PG_URL")
        if not base:
            return [{"name": "call_next_postgres_skipped", "error": "HALL_TEST_PG_URL not set"}]
        sys.path.insert(0, str(ROOT))
        from tests.support.server_fixtures import fresh_pg_url

        db_url = fresh_pg_url(base)
    srv = ServerProc(db_url, data)
    try:
        _add_windows(db_url or f"sqlite:///{data / 'hall.sqlite3'}", range(14, CONNECTIONS + 1), "A")
        tokens = [_login(srv.url, str(1000 + no), no) for no in range(1, CONNECTIONS + 1)]
        asyncio.run(_issue(srv.port, THROUGHPUT_CALLS + 200))
        calls: list[int] = []
        lat: list[float] = []
        t0 = time.perf_counter()
        asyncio.run(_call_next_load(srv.port, tokens, calls, lat, THROUGHPUT_CALLS))
        wall = time.perf_counter() - t0
    finally:
        srv.stop()
    twice = sum(1 for _, k in Counter(calls).items() if k > 1)
    rate_target, p99_target = ("value>=1500", "value<=25") if db == "sqlite" else ("value>=700", "value<=100")
    # Each window must complete its ticket before it may call again (the server refuses a busy
    # window), so a window's loop is call-next + complete: both rates are printed.
    return [
        figure(f"call_next_{db}_per_s", len(calls) / wall, target=rate_target, n=len(calls),
               connections=CONNECTIONS, note="each call followed by a complete on the same connection"),
        figure(f"queue_requests_{db}_per_s", 2 * len(calls) / wall, n=2 * len(calls)),
        figure(f"call_next_{db}_p99_ms", percentile(lat, 99), target=p99_target, n=len(lat)),
        figure(f"call_next_{db}_double_assigned", twice, target="value==0", n=len(calls)),
    ]


async def _sse(port: int, token: str, subscribers: int, tickets: int,
               load_tokens: list[str] | None) -> list[float]:
    seen: dict[int, list[float]] = {}
    ready = 0

    async def subscriber(window_no: int) -> None:
        nonlocal ready
        r, w = await asyncio.open_connection("127.0.0.1", port)
        # Each subscriber is a window's stream (what a desk opens), not the hall-wide feed.
        w.write((f"GET /api/v1/events?window_no={window_no} HTTP/1.1\r\nHost: x\r\n"
                 f"Accept: text/event-stream\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
        await r.readuntil(b"\r\n\r\n")
        ready += 1
        try:
            while True:
                line = await r.readline()
                if not line:
                    return
                if line.startswith(b"data:") and b'"ticket.issued"' in line:
                    t = time.perf_counter()
                    tid = int(json.loads(line[5:])["ticket"]["id"])
                    seen.setdefault(tid, []).append(t)
        finally:
            w.close()

    # Windows 4 and 5 serve category B (the new tickets); the load calls category A elsewhere,
    # like another part of the hall (or another hall on the same server) saturating call-next.
    subs = [asyncio.create_task(subscriber(4 + i % 2)) for i in range(subscribers)]
    while ready < subscribers:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    stop_load = asyncio.Event()
    load_tasks = []
    if load_tokens:
        async def loader(no: int, tok: str) -> None:
            c = await RawConn(port, tok).open()
            while not stop_load.is_set():
                status, body = await c.request("POST", f"/windows/{no}/call-next")
                t = json.loads(body).get("ticket") if status == 200 else None
                if t is None:
                    await asyncio.sleep(0.01)
                    continue
                await c.request("POST", f"/tickets/{t['id']}/complete", {"outcome": "completed"})
            c.close()
        load_tasks = [asyncio.create_task(loader(no, t))
                      for no, t in zip((1, 2, 3, 14, 15, 16), load_tokens, strict=True)]
        await asyncio.sleep(0.5)
    kiosk = await RawConn(port).open()
    spans: list[float] = []
    for _ in range(tickets):
        t0 = time.perf_counter()
        status, body = await kiosk.request("POST", "/tickets", {"category": "B"})
        tid = int(json.loads(body)["id"])
        deadline = time.perf_counter() + 5
        while len(seen.get(tid, [])) < subscribers and time.perf_counter() < deadline:
            await asyncio.sleep(0.0005)
        got = seen.get(tid, [])
        spans.append((max(got) - t0) * 1000 if len(got) == subscribers else float("inf"))
        await asyncio.sleep(0.02)
    stop_load.set()
    await asyncio.gather(*load_tasks, return_exceptions=True)
    kiosk.close()
    for s in subs:
        s.cancel()
    await asyncio.gather(*subs, return_exceptions=True)
    return spans


def sse_fanout(tmp: Path) -> list[dict[str, Any]]:
    data = tmp / "sse"
    data.mkdir(parents=True)
    srv = ServerProc(None, data)
    try:
        token = _login(srv.url, "8001", None)
        idle = asyncio.run(_sse(srv.port, token, SSE_SUBSCRIBERS, SSE_TICKETS, None))
        _add_windows(f"sqlite:///{data / 'hall.sqlite3'}", range(14, 17), "A", only=range(14, 17))
        load_tokens = [_login(srv.url, str(1000 + no), no) for no in (1, 2, 3, 14, 15, 16)]
        asyncio.run(_issue(srv.port, 20000))
        busy = asyncio.run(_sse(srv.port, token, SSE_SUBSCRIBERS, SSE_TICKETS, load_tokens))
    finally:
        srv.stop()
    return [
        figure("sse_new_ticket_all_100_p50_ms", percentile(idle, 50), n=len(idle)),
        figure("sse_new_ticket_all_100_p99_ms", percentile(idle, 99), target="value<=50", n=len(idle)),
        figure("sse_new_ticket_all_100_under_load_p99_ms", percentile(busy, 99), target="value<=100",
               n=len(busy), load="6 other windows (category A) calling next on the same server"),
    ]


def run() -> Iterator[dict[str, Any]]:
    """Yields lines as each part finishes, so a failing part still leaves the others' figures."""
    keep = os.environ.get("BENCH_KEEP_DIR")
    with tempfile.TemporaryDirectory(prefix="bench-server-") as d:
        tmp = Path(keep or d)
        yield from call_next_rtt(tmp)
        yield from throughput(tmp, "sqlite")
        yield from throughput(tmp, "postgres")
        yield from sse_fanout(tmp)


if __name__ == "__main__":
    for line in run():
        print(json.dumps(line, ensure_ascii=False))
