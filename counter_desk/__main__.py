"""`python -m counter_desk`: the same `main` as the `counter-app` console script."""

from __future__ import annotations

import sys

from counter_desk.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
