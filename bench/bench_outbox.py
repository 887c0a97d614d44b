"""The durable outbox: what "saved" costs, and how fast a backlog drains to the server.

* Enqueue commit latency: ``Outbox.enqueue_rating`` timed as the desk calls it (hand-off to the
  writer thread, BEGIN IMMEDIATE, two INSERTs, COMMIT with WAL + synchronous=FULL, the Future
  back), p50 and p99 over N_ENQUEUE ratings.
* Its floor, in the same run and the same folder: the least a durable write can cost, appending
  a rating-sized record to a plain file and fsync-ing it, p99 over as many writes.
  Target (PERFORMANCE.md): commit p99 <= 3 x raw fsync p99.
* Drain rate: N_DRAIN ratings queued for real cases, then delivered to the reference server on
  loopback (uvicorn in a thread, SQLite) by the delivery loop; items per second. Its floor: the
  same number of ratings for other cases posted straight through ``HallClient.submit_rating``
  (no outbox), so the ratio is what the outbox's own bookkeeping costs.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import figure, percentile
from counter_app.outbox import HallSender, Outbox

N_ENQUEUE = 2000
N_DRAIN = 300


def _rating(case_id: int, window_no: int) -> dict[str, Any]:
    from tests.outbox_child import rating_for

    return rating_for(case_id, window_no)


def bench_commit(folder: Path) -> list[dict[str, Any]]:
    sample = json.dumps(_rating(1, 1)).encode() + b"\n"
    raw: list[float] = []
    commit: list[float] = []
    ob = Outbox(folder / "outbox.db", None)
    fd = os.open(folder / "raw.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        # Interleaved, so a noisy neighbour's disk burst hits both series alike.
        for i in range(N_ENQUEUE):
            t0 = time.perf_counter()
            os.write(fd, sample)
            os.fsync(fd)
            raw.append((time.perf_counter() - t0) * 1000)
            r = _rating(i, 1)
            t0 = time.perf_counter()
            ob.enqueue_rating(r)
            commit.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        ob.close()
    raw_p99 = percentile(raw, 99)
    return [
        figure("outbox_enqueue_commit_p99_ms", percentile(commit, 99), floor=raw_p99,
               target="ratio<=3", n=N_ENQUEUE),
        figure("outbox_enqueue_commit_p50_ms", percentile(commit, 50),
               floor=percentile(raw, 50), n=N_ENQUEUE),
        figure("raw_write_fsync_p99_ms", raw_p99, n=N_ENQUEUE),
    ]


def bench_drain(folder: Path) -> list[dict[str, Any]]:
    from api_client import HallClient
    from tests.outbox_child import PASSWORD, make_cases, staff_for_window
    from tests.support.server_fixtures import start_server_thread

    server = start_server_thread(data_dir=folder / "server")
    try:
        desk = HallClient(server.url)
        desk.login(staff_for_window(2), PASSWORD, 2)
        cases = make_cases(desk, 2, 2 * N_DRAIN)
        direct_cases, cases = cases[:N_DRAIN], cases[N_DRAIN:]
        client = HallClient(server.url)
        client.login("8001", PASSWORD)
        from api_client.models import RatingSubmission

        t0 = time.perf_counter()
        for c in direct_cases:
            r = _rating(c["case_id"], 2)
            client.submit_rating(RatingSubmission.from_json(r), idempotency_key=r["id"])
        direct_rate = N_DRAIN / (time.perf_counter() - t0)
        ob = Outbox(folder / "drain.db", HallSender(client))
        try:
            for c in cases:
                ob.enqueue_rating(_rating(c["case_id"], 2))
            t0 = time.perf_counter()
            sent = 0
            while True:
                n = ob.deliver_due(limit=200)
                if not n:
                    break
                sent += n
            elapsed = time.perf_counter() - t0
            assert ob.stats().depth == 0 and sent == N_DRAIN
        finally:
            ob.close()
    finally:
        server.stop()
    return [figure("outbox_drain_items_per_s", sent / elapsed, floor=direct_rate, n=sent)]


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        folder = Path(tmp)
        return bench_commit(folder) + bench_drain(folder)


if __name__ == "__main__":
    for line in run():
        print(json.dumps(line))
