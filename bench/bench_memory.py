"""Memory of the desk after a scripted full day, and its growth from one day to the next.

The real desk window (own Xvfb when DISPLAY is unset) against the real reference server run as
its own process (``python -m hall_server serve --demo``), so RSS is the desk's alone: each "day" signs in at window 1, has a few hundred tickets issued, and serves them the
way a clerk does through the real presenter and dialogs (call, start, set the matter through the
search dialog, mark a material, complete; every 25th a no-show after two recalls, every 40th a
transfer to window 2), then signs out. The day runs three times in the same process; RSS
(psutil, after ``gc.collect()``) is taken after each day. Growth is the mean of day 2 -> 3 and
day 1 -> 2 would include one-time costs (fonts, caches, the catalog in memory), so the target is
on the later days. Counters of what usually leaks are reported beside it: Tk widgets alive,
dispatcher handlers, i18n listeners, pending runner callbacks; and tracemalloc's live Python heap
per day (``desk_python_heap_growth_per_day_mb``), which tells a leak of Python objects from
pages the allocator keeps after a peak (RSS up, heap flat). The heap comes from a second run of
the three days in a child process: tracemalloc's own bookkeeping (one trace per live block)
added ~75 MB to RSS when both were taken in one pass, so RSS is measured untraced.

    python -m bench memory        (BENCH_MEMORY_TICKETS=300 to change the tickets per day)
"""

from __future__ import annotations

import collections
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bench_ui import _Display
from bench.common import figure

TICKETS = int(os.environ.get("BENCH_MEMORY_TICKETS", "240"))
DAYS = 3
PASSWORD = "demo1234"
# tracemalloc runs during the whole benchmark (its Python-heap figure is reported beside RSS);
# deeper stacks cost time, so one frame unless asked. BENCH_MEMORY_DIFF=1 prints what grew from
# day 2 to day 3 to stderr (top 25 allocation sites by traceback, gc object type counts); with
# more frames tracemalloc's own bookkeeping inflates RSS, so take RSS figures from a plain run.
_FRAMES = int(os.environ.get("BENCH_MEMORY_TRACE_FRAMES", "1"))
_DIFF = os.environ.get("BENCH_MEMORY_DIFF", "") not in ("", "0")
SEARCHES = ("gtgshsl", "yyzz", "370191-A", "jzz", "营业执照", "hz")


def _rss_mb() -> float:
    import psutil

    gc.collect()
    return float(psutil.Process().memory_info().rss) / (1024 * 1024)


def _type_counts() -> collections.Counter[str]:
    gc.collect()
    return collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())


def _print_diff(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot,
                types_before: collections.Counter[str], types_after: collections.Counter[str]) -> None:
    """What grew from one day to the next: top allocation sites (by traceback) and object types."""
    noise = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen *>")]
    stats = after.filter_traces(noise).compare_to(before.filter_traces(noise), "traceback")
    stats.sort(key=lambda st: st.size_diff, reverse=True)
    print("--- tracemalloc: top 25 growth by traceback (last day) ---", file=sys.stderr)
    for st in stats[:25]:
        print(f"{st.size_diff / 1024:+9.1f} KiB {st.count_diff:+7d} blocks", file=sys.stderr)
        for line in st.traceback.format(limit=_FRAMES):
            print("    " + line, file=sys.stderr)
    print("--- gc.get_objects(): top 25 type count growth (last day) ---", file=sys.stderr)
    diff = collections.Counter(types_after)
    diff.subtract(types_before)
    for name, d in sorted(diff.items(), key=lambda kv: -kv[1])[:25]:
        print(f"{d:+8d} {name} (now {types_after[name]})", file=sys.stderr)


def _widgets(root: Any) -> int:
    n, todo = 0, [root]
    while todo:
        w = todo.pop()
        n += 1
        todo.extend(w.winfo_children())
    return n


