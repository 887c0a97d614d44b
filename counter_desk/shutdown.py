"""The desk signs out and closes its window when the PC shuts down or the clerk's session ends.

Linux: logind/the session manager ends the clerk's session with SIGTERM (then SIGKILL after a
grace period; systemd's default is 90 s), a closed terminal sends SIGHUP. Windows: Tk turns the
end-of-session message (WM_QUERYENDSESSION) into the `WM_SAVE_YOURSELF` window protocol. Each of
them runs the same close as the window's close button (ui.app.DeskApp.close): sign out on a
worker (the server closes the window and says so to the hall), stop the core, destroy the
window; then `mainloop()` returns and the process exits. The close is bounded by the app's own
grace timer, so an unreachable server delays shutdown by seconds, not minutes.

The signal handler itself does nothing but schedule the close on the Tk loop: Python runs
signal handlers on the main thread (the Tk thread here) between Tk events, and a Tk `after`
keeps the close in the loop's normal order.
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ui.app import DeskApp

log = logging.getLogger(__name__)


def install(app: DeskApp) -> None:
    """Close `app` (signing out) on SIGTERM/SIGHUP and at the end of the Windows session."""

    def close_soon(signum: int, _frame: FrameType | None) -> None:
        log.warning("signal %s: signing out and closing the desk (PC shutdown or logoff)",
                    signal.Signals(signum).name)
        try:
            app.root.after(0, app.close)
        except Exception:  # noqa: BLE001 - the window is already gone: nothing to close
            log.info("desk already closed when signal %s came", signum)

    signals = [signal.SIGTERM]
    if sys.platform != "win32":
        signals.append(signal.SIGHUP)
    for sig in signals:
        signal.signal(sig, close_soon)
    try:
        app.root.protocol("WM_SAVE_YOURSELF", app.close)
    except Exception:  # noqa: BLE001 - a window manager without the protocol: signals suffice
        log.info("WM_SAVE_YOURSELF not available here")
