"""PyInstaller's entry script for the desk: the same `main` as the `counter-app` console script.

It names the composition root with a plain import, so PyInstaller follows counter_desk.wiring
to every service module (catalog, outbox, search, documents, pad, updates) and counter_desk.cli
to ui.app: nothing the desk runs is reached through a string.
"""

from __future__ import annotations

import sys

from counter_desk.cli import main

if __name__ == "__main__":
    sys.exit(main())
