"""The frozen desk, built ONCE per test session with build/build.py (what IT installs).

`frozen_build` (session scope) runs the real build into a temp folder and yields
`FrozenBuild(archive, app_dir, version)`; tests/test_build_app.py and tests/test_frozen_clerk.py
share it, so the ~45 s build is paid once per run. While working on a frozen test,
`COUNTER_FROZEN_APP=<built app folder>` reuses an earlier build instead (never set in CI). `frozen_env(tmp)` is the environment that
keeps a frozen desk's data, logs and config inside `tmp`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = "1.2.3-4-gabcdef0"


@dataclass(frozen=True)
class FrozenBuild:
    archive: Path
    app_dir: Path
    version: str
    output: str

    @property
    def exe(self) -> Path:
        return self.app_dir / ("counter-app.exe" if sys.platform == "win32" else "counter-app")


def run_build(base: Path, version: str = VERSION,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "build" / "build.py"), "--out",
                           str(base / "out"), "--work", str(base / "work"), "--version", version],
                          cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env=env if env is not None else dict(os.environ))


@pytest.fixture(scope="session")
def frozen_build(tmp_path_factory: pytest.TempPathFactory) -> FrozenBuild:
    reuse = os.environ.get("COUNTER_FROZEN_APP")
    if reuse:
        app_dir = Path(reuse)
        archives = sorted((app_dir.parents[2] / "out").glob("counter-app-*"))
        return FrozenBuild(archives[-1] if archives else app_dir, app_dir, VERSION, "")
    base = tmp_path_factory.mktemp("frozen-build")
    out = run_build(base)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    archive, app_dir = (Path(p) for p in out.stdout.strip().splitlines()[-2:])
    return FrozenBuild(archive, app_dir, VERSION, out.stdout)


def frozen_env(tmp: Path, machine_toml: str = "") -> dict[str, str]:
    """Environment for the frozen desk with its files in `tmp` and this machine config."""
    env = dict(os.environ)
    env.update(COUNTER_DATA_DIR=str(tmp / "data"), COUNTER_LOG_DIR=str(tmp / "log"),
               COUNTER_MACHINE_CONFIG=str(tmp / "machine.toml"),
               COUNTER_USER_CONFIG=str(tmp / "prefs.toml"))
    env.pop("PYTHONPATH", None)  # the frozen app must not see the source tree
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "machine.toml").write_text(machine_toml, encoding="utf-8")
    return env