class _Script:
    """Runs steps on the Tk thread: each is (action, condition to wait for), driven by after()."""

    def __init__(self, app: Any, steps: list[tuple[Callable[[], None], Callable[[], bool]]]) -> None:
        self.app, self.steps = app, steps
        self.i = 0
        self.waiting: Callable[[], bool] | None = None
        self.deadline = 0.0
        self.error: str | None = None

    def start(self) -> None:
        self.app.root.after(1, self._tick)

    def _tick(self) -> None:
        root = self.app.root
        if self.waiting is not None:
            if not self.waiting():
                if time.monotonic() > self.deadline:
                    self.error = f"step {self.i} timed out"
                    root.quit()
                    return
                root.after(2, self._tick)
                return
            self.waiting = None
        if self.i >= len(self.steps):
            root.quit()
            return
        action, until = self.steps[self.i]
        self.i += 1
        action()
        self.waiting, self.deadline = until, time.monotonic() + 30
        root.after(1, self._tick)


def _day_steps(app: Any, n: int) -> list[tuple[Callable[[], None], Callable[[], bool]]]:
    def p() -> Any:
        return app.desk

    def idle() -> bool:
        return p() is not None and p().s.busy is None

    def state(s: str) -> Callable[[], bool]:
        return lambda: idle() and p().s.state == s

    def dialog() -> Any:
        d = app.desk_view.dialog if app.desk_view is not None else None
        return d if d is not None and d.winfo_exists() else None

    def do(action: str) -> Callable[[], None]:
        return lambda: p().trigger(action)

    def confirm() -> None:
        dialog().confirm()

    steps: list[tuple[Callable[[], None], Callable[[], bool]]] = [
        (lambda: None, lambda: app.desk_view is not None and (app.core.catalog.count() > 0))]
    for i in range(n):
        steps.append((do("call_next"), state("calling")))
        if i % 25 == 24:
            steps += [(do("recall"), idle), (do("recall"), idle), (do("no_show"), state("idle"))]
            continue
        if i % 40 == 39:
            steps += [(do("transfer"), lambda: dialog() is not None), (confirm, state("idle"))]
            continue
        text = SEARCHES[i % len(SEARCHES)]

        def search(text: str = text) -> None:
            d = dialog()
            d.entry.insert(0, text)
            d._search(text, d.show_results)  # what a KeyRelease does

        steps += [
            (do("start"), state("serving")),
            (do("change_matter"), lambda: dialog() is not None),
            (search, lambda: dialog() is not None and dialog().listbox.size() > 0),
            (confirm, lambda: idle() and p().s.case is not None and p().s.case.matter_code
             and app.desk_view.checklist.tree.get_children()),
            (lambda: (app.desk_view.checklist.tree.selection_set(
                app.desk_view.checklist.tree.get_children()[0]),
                app.desk_view.checklist.set_selected("received")), idle),
            (do("complete"), lambda: dialog() is not None),
            (confirm, state("idle")),
        ]
    return steps


def _run_day(app: Any, url: str, n: int) -> float:
    from tests.support.server_fixtures import Api

    api = Api(url)
    for i in range(n):
        prio = "green" if i % 13 == 0 else "normal"
        r = api.post("/tickets", json={"category": "A", "priority": prio})
        r.raise_for_status()
    api.close()
    t0 = time.perf_counter()
    app.sign_in("1001", PASSWORD)
    script = _Script(app, _day_steps(app, n))
    script.start()
    app.root.mainloop()
    if script.error:
        raise RuntimeError(f"scripted day stopped: {script.error}")
    # Sign out as at the end of the shift; the desk returns to the sign-in screen.
    app.runner.run(app.core.session.sign_out)
    end = time.monotonic() + 30

    def back() -> None:
        if app.signin_view is not None or time.monotonic() > end:
            app.root.quit()
        else:
            app.root.after(5, back)

    app.root.after(5, back)
    app.root.mainloop()
    # Let the sign-in screen's own checks land, then measure.
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        app.root.update()
        time.sleep(0.005)
    return time.perf_counter() - t0


