"""The one place that finds files shipped with the ui package (theme, locale catalogs, sounds).

Under PyInstaller the package data lives below ``sys._MEIPASS``; from a checkout or a wheel it sits
beside this module. Everything else asks here instead of building paths from ``__file__``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def package_root() -> Path:
    """The folder that holds ui's data files, frozen or not."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and frozen_root:
        candidate = Path(frozen_root) / "ui"
        if candidate.is_dir():
            return candidate
    return Path(__file__).resolve().parent


def resource_path(*parts: str) -> Path:
    """Absolute path of a data file shipped with ui, e.g. ``resource_path("theme", "counter.json")``."""
    return package_root().joinpath(*parts)
