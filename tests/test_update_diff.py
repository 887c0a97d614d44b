"""The block diff for update patches (counter_app/update_diff.py): exact round trips on real tar
archives, damaged or foreign patches refused, and a real desk update client applying a patch
published by build/update_repo.py from a signed repository on loopback."""

from __future__ import annotations

import io
import os
import random
import shutil
import tarfile
from pathlib import Path

import bsdiff4  # type: ignore[import-untyped]
import pytest

from counter_app import update_diff
from counter_app.update_diff import PatchFormatError
from counter_app.updates import Updater, UpdateSettings, install_linux
from tests.test_updates import StaticServer, repo_tool


def bundle(where: Path, version: str, *, seed: int = 7) -> Path:
    """A bundle like the desk's: big unchanged libraries, a changed executable, one new file."""
    app = where / f"app-{version}"
    lib = app / "_internal"
    lib.mkdir(parents=True)
    rnd = random.Random(seed)
    for i in range(6):
        (lib / f"lib{i}.so").write_bytes(rnd.randbytes(300_000 + i * 1111))
    exe = bytearray(random.Random(1).randbytes(400_000))
    exe[200_000:200_000 + 64] = version.encode().ljust(64, b".")  # "our code changed"
    (app / "counter-app").write_bytes(bytes(exe))
    (app / "counter-app").chmod(0o755)
    (app / "VERSION").write_text(version)
    if version != "1.0.0":
        (lib / f"new-in-{version}.txt").write_text("added " * 1000)
    return app


def tar_bytes(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(folder, arcname=".")
    return buf.getvalue()


def test_round_trip_on_two_tar_archives_small_patch(tmp_path: Path) -> None:
    src = tar_bytes(bundle(tmp_path, "1.0.0"))
    dst = tar_bytes(bundle(tmp_path, "2.0.0"))
    p = update_diff.diff(src_bytes=src, dst_bytes=dst)
    assert update_diff.patch(src_bytes=src, patch_bytes=p) == dst
    assert len(p) < len(dst) / 20, (len(p), len(dst))


@pytest.mark.parametrize("case", ["identical", "empty_old", "empty_new", "unaligned", "shrunk"])
def test_round_trip_edge_cases(case: str) -> None:
    rnd = random.Random(case)
    src = rnd.randbytes(50_000)
    dst = {"identical": src, "empty_old": src, "empty_new": b"",
           "unaligned": src[:777] + b"xyz" + src[777:], "shrunk": src[4096:20_000]}[case]
    if case == "empty_old":
        src = b""
    p = update_diff.diff(src_bytes=src, dst_bytes=dst)
    assert update_diff.patch(src_bytes=src, patch_bytes=p) == dst


def test_damaged_or_foreign_patch_is_refused() -> None:
    src = random.Random(3).randbytes(20_000)
    dst = src[:10_000] + b"new" * 100 + src[10_000:]
    with pytest.raises(PatchFormatError):
        update_diff.patch(src_bytes=src, patch_bytes=bsdiff4.diff(src, dst))  # the old format
    good = update_diff.diff(src_bytes=src, dst_bytes=dst)
    bad_offset = bytearray(good)
    # the first op's offset field points far outside the old archive
    bad_offset[len(update_diff.MAGIC) + 8 + 1:len(update_diff.MAGIC) + 8 + 9] = (1 << 40).to_bytes(8, "little")
    with pytest.raises((PatchFormatError, ValueError)):
        update_diff.patch(src_bytes=src, patch_bytes=bytes(bad_offset))
    with pytest.raises(PatchFormatError):
        update_diff.patch(src_bytes=src, patch_bytes=update_diff.MAGIC + b"\x01")


def test_desk_client_applies_a_published_patch(tmp_path: Path) -> None:
    repo_dir, keys = tmp_path / "rel" / "repo", tmp_path / "rel" / "keys"
    root_json = repo_tool.init(repo_dir, keys)
    for v in ("1.0.0", "2.0.0"):
        repo_tool.publish(repo_dir, keys, bundle(tmp_path / "bundles", v), v)
    patch_file = repo_dir / "targets" / "counter-app-2.0.0.patch"
    assert patch_file.read_bytes().startswith(update_diff.MAGIC)
    root = tmp_path / "opt" / "counter-app"
    install_linux(bundle(tmp_path / "first", "1.0.0"), root, version="1.0.0")
    cache = tmp_path / "cache"
    # The desk keeps the archive it runs (from its last update): that is what a patch applies to.
    (cache / "targets").mkdir(parents=True)
    shutil.copy(repo_dir / "targets" / "counter-app-1.0.0.tar.gz", cache / "targets")
    srv = StaticServer(repo_dir)
    try:
        up = Updater(UpdateSettings(url=srv.url, install_root=root, cache_dir=cache,
                                    root_json=root_json), "1.0.0")
        assert up.check_and_stage() == "2.0.0"
    finally:
        srv.close()
    assert (cache / "targets" / "counter-app-2.0.0.patch").is_file(), "took the patch path"
    assert not list((cache / "targets").glob("*.failed"))
    assert up.staged is not None and (up.staged / "VERSION").read_text() == "2.0.0"
    assert (up.staged / "_internal" / "new-in-2.0.0.txt").is_file()
    assert os.access(up.staged / "counter-app", os.X_OK)
