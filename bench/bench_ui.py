"""Desk window figures: the waiting list drawn (1,000 tickets), one ticket changed, the
worker-to-Tk hand-off (after(10) polling, the shipped choice, against an event_generate wake-up),
and server event to row on screen with the real server, core and window.

Runs headless: when DISPLAY is unset it starts its own ``Xvfb :N`` and stops it afterwards.
"""

from __future__ import annotations

import os
import queue
import random
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import figure, percentile


class _Display:
    """A private Xvfb when there is no display; a no-op when there is one."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> _Display:
        if os.environ.get("DISPLAY"):
            return self
        if not shutil.which("Xvfb"):
            raise RuntimeError("no DISPLAY and no Xvfb (apt-get install xvfb)")
        for n in range(99, 160):
            if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
                break
        self.proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Xvfb did not start")
            time.sleep(0.02)
        os.environ["DISPLAY"] = f":{n}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            os.environ.pop("DISPLAY", None)


def _rows(n: int, waited: str = "3:07") -> list[Any]:
    from ui.presenters.format import QueueRow

    out = []
    for i in range(n):
        prio = "green" if i % 17 == 0 else "normal"
        out.append(QueueRow(iid=str(i + 1), number=f"A{i + 1:03d}", priority=prio,
                            priority_label="绿色通道" if prio == "green" else "", category="A",
                            waited=waited, note="", suspended=i % 50 == 49))
    return out


def _list_figures() -> list[dict[str, Any]]:
    import customtkinter as ctk

    from ui import style
    from ui.views.queue_list import QueueList

    style.apply("light", 1.0)
    root = ctk.CTk()
    root.geometry("900x800")
    rows = _rows(1000)
    draws: list[float] = []
    floor: list[float] = []
    for _ in range(12):
        ql = QueueList(root, on_resume=lambda _i: None)
        ql.pack(fill="both", expand=True)
        root.update()
        t0 = time.perf_counter()
        ql.show_rows(rows)
        root.update_idletasks()
        draws.append((time.perf_counter() - t0) * 1000)
        # Floor: the same number of bare Treeview inserts, no diffing or formatting.
        tree = ql.tree
        tree.delete(*tree.get_children())
        t0 = time.perf_counter()
        for r in rows:
            tree.insert("", "end", values=(r.number, r.priority_label, r.category, r.waited, r.note))
        root.update_idletasks()
        floor.append((time.perf_counter() - t0) * 1000)
        ql.destroy()
    ql = QueueList(root, on_resume=lambda _i: None)
    ql.pack(fill="both", expand=True)
    ql.show_rows(rows)
    root.update()
    changed: list[float] = []
    for i in range(300):
        rows2 = list(rows)
        k = random.randrange(len(rows2))
        r = rows2[k]
        rows2[k] = type(r)(**{**r.__dict__, "waited": f"{i // 60}:{i % 60:02d}"})
        t0 = time.perf_counter()
        ql.show_rows(rows2)
        root.update_idletasks()
        changed.append((time.perf_counter() - t0) * 1000)
        rows = rows2
    root.destroy()
    p50_draw = percentile(draws, 50)
    return [
        figure("waiting_list_1000_drawn_p50_ms", p50_draw, floor=percentile(floor, 50),
               target="value<=25", n=len(draws)),
        figure("waiting_list_one_changed_p50_ms", percentile(changed, 50), target="value<=10",
               n=len(changed), p99=round(percentile(changed, 99), 3)),
    ]


def _handoff(mode: str, n: int = 400) -> list[float]:
    import tkinter as tk

    from ui.tasks import TaskRunner

    root = tk.Tk()
    runner = TaskRunner(root, mode=mode)
    lat: list[float] = []
    done = threading.Event()

    def one(i: int) -> None:
        if i >= n:
            done.set()
            root.quit()
            return

        def op() -> float:
            time.sleep(random.uniform(0.0, 0.012))  # land at a random phase of the poll
            return time.perf_counter()

        def back(t_put: float) -> None:
            lat.append((time.perf_counter() - t_put) * 1000)
            root.after(1, one, i + 1)

        runner.run(op, back)

    root.after(10, one, 0)
    root.after(120000, root.quit)
    root.mainloop()
    runner.close(wait=True)
    root.destroy()
    return lat


def _handoff_figures() -> list[dict[str, Any]]:
    out = []
    for mode, name in (("poll", "handoff_after10_poll"), ("wake", "handoff_event_generate_wake")):
        lat = _handoff(mode)
        out.append(figure(f"{name}_p99_ms", percentile(lat, 99), target="value<=20", n=len(lat),
                          p50=round(percentile(lat, 50), 3),
                          shipped=mode == "poll"))
    return out


def _event_to_row(n: int = 150) -> list[dict[str, Any]]:
    from counter_app.config import Settings
    from counter_app.events import QueueChanged
    from counter_desk.wiring import build_app
    from tests.support.server_fixtures import Api, start_server_process

    tmp = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    # A separate process, as in a hall: an in-process server would compete for the GIL with
    # the Tk thread and measure that instead.
    srv = start_server_process(tmp / "hall", demo=True)
    app = build_app(Settings(server_url=srv.url, window_no=1, data_dir=tmp / "desk",
                           log_dir=tmp / "logs", idle_lock_minutes=0))
    published: dict[str, float] = {}
    drawn: dict[str, float] = {}
    issued: dict[str, float] = {}
    arrived: queue.SimpleQueue[str] = queue.SimpleQueue()

    def on_publish(ev: Any) -> None:  # core thread
        now = time.perf_counter()
        for t in ev.snapshot.waiting:
            published.setdefault(str(t.id), now)

    app.core.bus.subscribe(QueueChanged, on_publish)

    def on_delivered(_ev: Any) -> None:  # Tk thread, after the presenter drew the list
        app.root.update_idletasks()
        now = time.perf_counter()
        if app.desk_view is None:
            return
        for iid in app.desk_view.queue.row_ids():
            if iid not in drawn:
                drawn[iid] = now
                arrived.put(iid)

    def driver() -> None:
        api = Api(srv.url)
        for _ in range(n):
            r = api.post("/tickets", json={"category": "A"})
            t_issued = time.perf_counter()
            tid = str(r.json()["id"])
            issued[tid] = t_issued
            deadline = time.monotonic() + 10
            while tid not in drawn and time.monotonic() < deadline:
                try:
                    arrived.get(timeout=0.5)
                except queue.Empty:
                    pass
            time.sleep(random.uniform(0.02, 0.06))
        app.root.after(0, app.root.quit)

    def wait_desk() -> None:
        # Start once signed in and the catalog sync (CPU-heavy pinyin keys) is over: this
        # measures the steady state of a working day, not the first seconds after sign-in.
        catalog = app.core.catalog
        if app.desk_view is None or (catalog is not None and catalog.count() == 0):
            app.root.after(20, wait_desk)
            return
        app.dispatcher.subscribe(QueueChanged, on_delivered)
        threading.Thread(target=driver, daemon=True).start()

    app.sign_in("1001", "demo1234")
    app.root.after(20, wait_desk)
    app.root.after(180000, app.root.quit)
    app.root.mainloop()
    try:
        app.core.close()
    finally:
        app.destroy()
        srv.terminate()
    # The first two are warm-up: the first also rings the empty-queue alert (bell and flash),
    # a once-per-empty-queue cost that is not the steady state measured here.
    ids = [i for i in issued if i in drawn and i in published][2:]
    to_screen = [(drawn[i] - published[i]) * 1000 for i in ids]
    if os.environ.get("BENCH_UI_DEBUG"):
        print(sorted(round(x, 1) for x in to_screen)[-8:], [round(x, 1) for x in to_screen][:8])
    end_to_end = [(drawn[i] - issued[i]) * 1000 for i in ids]
    return [
        figure("queue_event_to_row_on_screen_p99_ms", percentile(to_screen, 99), target="value<=25",
               n=len(ids), p50=round(percentile(to_screen, 50), 3),
               note="QueueChanged published by the core -> row drawn in the Treeview"),
        figure("ticket_issued_to_row_on_screen_p99_ms", percentile(end_to_end, 99), n=len(ids),
               p50=round(percentile(end_to_end, 50), 3),
               note="POST /tickets answered -> SSE -> snapshot -> row drawn (real server, loopback)"),
    ]


def run() -> list[dict[str, Any]]:
    with _Display():
        out = _list_figures()
        out += _handoff_figures()
        out += _event_to_row()
    return out


if __name__ == "__main__":
    import json

    for line in run():
        print(json.dumps(line, ensure_ascii=False))
