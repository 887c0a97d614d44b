"""counter_app: the headless core of the counter desk (no Tk here; the UI builds on it).

Domain services (session, desk state machine, live queue, catalog), the durable outbox, config,
credentials, logging and the event bus. Runs from a script with no display.
"""

from __future__ import annotations

from importlib import metadata

try:
    # Written by build/build.py (git describe) into the frozen app only; absent from source.
    from counter_app._version import version as _built  # type: ignore[import-not-found,unused-ignore]

    __version__: str = str(_built)
except ImportError:
    try:
        __version__ = metadata.version("counter-app")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        __version__ = "0.1.0"
