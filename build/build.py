"""Build the desk for this platform in one command: `python build/build.py`.

1. the version from git (`git describe --always --dirty`, or COUNTER_VERSION) is written to a
   generated `counter_app/_version.py` in the work folder that the spec adds to the bundle (the
   source tree is not touched) and, on Windows, to a version resource file for the .exe;
2. PyInstaller runs build/counter-app.spec (onedir);
3. every module of our packages (`SHIPPED_PACKAGES`) must be in the bundle's archive: the
   .py files of the source tree are compared with the PYZ inside the built executable, and a
   missing one fails the build (exit 3, no archive made). PyInstaller only bundles what it sees
   imported, so a module loaded by a string (importlib) silently goes missing otherwise
   (issue 12). `__main__` modules are the source-tree entry points (`python -m`); the build's
   own entry is build/entry.py, so they are not required;
4. the folder is packed as `build/dist/counter-app-<version>-<platform>.tar.gz` (a .zip on
   Windows) and `SHA256SUMS` lists it; the folder's and the archive's sizes are printed.

Options: `--out DIR` (default build/dist), `--work DIR` (default build/work), `--version V`.
Prints the archive path and the app folder path as its last two lines.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Our packages, all of whose modules ship (those absent from the checkout are skipped).
SHIPPED_PACKAGES = ("counter_desk", "counter_app", "ui", "api_client", "pii_mask")


class MissingModules(Exception):
    """Modules of our packages that are not in the built bundle."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(", ".join(missing))
        self.missing = missing


def source_modules(root: Path = ROOT) -> set[str]:
    """Dotted names of the modules of SHIPPED_PACKAGES in the source tree.

    Only folders that are packages (an `__init__.py` all the way up) count: e.g.
    ui/locale/translate_zh.py is a developer script beside the catalogs, not a module.
    """
    found: set[str] = set()
    for pkg in SHIPPED_PACKAGES:
        base = root / pkg
        if not (base / "__init__.py").is_file():
            continue
        for py in base.rglob("*.py"):
            rel = py.relative_to(root)
            if "__pycache__" in rel.parts or py.stem == "__main__":
                continue
            if not all((root / Path(*rel.parts[:i]) / "__init__.py").is_file()
                       for i in range(1, len(rel.parts))):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found.add(".".join(parts))
    return found


def bundled_modules(app_dir: Path) -> set[str]:
    """Module names in the PYZ archive PyInstaller embeds in the built executable."""
    from PyInstaller.archive.readers import CArchiveReader  # type: ignore[import-untyped]

    exe = app_dir / ("counter-app.exe" if sys.platform == "win32" else "counter-app")
    carchive = CArchiveReader(str(exe))
    names: set[str] = set()
    for entry in carchive.toc:
        if entry.endswith(".pyz"):
            names.update(carchive.open_embedded_archive(entry).toc)
    return names


def check_modules(app_dir: Path, root: Path = ROOT) -> None:
    """Raise MissingModules unless every module of our packages is in the bundle."""
    missing = sorted(source_modules(root) - bundled_modules(app_dir))
    if missing:
        raise MissingModules(missing)


def folder_size(folder: Path) -> int:
    """Bytes of the files in a folder; symlinks (PyInstaller links some .so files) count once."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


def git_version() -> str:
    env = os.environ.get("COUNTER_VERSION")
    if env:
        return env
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.strip()
        return out or "0.0.0"
    except (OSError, subprocess.CalledProcessError):
        return "0.0.0"


def platform_tag() -> str:
    system = {"win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    return f"{system}-{platform.machine().lower()}"


def numeric_version(version: str) -> tuple[int, int, int, int]:
    """Four numbers for the Windows version resource (which cannot hold a git hash)."""
    nums = [int(n) for n in re.findall(r"\d+", version.split("-g")[0])[:3]]
    if not re.match(r"v?\d", version):
        nums = []
    m = re.search(r"-(\d+)-g", version)
    nums = (nums + [0, 0, 0])[:3] + [int(m.group(1)) if m else 0]
    return nums[0], nums[1], nums[2], nums[3]


def windows_version_file(version: str, dest: Path) -> Path:
    """A VSVersionInfo file PyInstaller stamps into the .exe (Properties > Details)."""
    v = numeric_version(version)
    dest.write_text(f"""# UTF-8
VSVersionInfo(
  ffi=FixedFileInfo(filevers={v}, prodvers={v}, mask=0x3f, flags=0x0, OS=0x40004,
                    fileType=0x1, subtype=0x0, date=(0, 0)),
  kids=[
    StringFileInfo([StringTable('080404b0', [
      StringStruct('CompanyName', 'counter-app'),
      StringStruct('FileDescription', 'Counter desk for service hall windows'),
      StringStruct('FileVersion', {version!r}),
      StringStruct('InternalName', 'counter-app'),
      StringStruct('OriginalFilename', 'counter-app.exe'),
      StringStruct('ProductName', 'counter-app'),
      StringStruct('ProductVersion', {version!r})])]),
    VarFileInfo([VarStruct('Translation', [2052, 1200])])
  ]
)
""", encoding="utf-8")
    return dest


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pack(app_dir: Path, out_dir: Path, version: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._+-]", "_", version)
    base = out_dir / f"counter-app-{safe}-{platform_tag()}"
    if sys.platform == "win32":
        archive = base.with_suffix(".zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(app_dir.rglob("*")):
                zf.write(f, Path("counter-app") / f.relative_to(app_dir))
    else:
        archive = Path(str(base) + ".tar.gz")
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(app_dir, arcname="counter-app")
    sums = out_dir / "SHA256SUMS"
    lines = [ln for ln in (sums.read_text().splitlines() if sums.exists() else [])
             if not ln.endswith("  " + archive.name)]
    lines.append(f"{sha256(archive)}  {archive.name}")
    sums.write_text("\n".join(lines) + "\n")
    return archive


def build(out_dir: Path, work_dir: Path, version: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if sys.platform == "win32":
        env["COUNTER_VERSION_FILE"] = str(windows_version_file(version, work_dir / "version.txt"))
    version_py = work_dir / "_version.py"
    version_py.write_text(f'"""Written by build/build.py."""\n\nversion = {version!r}\n',
                          encoding="utf-8")
    env["COUNTER_VERSION_PY"] = str(version_py)
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean",
                    "--log-level", "WARN", "--distpath", str(work_dir / "dist"),
                    "--workpath", str(work_dir / "pyi"), str(ROOT / "build" / "counter-app.spec")],
                   cwd=ROOT, env=env, check=True)
    app_dir = work_dir / "dist" / "counter-app"
    check_modules(app_dir)
    return pack(app_dir, out_dir, version), app_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--out", type=Path, default=ROOT / "build" / "dist")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "work")
    p.add_argument("--version", default=None)
    args = p.parse_args(argv)
    version = args.version or git_version()
    if (args.work / "dist" / "counter-app").exists():
        shutil.rmtree(args.work / "dist" / "counter-app")
    try:
        archive, app_dir = build(args.out.resolve(), args.work.resolve(), version)
    except MissingModules as exc:
        print("build FAILED: these modules are in the source tree but not in the bundle "
              "(PyInstaller did not see them imported: a string import? import them plainly "
              "from the composition root, or list them in hiddenimports in "
              "build/counter-app.spec):", file=sys.stderr)
        for name in exc.missing:
            print(f"  missing: {name}", file=sys.stderr)
        return 3
    print(f"bundle size: {folder_size(app_dir) / 1e6:.1f} MB (folder), "
          f"{archive.stat().st_size / 1e6:.1f} MB (archive {archive.name})")
    print(archive)
    print(app_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
