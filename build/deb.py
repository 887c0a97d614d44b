"""Build the Debian packages in one command: `python build/deb.py`.

Two packages (docs/deploy.md, "Packages"):

- `counter-app` (the desk): the frozen onedir bundle of build/build.py under /opt/counter-app,
  a /usr/bin/counter-app launcher, a menu entry, an XDG autostart entry for every desktop
  session (the clerk's), and /usr/sbin/counter-app-config, IT's root step that writes the
  machine config /etc/xdg/counter-app/config.toml (`counter-app setup` without an enrollment
  code: enrolment is the clerk's own step, in the clerk's keyring). Purge removes the config.
- `hall-server` (the reference server): a Python venv under /opt/hall-server/venv made with the
  system's python3 (the server's dependencies, pinned as in pyproject.toml, plus the hall_server
  package), the systemd template unit `hall-server@.service` (the instance is the port), its own
  system user `hall`, data dir /var/lib/hall-server (0700, owner hall) and /etc/hall-server/env
  (0600). postinst makes the user, folders and env file (first install only) and restarts the
  running instances on upgrade; prerm stops them on removal; postrm purge deletes the data, the
  env file and the user.

Options: `--app-dir DIR` (an already built desk folder; default: run build/build.py first),
`--version V` (default: the git version made Debian-safe), `--out DIR` (default build/dist),
`--work DIR` (default build/work; the server venv is cached there by requirements hash),
`--only desk|server`, `--compress gzip|none` (none: tests). Prints each .deb path on its own
line at the end.

No network beyond PyPI (through pip's cache) for the server venv, and only when its
requirements change. Compression is gzip: dpkg < 1.21.18 (UOS 20, Kylin V10) cannot read zstd
and xz costs a minute per build on two cores.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.metadata as md
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEBIAN = ROOT / "build" / "debian"
MAINTAINER = "Hall IT <it@hall.invalid>"
SERVER_PREFIX = "/opt/hall-server"
DESK_PREFIX = "/opt/counter-app"
# Imported by name at run time (uvicorn's loop/http, psycopg's C build, FastAPI's forms), so an
# import scan of hall_server cannot see them.
SERVER_RUNTIME_EXTRA = ("uvicorn", "httptools", "uvloop", "psycopg", "psycopg-binary",
                        "python-multipart", "openpyxl")


class BuildError(Exception):
    """A packaging step failed; the message says which."""


def debian_version(version: str) -> str:
    """A Debian version from a git describe string: v1.2.3-4-gabc -> 1.2.3+4.gabc."""
    v = version.lstrip("v")
    m = re.match(r"^(\d+(?:\.\d+)*)(?:-(\d+)-g([0-9a-f]+))?(-dirty)?$", v)
    if m:
        out = m.group(1)
        if m.group(2):
            out += f"+{m.group(2)}.g{m.group(3)}"
        if m.group(4):
            out += "+dirty"
        return out
    safe = re.sub(r"[^A-Za-z0-9.+~]", ".", v)
    return safe if safe[:1].isdigit() else f"0~{safe}"


def arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()


# ---------------------------------------------------------------- the server's requirements

def _pins() -> dict[str, str]:
    """Pinned requirements of pyproject.toml (all groups): normalised name -> requirement."""
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    reqs = list(data["project"]["dependencies"])
    for group in data["project"].get("optional-dependencies", {}).values():
        reqs += group
    out: dict[str, str] = {}
    for r in reqs:
        name = re.split(r"[\[=<>!;~ ]", r, maxsplit=1)[0]
        out.setdefault(_norm(name), r)
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# Our own packages the server runs: hall_server and the leaf it shares with the desk (the log
# masking rules). Copied into the venv; never looked up among third-party distributions.
SERVER_PACKAGES = ("hall_server", "pii_mask")


def server_imports() -> set[str]:
    """Top-level third-party modules our server packages import anywhere (nested imports too)."""
    mods: set[str] = set()
    for py in (p for pkg in SERVER_PACKAGES for p in (ROOT / pkg).rglob("*.py")):
        tree = ast.parse(py.read_text(encoding="utf-8"), str(py))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods.add(node.module.split(".")[0])
    return {m for m in mods if m not in sys.stdlib_module_names and m not in SERVER_PACKAGES
            and m != "__future__"}


def server_requirements() -> list[str]:
    """The pinned requirements the server venv needs, from pyproject.toml's pins."""
    pins = _pins()
    dists = md.packages_distributions()
    names: set[str] = {_norm(n) for n in SERVER_RUNTIME_EXTRA}
    for mod in server_imports():
        found = dists.get(mod)
        if not found:
            raise BuildError(f"hall_server imports {mod!r}, which no installed distribution "
                             "provides: install the project's dependencies first")
        names.update(_norm(d) for d in found)
    reqs = []
    for n in sorted(names):
        req = pins.get(n)
        if req is None:
            continue  # a transitive dependency of a pinned one: pip resolves it
        reqs.append(req)
    return reqs