def _days(trace: bool) -> dict[str, Any]:
    """Three scripted days in this process; RSS (and, with `trace`, the live Python heap)."""
    from counter_app.config import Settings
    from counter_desk.wiring import build_app
    from tests.support.server_fixtures import start_server_process
    from ui import i18n

    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    with _Display():
        server = start_server_process(tmp / "hall", db_url=f"sqlite:///{tmp / 'hall.sqlite3'}")
        app = build_app(Settings(server_url=server.url, window_no=1, data_dir=tmp / "desk",
                                 log_dir=tmp / "logs", idle_lock_minutes=0, language="zh"))
        if trace:
            tracemalloc.start(_FRAMES)
        try:
            start_mb = _rss_mb()
            rss: list[float] = []
            heap: list[float] = []
            seconds: list[float] = []
            snaps: list[tracemalloc.Snapshot] = []
            types: list[collections.Counter[str]] = []
            for _day in range(DAYS):
                seconds.append(_run_day(app, server.url, TICKETS))
                rss.append(_rss_mb())
                if trace:
                    heap.append(tracemalloc.get_traced_memory()[0] / (1024 * 1024))
                if trace and _DIFF:
                    # Only the last two: a snapshot is big, and RSS is taken before it.
                    snaps = [*snaps[-1:], tracemalloc.take_snapshot()]
                    types = [*types[-1:], _type_counts()]
            if trace and _DIFF:
                _print_diff(snaps[-2], snaps[-1], types[-2], types[-1])
            counters = dict(widgets=_widgets(app.root), handlers=app.dispatcher.handler_count(),
                            i18n_listeners=i18n.listener_count(), runner_pending=app.runner.in_flight)
        finally:
            try:
                app.core.close()
            finally:
                app.destroy()
                server.terminate()
                if trace:
                    tracemalloc.stop()
    return dict(start_mb=start_mb, rss=rss, heap=heap, seconds=seconds, counters=counters)


def run() -> list[dict[str, Any]]:
    """RSS from a pass WITHOUT tracemalloc (its own bookkeeping added ~75 MB to the desk's RSS,
    a third of the 247 MB once reported), then the heap from a second pass with tracemalloc in
    a child process (BENCH_MEMORY_HEAP=0 skips it)."""
    import json
    import subprocess

    out: list[dict[str, Any]] = []
    d = _days(trace=False)
    rss, seconds, counters, start_mb = d["rss"], d["seconds"], d["counters"], d["start_mb"]
    growth = [b - a for a, b in zip(rss, rss[1:], strict=False)]
    later = growth[1:] or growth
    out.append(figure("desk_rss_after_day_mb", rss[0], n=TICKETS, start_mb=round(start_mb, 1),
                      days=[round(x, 1) for x in rss], seconds_per_day=[round(s, 1) for s in seconds],
                      target="value<=150",
                      note="desk process alone (the reference server runs as its own process); "
                           "no tracemalloc in this pass"))
    out.append(figure("desk_rss_growth_per_day_mb", sum(later) / len(later), target="value<=5",
                      n=DAYS, growth=[round(g, 2) for g in growth], **counters))
    if os.environ.get("BENCH_MEMORY_HEAP", "1") in ("", "0"):
        return out
    child = subprocess.run([sys.executable, "-m", "bench.bench_memory", "--heap"],
                           capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parents[1])
    heap = json.loads(child.stdout.strip().splitlines()[-1])["heap"]
    if child.stderr and _DIFF:
        print(child.stderr, file=sys.stderr)
    heap_growth = [b - a for a, b in zip(heap, heap[1:], strict=False)]
    later_heap = heap_growth[1:] or heap_growth
    out.append(figure("desk_python_heap_growth_per_day_mb", sum(later_heap) / len(later_heap),
                      target="value<=1", n=DAYS, days=[round(x, 2) for x in heap],
                      growth=[round(g, 3) for g in heap_growth],
                      note="tracemalloc (second pass, own process): live Python allocations "
                           "after gc; RSS also keeps the allocator's high-water pages"))
    return out


if __name__ == "__main__":
    import json

    if sys.argv[1:] == ["--heap"]:  # the traced pass, run by run() in its own process
        print(json.dumps({"heap": _days(trace=True)["heap"]}))
    else:
        for line in run():
            print(json.dumps(line, ensure_ascii=False))
