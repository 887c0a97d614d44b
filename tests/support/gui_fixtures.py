"""GUI test support: build the real desk window, pump Tk until a condition holds, screenshots,
and a clean teardown (cancel afters, update_idletasks, destroy, gc.collect on the main thread).

pytest-xvfb starts the display; the screen is made big enough for the desk (see
``pytest_configure``). Tests wait on conditions by pumping ``root.update()`` with a deadline,
never on fixed sleeps; the deadline only bounds a hung test.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SCREEN_W, SCREEN_H = 1600, 1000


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # pytest-xvfb reads these ini values; set them unless the user did, so the 1440x900 desk fits.
    # 24-bit colour: Pillow's X11 grab cannot read the default 16-bit screen.
    for name, value in (("xvfb_width", str(SCREEN_W)), ("xvfb_height", str(SCREEN_H)),
                        ("xvfb_colordepth", "24")):
        try:
            if config.getini(name) in ("800", "600", "16", "", None):
                config._inicache[name] = value  # noqa: SLF001 - pytest-xvfb reads ini only
        except (ValueError, KeyError):
            pass


def artifacts_dir() -> Path:
    root = Path(os.environ.get("COUNTER_ARTIFACTS", "test-artifacts"))
    path = root / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def pump(root: Any, seconds: float = 0.05) -> None:
    """Run the Tk event loop for a short while (lets after() callbacks and redraws happen)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        root.update()
        time.sleep(0.002)


def pump_until(root: Any, pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Pump Tk until ``pred()`` is truthy; fail with ``what`` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        root.update()
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.003)


def screenshot(widget: Any, name: str) -> Path:
    """Save the toplevel of ``widget`` (window only) as PNG under $COUNTER_ARTIFACTS/screenshots."""
    from PIL import ImageGrab

    top = widget.winfo_toplevel()
    for _ in range(5):
        top.update_idletasks()
        top.update()
    x, y = top.winfo_rootx(), top.winfo_rooty()
    w, h = top.winfo_width(), top.winfo_height()
    image = ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=os.environ["DISPLAY"])
    path = artifacts_dir() / f"{name}.png"
    image.save(path)
    return path


class Heartbeat:
    """Records the gaps between ``after(5)`` callbacks: the longest Tk event-loop stall."""

    def __init__(self, root: Any, period_ms: int = 5) -> None:
        self.root, self.period_ms = root, period_ms
        self.last = time.perf_counter()
        self.max_gap_ms = 0.0
        self.gaps: list[float] = []
        self._id: str | None = root.after(period_ms, self._beat)

    def _beat(self) -> None:
        now = time.perf_counter()
        gap = (now - self.last) * 1000.0
        self.gaps.append(gap)
        self.max_gap_ms = max(self.max_gap_ms, gap)
        self.last = now
        self._id = self.root.after(self.period_ms, self._beat)

    def reset(self) -> None:
        self.last = time.perf_counter()
        self.max_gap_ms = 0.0
        self.gaps.clear()

    def stop(self) -> None:
        if self._id is not None:
            try:
                self.root.after_cancel(self._id)
            except Exception:  # noqa: BLE001
                pass
            self._id = None


def teardown_root(root: Any) -> None:
    """Cancel every pending after(), flush, destroy, and collect Tk objects on this thread."""
    try:
        for after_id in root.tk.call("after", "info"):
            try:
                root.after_cancel(after_id)
            except Exception:  # noqa: BLE001
                pass
        root.update_idletasks()
        root.destroy()
    except Exception:  # noqa: BLE001 - already destroyed
        pass
    gc.collect()


def desk_settings(tmp_path: Path, url: str, window_no: int = 1, **kw: Any) -> Any:
    from counter_app.config import Settings

    d = tmp_path / f"desk{window_no}-{time.monotonic_ns()}"
    kw.setdefault("idle_lock_minutes", 0)
    kw.setdefault("language", "zh")
    return Settings(server_url=url, window_no=window_no, data_dir=d / "data", log_dir=d / "logs", **kw)


@pytest.fixture
def desk_app_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Build real DeskApp windows (real CounterCore) against a server URL; torn down after."""
    apps: list[Any] = []

    def make(url: str, window_no: int = 1, *, settings: Any = None,
             warnings: Any = (), **kw: Any) -> Any:
        from counter_desk.wiring import build_app

        app = build_app(settings or desk_settings(tmp_path, url, window_no, **kw), warnings=warnings)
        apps.append(app)
        return app

    yield make
    from ui import i18n

    for app in apps:
        if not app.closed:
            try:
                app.core.close()
            except Exception:  # noqa: BLE001
                pass
            app.destroy()
        teardown_root(app.root)
    i18n.set_language("zh")
    gc.collect()