def build_server_venv(work: Path, reqs: list[str]) -> Path:
    """A venv of /usr/bin/python3 with `reqs`, cached in work/ by their hash."""
    key = hashlib.sha256("\n".join(reqs).encode()).hexdigest()[:16]
    venv = work / f"server-venv-{key}"
    if (venv / ".complete").is_file():
        return venv
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile",
                    "--disable-pip-version-check", *reqs], check=True)
    # pip itself stays: it is how `python -m pip list` answers IT's "what versions run here?".
    (venv / ".complete").write_text(key)
    return venv


def _relocate(src: Path, dest: Path, old: str, new: str) -> None:
    """Copy a venv and rewrite its absolute paths (script shebangs, activate, pyvenv.cfg)."""
    shutil.copytree(src, dest, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".complete"))
    for f in [*(dest / "bin").iterdir(), dest / "pyvenv.cfg"]:
        if f.is_symlink() or not f.is_file():
            continue
        data = f.read_bytes()
        if old.encode() in data:
            f.write_bytes(data.replace(old.encode(), new.encode()))


def glibc_needed(folder: Path, default: str = "2.31") -> str:
    """The highest GLIBC_x.y symbol version any ELF file in `folder` needs (objdump -T): the
    real baseline of a bundle, which depends on where it was built (docs/deploy.md)."""
    if shutil.which("objdump") is None:
        return default
    files = [str(f) for f in folder.rglob("*") if f.is_file() and not f.is_symlink()
             and f.open("rb").read(4) == b"\x7fELF"]
    best = (0, 0)
    for i in range(0, len(files), 200):
        r = subprocess.run(["objdump", "-T", *files[i:i + 200]], capture_output=True, text=True)
        for major, minor in re.findall(r"GLIBC_(\d+)\.(\d+)", r.stdout):
            best = max(best, (int(major), int(minor)))
    return f"{best[0]}.{best[1]}" if best != (0, 0) else default


# ---------------------------------------------------------------- packing

def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def _normalise_modes(stage: Path) -> None:
    """Debian's modes: dirs 0755, files 0644 or 0755 if executable by the owner."""
    for p in [stage, *stage.rglob("*")]:
        if p.is_symlink():
            continue
        if p.is_dir():
            p.chmod(0o755)
        elif ".so" in p.name:
            p.chmod(0o644)  # shared libraries are loaded, not run
        else:
            p.chmod(0o755 if p.stat().st_mode & stat.S_IXUSR else 0o644)


def _doc(stage: Path, package: str, version: str) -> None:
    """copyright and a changelog, as Debian policy asks of every binary package."""
    doc = stage / "usr" / "share" / "doc" / package
    doc.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEBIAN / "copyright", doc / "copyright")
    stamp = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(
        int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or time.time()))
    log = (f"{package} ({version}) stable; urgency=medium\n\n"
           f"  * Release {version}: see docs/ in the source repository.\n\n"
           f" -- {MAINTAINER}  {stamp}\n")
    import gzip

    # A native package (no Debian revision): the changelog is changelog.gz.
    with gzip.GzipFile(doc / "changelog.gz", "wb", mtime=0, compresslevel=9) as gz:
        gz.write(log.encode())


def _control(stage: Path, package: str, version: str, fields: dict[str, str],
             scripts: tuple[str, ...], conffiles: list[str]) -> None:
    ctl = stage / "DEBIAN"
    ctl.mkdir(parents=True, exist_ok=True)
    size_kb = sum(f.stat().st_size for f in stage.rglob("*")
                  if f.is_file() and not f.is_symlink() and "DEBIAN" not in f.parts) // 1024
    head = {"Package": package, "Version": version, "Architecture": arch(),
            "Maintainer": MAINTAINER, "Installed-Size": str(size_kb), **fields}
    desc = head.pop("Description")
    text = "".join(f"{k}: {v}\n" for k, v in head.items()) + f"Description: {desc}\n"
    _write(ctl / "control", text)
    for s in scripts:
        shutil.copy(DEBIAN / f"{package}.{s}", ctl / s)
        (ctl / s).chmod(0o755)
    if conffiles:
        _write(ctl / "conffiles", "".join(c + "\n" for c in conffiles))
    sums = []
    for f in sorted(stage.rglob("*")):
        if f.is_file() and not f.is_symlink() and f.relative_to(stage).parts[0] != "DEBIAN":
            h = hashlib.md5(f.read_bytes(), usedforsecurity=False).hexdigest()
            sums.append(f"{h}  {f.relative_to(stage).as_posix()}\n")
    _write(ctl / "md5sums", "".join(sums))


