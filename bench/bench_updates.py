"""Publishing a signed update (build/update_repo.py publish) of the real desk bundle: where the
time goes and what the block diff saves. `python -m bench updates`.

Bundle: COUNTER_BUNDLE=<app folder>, else build/build.py builds one into a temp folder. The
"next release" is a copy with every file's mtime new (a rebuild), 64 bytes of the executable
changed (our code) and one new file. Same run, same repository layout:

- floor: `publish --skip-patch` (tar + gzip of the bundle and signing: what any publish pays);
- `updates_publish_patch_s`: publish with the block diff patch (counter_app/update_diff.py),
  ratio to the floor; the issue's goal is a publish under 30 s (`goal_s`);
- `updates_publish_bsdiff_s`: the same with tufup's default bsdiff4 (what it took before),
  ratio to the block diff (skip with BENCH_UPDATES_BSDIFF=0: it takes minutes);
- `updates_patch_size_ratio`: patch bytes / full archive bytes (what a desk downloads);
- `updates_apply_patch_s`: a client rebuilding the new archive from the patch, ratio to gunzip
  of the old archive plus gzip of the new (which any patch application does around the diff).
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.common import figure

ROOT = Path(__file__).resolve().parents[1]


def _repo_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("update_repo", ROOT / "build" / "update_repo.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _next_release(app: Path, dest: Path) -> Path:
    shutil.copytree(app, dest, symlinks=True)
    exe = dest / "counter-app"
    data = bytearray(exe.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = b"next-release".ljust(64, b".")
    exe.write_bytes(bytes(data))
    (dest / "_internal" / "release-notes.txt").write_text("next release\n" * 50)
    now = time.time()
    for p in dest.rglob("*"):
        if not p.is_symlink():
            os.utime(p, (now, now))
    return dest


def _publish_pair(tool: ModuleType, base: Path, v1: Path, v2: Path, *, skip_patch: bool,
                  bsdiff: bool = False) -> tuple[float, Path]:
    """Publish v1 then time the publish of v2; returns (seconds, repository folder)."""
    repo, keys = base / "repository", base / "keystore"
    tool.init(repo, keys)
    tool.publish(repo, keys, v1, "1.0.0", skip_patch=True)
    if bsdiff:
        from tufup.common import DefaultBinaryDiff  # type: ignore[import-untyped]

        # tufup's own default, as publishes were before counter_app/update_diff.py.
        with _patched_diff(tool, DefaultBinaryDiff):
            t0 = time.perf_counter()
            tool.publish(repo, keys, v2, "1.0.1", skip_patch=False)
            return time.perf_counter() - t0, repo
    t0 = time.perf_counter()
    tool.publish(repo, keys, v2, "1.0.1", skip_patch=skip_patch)
    return time.perf_counter() - t0, repo


@contextlib.contextmanager
def _patched_diff(tool: ModuleType, cls: Any) -> Any:
    import counter_app.update_diff as ud

    saved = ud.TarBlockDiff
    ud.TarBlockDiff = cls  # publish() imports it by name at call time
    try:
        yield
    finally:
        ud.TarBlockDiff = saved


def run() -> list[dict[str, Any]]:
    logging.getLogger("tufup").setLevel(logging.WARNING)
    tool = _repo_tool()
    lines: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-updates-") as tmp_s:
        tmp = Path(tmp_s)
        bundle_env = os.environ.get("COUNTER_BUNDLE")
        if bundle_env:
            app = Path(bundle_env)
        else:
            out = subprocess.run([sys.executable, str(ROOT / "build" / "build.py"), "--out",
                                  str(tmp / "out"), "--work", str(tmp / "work")],
                                 cwd=ROOT, capture_output=True, text=True, check=True)
            app = Path(out.stdout.strip().splitlines()[-1])
        v2 = _next_release(app, tmp / "next" / "counter-app")
        floor, _ = _publish_pair(tool, tmp / "floor", app, v2, skip_patch=True)
        block, repo = _publish_pair(tool, tmp / "block", app, v2, skip_patch=False)
        lines.append(figure("updates_publish_patch_s", block, floor=floor, target="ratio<=2",
                            goal_s=30))
        archive = repo / "targets" / "counter-app-1.0.1.tar.gz"
        patch = repo / "targets" / "counter-app-1.0.1.patch"
        lines.append(figure("updates_patch_size_ratio", patch.stat().st_size / archive.stat().st_size,
                            target="value<=0.1", patch_bytes=patch.stat().st_size,
                            archive_bytes=archive.stat().st_size))
        # The client's side: gunzip the old archive, patch, verify (tufup's Patcher), gzip.
        from tufup.common import (
            Patcher,  # type: ignore[import-untyped]
            TargetMeta,
        )

        from counter_app.update_diff import TarBlockDiff

        old = repo / "targets" / "counter-app-1.0.0.tar.gz"
        t0 = time.perf_counter()
        raw = gzip.decompress(old.read_bytes())
        gzip.compress(raw, compresslevel=6)
        unzip_zip = time.perf_counter() - t0
        dst = tmp / "applied" / "counter-app-1.0.1.tar.gz"
        dst.parent.mkdir()
        t0 = time.perf_counter()
        signed = json.loads((repo / "metadata" / "targets.json").read_text())["signed"]
        meta = TargetMeta(target_path=patch.name, custom=signed["targets"][patch.name]["custom"])
        Patcher.patch_and_verify(src_path=old, dst_path=dst, patch_targets={meta: patch},
                                 binary_diff=TarBlockDiff)
        lines.append(figure("updates_apply_patch_s", time.perf_counter() - t0, floor=unzip_zip,
                            target="ratio<=3"))
        if os.environ.get("BENCH_UPDATES_BSDIFF", "1") != "0":
            slow, _ = _publish_pair(tool, tmp / "bsdiff", app, v2, skip_patch=False, bsdiff=True)
            lines.append(figure("updates_publish_bsdiff_s", slow, floor=block,
                                note="tufup's default bsdiff4 over the whole uncompressed tar"))
    return lines
