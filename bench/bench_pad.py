"""Pad benchmarks: a tap on the pad (its signed rating POSTed straight to the hall server's
`/pad/api/rating`, as the pad page does) to the server's receipt, which is the rating stored
(p99 and p95, target <= 50 ms on loopback), and to the desk learning it (RatingStored through
`GET /cases/{id}/rating-status`, polled every `poll_s`).

Real parts: the reference server in a thread (SQLite), a real CounterCore with its server pad
transport, a software pad signing exactly like the pad page (Ed25519, same message).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import figure, percentile


def run(n: int = 150) -> list[dict[str, Any]]:
    import requests

    from api_client import HallClient
    from counter_app.events import RatingStored
    from tests.pad_helpers import SoftPad, make_desk, pair, serve_one_case
    from tests.support.server_fixtures import DEMO_PASSWORD, signed_in, start_server_thread

    with tempfile.TemporaryDirectory(prefix="bench-pad-") as tmp:
        folder = Path(tmp)
        server = start_server_thread(data_dir=folder / "server", demo=True)
        try:
            desk = make_desk(server.url, folder)
            kiosk = HallClient(server.url)
            kiosk.login("8001", DEMO_PASSWORD)
            try:
                pad = SoftPad()
                pair(signed_in(server.url, "8001"), None, 1, pad)
                desk.pad.transport.poll_s = 0.05
                desk.pad.start()
                stored: dict[int, float] = {}
                seen = threading.Event()

                def on_stored(ev: RatingStored) -> None:
                    stored[ev.case_id] = time.perf_counter()
                    seen.set()

                desk.bus.subscribe(RatingStored, on_stored)
                url = f"{server.url}/pad/api/rating"
                s = requests.Session()
                s.trust_env = False
                receipt: list[float] = []
                noticed: list[float] = []
                for _ in range(n):
                    case = serve_one_case(desk, kiosk)
                    req = desk.pad.request_rating(case)
                    body = pad.pad_body(pad.rating(case_id=case.id, window_no=1, challenge=req.challenge))
                    seen.clear()
                    t0 = time.perf_counter()
                    r = s.post(url, data=json.dumps(body), headers={"Content-Type": "application/json"},
                               timeout=30)
                    t1 = time.perf_counter()
                    if r.status_code != 200:
                        raise RuntimeError(f"pad rating refused: {r.status_code} {r.text}")
                    while case.id not in stored:
                        seen.wait(5)
                    receipt.append((t1 - t0) * 1000)
                    noticed.append((stored[case.id] - t0) * 1000)
            finally:
                kiosk.close()
                desk.close()
        finally:
            server.stop()
    return [
        figure("pad_tap_to_durable_p99_ms", percentile(receipt, 99), n=n,
               p50=round(percentile(receipt, 50), 3)),
        figure("pad_tap_to_server_receipt_p95_ms", percentile(receipt, 95), target="value<=50",
               n=n, p50=round(percentile(receipt, 50), 3)),
        figure("pad_tap_to_desk_notice_p95_ms", percentile(noticed, 95), n=n,
               p50=round(percentile(noticed, 50), 3), poll_ms=50),
    ]


if __name__ == "__main__":
    for line in run():
        print(json.dumps(line))
