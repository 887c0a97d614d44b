"""Packaged desk start to first frame, against `python -m counter_desk` in the same run; bundle size.

Builds the app with build/build.py into a temp folder (or uses COUNTER_BUNDLE=<app folder>),
then alternates runs of `<bundle>/counter-app --first-frame-exit` and
`python -m counter_desk --first-frame-exit`: each opens the real desk window, waits for its first
<Map> and prints `first-frame <s since process start>`. The figure is timed from outside (spawn to
that line), so it includes the interpreter's and the bootloader's start. Starts its own Xvfb
when DISPLAY is unset.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_ui import _Display
from bench.common import figure, percentile

ROOT = Path(__file__).resolve().parents[1]
RUNS = 9


def _first_frame(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(outside wall time to the first-frame line, the app's own figure) in seconds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env, cwd=ROOT)
    assert proc.stdout is not None
    inside = -1.0
    outside = -1.0
    for line in proc.stdout:
        if line.startswith("first-frame "):
            outside = time.perf_counter() - t0
            inside = float(line.split()[1])
            break
    proc.stdout.close()
    if proc.wait(60) != 0 or outside < 0:
        raise RuntimeError(f"{cmd[0]} --first-frame-exit failed (exit {proc.returncode})")
    return outside, inside


def _size_mb(folder: Path) -> float:
    # Symlinks (PyInstaller links some .so files into place) count once, as in the archive;
    # earlier figures (188 MB) counted them twice. build/build.py prints the same figure.
    return sum(f.stat().st_size for f in folder.rglob("*")
               if f.is_file() and not f.is_symlink()) / 1e6


def run() -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp_s:
        tmp = Path(tmp_s)
        bundle_env = os.environ.get("COUNTER_BUNDLE")
        archive: Path | None = None
        if bundle_env:
            app_dir = Path(bundle_env)
        else:
            out = subprocess.run([sys.executable, str(ROOT / "build" / "build.py"), "--out",
                                  str(tmp / "out"), "--work", str(tmp / "work")],
                                 cwd=ROOT, capture_output=True, text=True, check=True)
            archive, app_dir = (Path(p) for p in out.stdout.strip().splitlines()[-2:])
        env = dict(os.environ)
        env.update(COUNTER_DATA_DIR=str(tmp / "data"), COUNTER_LOG_DIR=str(tmp / "log"),
                   COUNTER_MACHINE_CONFIG=str(tmp / "machine.toml"),
                   COUNTER_USER_CONFIG=str(tmp / "prefs.toml"))
        packaged_cmd = [str(app_dir / "counter-app"), "--first-frame-exit"]
        source_cmd = [sys.executable, "-m", "counter_desk", "--first-frame-exit"]
        packaged: list[float] = []
        source: list[float] = []
        inside_p: list[float] = []
        with _Display():
            env["DISPLAY"] = os.environ["DISPLAY"]
            _first_frame(packaged_cmd, env)  # warm the page cache for both
            _first_frame(source_cmd, env)
            for _ in range(RUNS):  # interleaved so drift hits both alike
                o, i = _first_frame(packaged_cmd, env)
                packaged.append(o)
                inside_p.append(i)
                source.append(_first_frame(source_cmd, env)[0])
        p50_packaged = statistics.median(packaged) * 1000
        p50_source = statistics.median(source) * 1000
        lines.append(figure("packaged_first_frame_p50_ms", p50_packaged, floor=p50_source,
                            target="ratio<=1.5", n=RUNS,
                            p95_ms=round(percentile(packaged, 95) * 1000, 1),
                            source_p95_ms=round(percentile(source, 95) * 1000, 1),
                            in_process_p50_ms=round(statistics.median(inside_p) * 1000, 1)))
        lines.append(figure("bundle_size_mb", _size_mb(app_dir), mode="onedir"))
        if archive is not None:
            lines.append(figure("bundle_archive_mb", archive.stat().st_size / 1e6,
                                archive=archive.name))
    return lines


if __name__ == "__main__":
    import json

    for line in run():
        print(json.dumps(line), flush=True)