COMPRESS = {"gzip": ["-Zgzip", "-z6"], "none": ["-Znone"]}


def _pack(stage: Path, out: Path, package: str, version: str, compress: str = "gzip") -> Path:
    deb = out / f"{package}_{version}_{arch()}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", *COMPRESS[compress], "--build",
                    str(stage), str(deb)], check=True, stdout=subprocess.DEVNULL)
    return deb


def desk_deb(app_dir: Path, version: str, out: Path, work: Path, compress: str = "gzip") -> Path:
    stage = Path(tempfile.mkdtemp(prefix="deb-desk-", dir=work))
    try:
        shutil.copytree(app_dir, stage / DESK_PREFIX.lstrip("/"), symlinks=True,
                        ignore=shutil.ignore_patterns(".DS_Store"))  # macOS litter in a wheel
        for name, dest, mode in (
            ("counter-app.launcher", "usr/bin/counter-app", 0o755),
            ("counter-app-config", "usr/sbin/counter-app-config", 0o755),
            ("counter-app.desktop", "usr/share/applications/counter-app.desktop", 0o644),
            ("counter-app-autostart.desktop", "etc/xdg/autostart/counter-app.desktop", 0o644),
            ("counter-app-config.8", "usr/share/man/man8/counter-app-config.8", 0o644),
            ("counter-app.1", "usr/share/man/man1/counter-app.1", 0o644),
        ):
            _write(stage / dest, (DEBIAN / name).read_text(encoding="utf-8"), mode)
        _gzip_man(stage / "usr/share/man/man8/counter-app-config.8")
        _gzip_man(stage / "usr/share/man/man1/counter-app.1")
        _doc(stage, "counter-app", version)
        _normalise_modes(stage)
        _control(stage, "counter-app", version, {
            "Section": "misc", "Priority": "optional",
            # The bundle carries Python, Tk and its libraries; SANE must be the system's (the
            # spec leaves libsane out); a Secret Service keyring holds the device credential.
            "Depends": f"libc6 (>= {glibc_needed(app_dir)}), libsane1",
            "Recommends": "gnome-keyring, fonts-wqy-microhei | fonts-noto-cjk",
            "Homepage": "https://hall.invalid/counter-app",
            "Description": "counter desk for government service hall windows\n"
                           " The desk a clerk uses at a service hall window: queue calls, "
                           "matters,\n document capture and citizen ratings, talking to the "
                           "hall server.",
        }, ("postrm",), ["/etc/xdg/autostart/counter-app.desktop"])
        return _pack(stage, out, "counter-app", version, compress)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _gzip_man(page: Path) -> None:
    import gzip

    with gzip.GzipFile(str(page) + ".gz", "wb", mtime=0, compresslevel=9) as gz:
        gz.write(page.read_bytes())
    page.unlink()


