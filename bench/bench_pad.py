"""Pad benchmarks: a tap on the pad (its signed rating POSTed to the desk's LAN transport) to
durable in the outbox (p99), and to the server's receipt on loopback (p95, target <= 50 ms).

Real parts: the reference server in a thread (SQLite), a real CounterCore with its LAN pad
link and outbox, a software pad signing exactly like the pad page (Ed25519, same message).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import figure, percentile


def run(n: int = 150) -> list[dict[str, Any]]:
    import requests

    from api_client import HallClient
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
                pair(signed_in(server.url, "8001"), signed_in(server.url, "8001"), 1, pad)
                desk.pad.refresh_pad_key()
                desk.pad.thanks_s = 60.0  # no screen changes in the middle of a measurement
                url = f"http://127.0.0.1:{desk.pad.transport.port}/pad/api/rating"
                s = requests.Session()
                s.trust_env = False
                durable: list[float] = []
                receipt: list[float] = []
                for _ in range(n):
                    case = serve_one_case(desk, kiosk)
                    req = desk.pad.request_rating(case)
                    m = pad.rating(case_id=case.id, window_no=1, challenge=req.challenge)
                    body = {"rating_id": m["id"], **{k: m[k] for k in (
                        "case_id", "window_no", "level", "reasons", "comment", "challenge",
                        "rated_at", "pad_id", "pad_counter", "signature")}}
                    t0 = time.perf_counter()
                    r = s.post(url, data=json.dumps(body), headers={"Content-Type": "application/json"},
                               timeout=30)
                    t1 = time.perf_counter()
                    if r.status_code != 200:
                        raise RuntimeError(f"pad rating refused: {r.status_code} {r.text}")
                    while True:
                        item = desk.outbox.get(m["id"])
                        if item is not None and item.state == "done":
                            break
                        time.sleep(0.0005)
                    t2 = time.perf_counter()
                    durable.append((t1 - t0) * 1000)
                    receipt.append((t2 - t0) * 1000)
            finally:
                kiosk.close()
                desk.close()
        finally:
            server.stop()
    return [
        figure("pad_tap_to_durable_p99_ms", percentile(durable, 99), n=n,
               p50=round(percentile(durable, 50), 3)),
        figure("pad_tap_to_server_receipt_p95_ms", percentile(receipt, 95), target="value<=50",
               n=n, p50=round(percentile(receipt, 50), 3)),
    ]


if __name__ == "__main__":
    for line in run():
        print(json.dumps(line))
