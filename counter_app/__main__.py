"""`python -m counter_app` and the `counter-app` console script: the desk's entry point.

The command line itself lives in counter_app.cli; GUI modes load `ui.app` by a string import
there (never an import statement, which tests/test_layering.py forbids in counter_app), so the
core stays importable and testable with no display.
"""

from __future__ import annotations

import sys

from counter_app.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
