"""House rules the CI enforces: ruff clean everywhere, mypy --strict on api_client, counter_app,
ui and the composition root counter_desk (pyproject.toml holds the settings)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_is_clean() -> None:
    out = _run("ruff", "check", ".")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_mypy_strict_on_the_desk() -> None:
    out = _run("mypy", "api_client", "counter_app", "counter_desk", "ui", "pii_mask")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
