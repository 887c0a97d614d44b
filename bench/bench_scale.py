"""Past one machine (issue 11): call-next + complete pairs/s and p99 with 1, 2 and 4 hall-server
processes on one PostgreSQL behind a real nginx (the ratios 2 vs 1 and 4 vs 1), with a CPU
profile of who used the machine; and new-ticket fan-out to 200 hall-wide SSE subscribers spread
by nginx over 4 processes.

Floors (same run): the 1-process pair rate direct (no nginx) for the nginx overhead and the
1-process rate behind nginx for the 2- and 4-process ratios; for fan-out, the p99 of the ticket
POST's own round trip through nginx (no subscriber can see a ticket before it is committed).

The CPU profile reads /proc: user+system seconds of the hall-server processes, of PostgreSQL
(the postmaster and its backends, found from the data directory's postmaster.pid), of nginx and
of this load generator, per pair, and their sum against the machine's cores: on a 2-core
machine the servers and PostgreSQL share the CPU, so adding processes cannot add cores.

Needs HALL_TEST_PG_URL (`scripts/run.sh bench scale` starts a PostgreSQL) and Debian nginx.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.bench_server import RawConn, _add_windows, _issue, _login
from bench.common import figure, percentile

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 16
PAIRS = int(os.environ.get("BENCH_SCALE_PAIRS", "3000"))
SSE_SUBSCRIBERS = 200
SSE_TICKETS = int(os.environ.get("BENCH_SSE_TICKETS", "60"))
PARTS = set(os.environ.get("BENCH_SCALE_PARTS", "pairs,sse").split(","))
TICK = os.sysconf("SC_CLK_TCK")


# ---- CPU accounting from /proc ----------------------------------------------------------------
def _cpu(pid: int, children: bool = False) -> float:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # fields after the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    t = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return t / TICK


def _children(ppid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == ppid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _postmaster_pid(base_url: str) -> int | None:
    import psycopg

    try:
        with psycopg.connect(base_url.replace("postgresql+psycopg://", "postgresql://")) as c:
            row = c.execute("SHOW data_directory").fetchone()
        assert row is not None
        return int((Path(row[0]) / "postmaster.pid").read_text().split()[0])
    except Exception:  # noqa: BLE001 - the profile is optional
        return None


def _group_cpu(pids: list[int], tree_roots: list[int]) -> float:
    """CPU of `pids` plus, for each tree root, itself, its live children and its reaped ones."""
    total = sum(_cpu(p) for p in pids)
    for root in tree_roots:
        total += _cpu(root, children=True) + sum(_cpu(c) for c in _children(root))
    return total


class Profile:
    def __init__(self, servers: list[int], postmaster: int | None, nginx: int) -> None:
        self.servers, self.postmaster, self.nginx = servers, postmaster, nginx

    def sample(self) -> dict[str, float]:
        return {
            "servers": sum(_cpu(p) for p in self.servers),
            "postgres": _group_cpu([], [self.postmaster]) if self.postmaster else 0.0,
            "nginx": _group_cpu([], [self.nginx]),
            "load_generator": time.process_time(),
        }


# ---- the load ------------------------------------------------------------------------------------
async def _pairs(port: int, tokens: list[str], stop_after: int) -> tuple[list[int], list[float]]:
    conns = [await RawConn(port, tok).open() for tok in tokens]
    calls: list[int] = []
    lat: list[float] = []
    done = 0

    async def window(no: int, c: RawConn) -> None:
        nonlocal done
        while done < stop_after:
            t0 = time.perf_counter()
            status, body = await c.request("POST", f"/windows/{no}/call-next", key=uuid.uuid4().hex)
            if status != 200:
                raise RuntimeError(f"call-next {no}: {status} {body[:200]!r}")
            ticket = json.loads(body)["ticket"]
            if ticket is None:
                return
            done += 1
            status, body = await c.request("POST", f"/tickets/{ticket['id']}/complete",
                                           {"outcome": "completed"}, key=uuid.uuid4().hex)
            if status != 200:
                raise RuntimeError(f"complete: {status} {body[:200]!r}")
            lat.append((time.perf_counter() - t0) * 1000)
            calls.append(int(ticket["id"]))

    await asyncio.gather(*(window(i + 1, c) for i, c in enumerate(conns)))
    for c in conns:
        c.close()
    return calls, lat


def _cluster(tmp: Path, base: str, n: int, label: str, env: dict[str, str] | None = None) -> Any:
    sys.path.insert(0, str(ROOT))
    from tests.scale_helpers import Cluster
    from tests.support.server_fixtures import fresh_pg_url

    db = fresh_pg_url(base)
    return Cluster(db, tmp / label, n, env=env or {}).start()


def pairs_run(tmp: Path, base: str, n: int, direct: bool = False, naive: bool = False) -> dict[str, Any]:
    env = {"HALL_TEST_NAIVE_EVENTS": "1"} if naive else {}
    cl = _cluster(tmp, base, n, f"pairs-{n}{'-direct' if direct else ''}{'-naive' if naive else ''}", env)
    try:
        _add_windows(cl.db_url, range(14, CONNECTIONS + 1), "A")
        url = cl.servers[0].url if direct else cl.url
        port = int(url.rsplit(":", 1)[1])
        tokens = [_login(url, str(1000 + no), no) for no in range(1, CONNECTIONS + 1)]
        asyncio.run(_issue(port, PAIRS + 300))
        asyncio.run(_pairs(port, tokens, 200))  # warm-up: connections, prepared statements
        assert cl.nginx is not None
        prof = Profile([s.pid for s in cl.servers], _postmaster_pid(base), cl.nginx.proc.pid)
        before = prof.sample()
        t0 = time.perf_counter()
        calls, lat = asyncio.run(_pairs(port, tokens, PAIRS))
        wall = time.perf_counter() - t0
        after = prof.sample()
    finally:
        cl.stop()
        from tests.support.server_fixtures import drop_pg_db

        drop_pg_db(cl.db_url)
    cpu = {k: after[k] - before[k] for k in before}
    return {
        "rate": len(calls) / wall, "p99": percentile(lat, 99), "p50": percentile(lat, 50), "n": len(calls),
        "double": sum(1 for _, k in Counter(calls).items() if k > 1), "wall": wall,
        "cpu_ms_per_pair": {k: round(v * 1000 / max(1, len(calls)), 3) for k, v in cpu.items()},
        "cpu_busy_of_machine": round(sum(cpu.values()) / wall / (os.cpu_count() or 1), 3),
    }


async def _fanout(port: int, token: str, subscribers: int, tickets: int) -> tuple[list[float], list[float]]:
    seen: dict[int, int] = {}
    last_seen: dict[int, float] = {}
    ready = 0

    async def subscriber() -> None:
        nonlocal ready
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write((f"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                 f"Authorization: Bearer {token}\r\n\r\n").encode())
        await r.readuntil(b"\r\n\r\n")
        ready += 1
        try:
            while True:
                line = await r.readline()
                if not line:
                    return
                if line.startswith(b"data:") and b'"ticket.issued"' in line:
                    tid = int(json.loads(line[5:])["ticket"]["id"])
                    seen[tid] = seen.get(tid, 0) + 1
                    last_seen[tid] = time.perf_counter()
        finally:
            w.close()

    subs = [asyncio.create_task(subscriber()) for _ in range(subscribers)]
    while ready < subscribers:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)
    kiosk = await RawConn(port).open()
    spans: list[float] = []
    rtts: list[float] = []
    for _ in range(tickets):
        t0 = time.perf_counter()
        status, body = await kiosk.request("POST", "/tickets", {"category": "B"})
        rtts.append((time.perf_counter() - t0) * 1000)
        if status != 201:
            raise RuntimeError(f"issue: {status} {body[:200]!r}")
        tid = int(json.loads(body)["id"])
        deadline = time.perf_counter() + 5
        while seen.get(tid, 0) < subscribers and time.perf_counter() < deadline:
            await asyncio.sleep(0.0005)
        spans.append((last_seen[tid] - t0) * 1000 if seen.get(tid, 0) == subscribers else float("inf"))
        await asyncio.sleep(0.02)
    kiosk.close()
    for s in subs:
        s.cancel()
    await asyncio.gather(*subs, return_exceptions=True)
    return spans, rtts


def fanout_run(tmp: Path, base: str, n: int) -> list[dict[str, Any]]:
    cl = _cluster(tmp, base, n, f"sse-{n}")
    try:
        port = int(cl.url.rsplit(":", 1)[1])
        token = _login(cl.url, "8001", None)
        spans, rtts = asyncio.run(_fanout(port, token, SSE_SUBSCRIBERS, SSE_TICKETS))
    finally:
        cl.stop()
        from tests.support.server_fixtures import drop_pg_db

        drop_pg_db(cl.db_url)
    floor = percentile(rtts, 99)
    return [
        figure(f"scale_sse_new_ticket_all_{SSE_SUBSCRIBERS}_over_{n}_p50_ms", percentile(spans, 50), n=len(spans)),
        figure(f"scale_sse_new_ticket_all_{SSE_SUBSCRIBERS}_over_{n}_p99_ms", percentile(spans, 99), floor=floor,
               target="value<=100", n=len(spans),
               note="POST /tickets through nginx until all subscribers (hall-wide, spread by nginx "
                    "over the processes) have the event; floor: the POST's own round trip p99"),
    ]


def run() -> Iterator[dict[str, Any]]:
    base = os.environ.get("HALL_TEST_PG_URL")
    if not base:
        yield {"name": "scale_skipped", "error": "HALL_TEST_PG_URL not set (scripts/run.sh bench scale)"}
        return
    keep = os.environ.get("BENCH_KEEP_DIR")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as d:
        tmp = Path(keep or d)
        if "pairs" in PARTS:
            yield from _pairs_figures(tmp, base)
        if "cost" in PARTS:
            yield from _cost_figures(tmp, base)
        if "sse" in PARTS:
            yield from fanout_run(tmp, base, 4)


def _pairs_figures(tmp: Path, base: str) -> Iterator[dict[str, Any]]:
    direct = pairs_run(tmp, base, 1, direct=True)
    yield figure("scale_pairs_1_direct_per_s", direct["rate"], n=direct["n"], connections=CONNECTIONS,
                 p99_ms=round(direct["p99"], 2), cpu_ms_per_pair=direct["cpu_ms_per_pair"],
                 note="1 hall-server, no nginx: the floor for the balancer's cost")
    res: dict[int, dict[str, Any]] = {}
    for n in (1, 2, 4):
        r = res[n] = pairs_run(tmp, base, n)
        floor = direct["rate"] if n == 1 else res[1]["rate"]
        yield figure(f"scale_pairs_{n}_per_s", r["rate"], floor=floor, n=r["n"], connections=CONNECTIONS,
                     cpu_ms_per_pair=r["cpu_ms_per_pair"], cpu_busy_of_machine=r["cpu_busy_of_machine"],
                     cores=os.cpu_count(),
                     note=("call-next + complete pairs/s, 16 windows through nginx; floor: "
                           + ("1 process direct" if n == 1 else "1 process behind nginx")))
        yield figure(f"scale_pairs_{n}_p99_ms", r["p99"], floor=direct["p99"], n=r["n"],
                     target="value<=100", p50_ms=round(r["p50"], 2))
        yield figure(f"scale_pairs_{n}_double_assigned", r["double"], target="value==0", n=r["n"])
    for n in (2, 4):
        yield figure(f"scale_ratio_{n}_vs_1", res[n]["rate"] / res[1]["rate"],
                     note="pairs/s with n processes over 1 process, both behind nginx, same machine")
    yield from _cost_figures(tmp, base, res[2])


def _cost_figures(tmp: Path, base: str, ordered: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """The price of commit-ordered event ids: 2 processes with the old sequence ids (the naive
    control, which loses events) as the floor, run right after the ordered one."""
    ordered = ordered or pairs_run(tmp, base, 2)
    naive = pairs_run(tmp, base, 2, naive=True)
    yield figure("scale_pairs_2_commit_order_cost", ordered["rate"], floor=naive["rate"],
                 naive_p99_ms=round(naive["p99"], 2), p99_ms=round(ordered["p99"], 2),
                 cpu_ms_per_pair=ordered["cpu_ms_per_pair"], naive_cpu_ms_per_pair=naive["cpu_ms_per_pair"],
                 note="pairs/s with commit-ordered ids (value) over the old sequence ids (floor); "
                      "ratio < 1 is the cost")


if __name__ == "__main__":
    for line in run():
        print(json.dumps(line, ensure_ascii=False))