def server_deb(version: str, out: Path, work: Path, compress: str = "gzip") -> Path:
    reqs = server_requirements()
    venv_src = build_server_venv(work, reqs)
    stage = Path(tempfile.mkdtemp(prefix="deb-server-", dir=work))
    try:
        venv = stage / SERVER_PREFIX.lstrip("/") / "venv"
        _relocate(venv_src, venv, str(venv_src), f"{SERVER_PREFIX}/venv")
        site = next((venv / "lib").glob("python3*/site-packages"))
        for pkg in SERVER_PACKAGES:
            shutil.copytree(ROOT / pkg, site / pkg,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _drop_unused(site)
        _write(venv / "bin" / "hall-server",
               f"#!{SERVER_PREFIX}/venv/bin/python\n"
               "import sys\n\nfrom hall_server.cli import main\n\nsys.exit(main())\n", 0o755)
        _check_server_imports(venv_src, site)
        # Debug info is most of the wheels' extension modules (PyInstaller strips the desk's).
        sos = [str(f) for f in venv.rglob("*.so*") if f.is_file() and not f.is_symlink()]
        if sos and shutil.which("strip"):
            subprocess.run(["strip", "--strip-unneeded", *sos], check=False,
                           stderr=subprocess.DEVNULL)
        _write(stage / "usr/bin/hall-server",
               (DEBIAN / "hall-server.wrapper").read_text(encoding="utf-8"), 0o755)
        unit = (ROOT / "deploy" / "systemd" / "hall-server@.service").read_text(encoding="utf-8")
        _write(stage / "lib/systemd/system/hall-server@.service", unit)
        _write(stage / "usr/share/hall-server/env.example",
               (ROOT / "deploy" / "systemd" / "env.example").read_text(encoding="utf-8"))
        _write(stage / "usr/share/hall-server/hall.example.toml",
               (ROOT / "hall.example.toml").read_text(encoding="utf-8"))
        _write(stage / "usr/share/man/man1/hall-server.1",
               (DEBIAN / "hall-server.1").read_text(encoding="utf-8"))
        _gzip_man(stage / "usr/share/man/man1/hall-server.1")
        _doc(stage, "hall-server", version)
        _normalise_modes(stage)
        pyver = re.search(r"python3\.(\d+)", site.as_posix())
        minor = int(pyver.group(1)) if pyver else 11
        _control(stage, "hall-server", version, {
            "Section": "net", "Priority": "optional",
            # The venv's compiled wheels are for this python3 minor version.
            "Depends": f"python3 (>= 3.{minor}), python3 (<< 3.{minor + 1}), adduser, "
                       f"libc6 (>= {glibc_needed(venv)})",
            "Suggests": "postgresql, nginx",
            "Homepage": "https://hall.invalid/counter-app",
            "Description": "reference hall server (Hall API v1) for service hall windows\n"
                           " The queue, ratings, documents and console of a service hall, "
                           "as a\n systemd unit with its own user.",
        }, ("postinst", "prerm", "postrm"), [])
        return _pack(stage, out, "hall-server", version, compress)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# Files of the wheels the server never uses, left out of the package: ReportLab's demo and
# standard-font files (the reports embed the system's CJK font, hall_server/reports.py; the
# standard 14 fonts' metrics are Python modules), whose licences lintian cannot clear, and
# certifi's own tests.
UNUSED = ("reportlab/fonts/*.pfb", "reportlab/fonts/*.afm", "reportlab/fonts/*.ttf",
          "reportlab/fonts/*.sfd", "certifi/tests")


def _drop_unused(site: Path) -> None:
    for pattern in UNUSED:
        for f in site.glob(pattern):
            if f.is_dir():
                shutil.rmtree(f)
            else:
                f.unlink()


def _check_server_imports(venv_src: Path, site: Path) -> None:
    """Every hall_server module must import in the venv (a missed dependency fails here)."""
    code = ("import pkgutil, importlib, hall_server\n"
            "bad = []\n"
            "for m in pkgutil.walk_packages(hall_server.__path__, 'hall_server.'):\n"
            "    if m.name.endswith('__main__') or '.migrations.' in m.name:\n"
            "        continue\n"
            "    try:\n        importlib.import_module(m.name)\n"
            "    except Exception as e:\n        bad.append(f'{m.name}: {e!r}')\n"
            "print('\\n'.join(bad)); raise SystemExit(1 if bad else 0)\n")
    env = dict(os.environ, PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    # Run from the venv's site folder: from the source tree, `-c` would find our packages in the
    # current folder and pass a venv that lacks one (pii_mask was missed that way).
    r = subprocess.run([str(venv_src / "bin" / "python"), "-c", code], env=env, cwd=str(site),
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError("hall_server modules do not import in the server venv:\n"
                         + r.stdout + r.stderr[-2000:])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--app-dir", type=Path, help="built desk folder (default: build it now)")
    p.add_argument("--version", help="package version (default: from git)")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "dist")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "work")
    p.add_argument("--only", choices=("desk", "server"))
    p.add_argument("--compress", choices=tuple(COMPRESS), default="gzip",
                   help="none: for tests that install and throw away (packs in a second)")
    a = p.parse_args(argv)
    out, work = a.out.resolve(), a.work.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT / "build"))
    import build as desk_build  # build/build.py, beside this file

    version = debian_version(a.version or desk_build.git_version())
    debs: list[Path] = []
    try:
        if a.only != "server":
            app_dir = a.app_dir
            if app_dir is None:
                r = desk_build.main(["--out", str(out), "--work", str(work),
                                     "--version", a.version or desk_build.git_version()])
                if r != 0:
                    return r
                app_dir = work / "dist" / "counter-app"
            debs.append(desk_deb(app_dir.resolve(), version, out, work, a.compress))
        if a.only != "desk":
            debs.append(server_deb(version, out, work, a.compress))
    except (BuildError, subprocess.CalledProcessError) as exc:
        print(f"deb build FAILED: {exc}", file=sys.stderr)
        return 3
    for d in debs:
        print(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
