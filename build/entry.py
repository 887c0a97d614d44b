"""PyInstaller's entry script for the desk: the same `main` as the `counter-app` console script."""

from __future__ import annotations

import sys

from counter_app.cli import main

if __name__ == "__main__":
    sys.exit(main())
