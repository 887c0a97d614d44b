"""The .deb packages (build/deb.py) installed, provisioned, upgraded, removed and purged with
apt/dpkg on this machine, as hall IT does it (docs/deploy.md, "Runbook").

Needs root (dpkg, a system user): marked `root`, and tests/conftest.py turns a skipped `root`
test into a failed run in CI, so a non-root CI cannot look green. The desk packs the session's
frozen build (tests/support/frozen_fixtures.py, built once); the upgrade is the same bundle
packed as the next version (one build per run, not two).

systemd is not PID 1 here, so the unit file is checked with `systemd-analyze verify` and the
server is started the way the unit would start it: its ExecStart (%i = the port) as its User,
in its WorkingDirectory, with its EnvironmentFile, bound to 127.0.0.1 instead of 0.0.0.0 (the
one substitution; loopback only in tests).

IT's commands are counted and timed (`IT` below) and printed: the runbook's claim of fewer than
10 commands and 5 minutes per PC is this test's output.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.frozen_fixtures import FrozenBuild
from tests.support.server_fixtures import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.root, pytest.mark.gui]

DESK_CONFIG = Path("/etc/xdg/counter-app/config.toml")
UNIT = Path("/lib/systemd/system/hall-server@.service")
APT = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "--no-install-recommends"]


class IT:
    """The commands hall IT types, run for real, counted and timed per machine."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, float]] = []

    def run(self, machine: str, cmd: list[str], *, stdin: str | None = None,
            env: dict[str, str] | None = None, timeout: float = 300) -> str:
        t0 = time.monotonic()
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout,
                           env=env)
        self.log.append((machine, shlex.join(cmd), time.monotonic() - t0))
        assert r.returncode == 0, f"{shlex.join(cmd)} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return r.stdout

    def summary(self, machine: str) -> tuple[int, float]:
        rows = [x for x in self.log if x[0] == machine]
        return len(rows), sum(x[2] for x in rows)


def build_debs(app_dir: Path, version: str, out: Path, work: Path) -> dict[str, Path]:
    # Uncompressed: these are installed once and thrown away (release builds use gzip).
    r = subprocess.run([sys.executable, str(ROOT / "build" / "deb.py"), "--app-dir", str(app_dir),
                        "--version", version, "--out", str(out), "--work", str(work),
                        "--compress", "none"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    paths = [Path(p) for p in r.stdout.split() if p.endswith(".deb")]
    return {p.name.split("_")[0]: p for p in paths}


def installed_version(pkg: str) -> str | None:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", pkg],
                       capture_output=True, text=True)
    if r.returncode != 0 or "install ok installed" not in r.stdout:
        return None
    return r.stdout.split()[-1]


def purge_all() -> None:
    # One package at a time, only if installed: apt refuses the whole command when it does not
    # know one of the names (a test that failed before installing the desk left the server in).
    for name in ("counter-app", "hall-server"):
        if installed_version(name):
            subprocess.run([*APT, "purge", name], capture_output=True, timeout=300)


def unit_command(port: int) -> tuple[str, list[str], Path, dict[str, str]]:
    """(User, argv, WorkingDirectory, environment) of the installed unit for instance `port`."""
    fields: dict[str, str] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(\w+)=(.*)$", line.strip())
        if m:
            fields.setdefault(m.group(1), m.group(2))
    env_file = Path(fields["EnvironmentFile"].lstrip("-"))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    for line in env_file.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    argv = shlex.split(fields["ExecStart"].replace("%i", str(port)))
    argv = ["127.0.0.1" if a == "0.0.0.0" else a for a in argv]  # noqa: S104 - loopback in tests
    return fields["User"], argv, Path(fields["WorkingDirectory"]), env


def start_like_the_unit(port: int, log: Path) -> subprocess.Popen[bytes]:
    user, argv, cwd, env = unit_command(port)
    envargs = [f"{k}={v}" for k, v in env.items()]
    with open(log, "ab") as fh:
        proc = subprocess.Popen(["runuser", "-u", user, "--", "env", "-i", *envargs, *argv],
                                cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", timeout=90, proc=proc)  # type: ignore[arg-type]
    except Exception:
        proc.kill()
        raise AssertionError("the unit's command did not serve:\n" + log.read_text(errors="replace")) from None
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# The server venv (pip, ~20 s) is cached across runs by its requirements' hash.
WORK = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "counter-app-deb"


@pytest.fixture(scope="module")
def debs(frozen_build: FrozenBuild, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[dict[str, dict[str, Path]]]:
    if os.geteuid() != 0:
        pytest.skip("installs .deb packages: needs root (CI runs as root; see tests/conftest.py)")
    base = tmp_path_factory.mktemp("debs")
    t0 = time.monotonic()
    out = {v: build_debs(frozen_build.app_dir, v, base / v, WORK) for v in ("1.2.3", "1.2.4")}
    print(f"\n[debs] built 2 versions x 2 packages in {time.monotonic() - t0:.1f} s")
    yield out


@pytest.fixture(scope="module")
def lintian_run(debs: dict[str, dict[str, Path]]) -> Iterator[subprocess.Popen[str]]:
    """lintian started at once, in the background: it reads the packages while the install
    test runs (it takes about a minute on two cores)."""
    if shutil.which("lintian") is None:
        pytest.fail("lintian is not installed (scripts/run.sh installs it)")
    proc = subprocess.Popen(["lintian", "--no-tag-display-limit", *map(str, debs["1.2.3"].values())],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture
def clean_machine() -> Iterator[None]:
    if installed_version("counter-app") or installed_version("hall-server"):
        pytest.fail("counter-app/hall-server already installed on this machine: purge them first")
    try:
        yield
    finally:
        purge_all()


def test_install_provision_selftest_upgrade_remove_purge(
        debs: dict[str, dict[str, Path]], lintian_run: subprocess.Popen[str],
        clean_machine: None, tmp_path: Path) -> None:
    it = IT()
    port = free_port()
    # A folder user `hall` can read (pytest's tmp folders are 0700 root).
    share = Path(tempfile.mkdtemp(prefix="debs-share-"))
    share.chmod(0o755)
    hall_toml = share / "hall.toml"
    server: subprocess.Popen[bytes] | None = None
    try:
        # ------------------------------------------------ the server box
        it.run("server", [*APT, "install", str(debs["1.2.3"]["hall-server"])])
        assert installed_version("hall-server") == "1.2.3"
        user = pwd.getpwnam("hall")
        assert user.pw_uid < 1000 and user.pw_shell.endswith("nologin")
        data = Path("/var/lib/hall-server")
        st = data.stat()
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == user.pw_uid
        env_st = Path("/etc/hall-server/env").stat()
        assert stat.S_IMODE(env_st.st_mode) == 0o600 and env_st.st_uid == 0
        verify = subprocess.run(["systemd-analyze", "verify", f"hall-server@{port}.service"],
                                capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        shutil.copy("/usr/share/hall-server/hall.example.toml", hall_toml)  # IT edits it
        hall_toml.chmod(0o644)
        it.run("server", ["hall-server", "init", "--from", str(hall_toml),
                          "--admin-password-stdin"], stdin="Admin-pass-2026\n")
        assert all(f.stat().st_uid == user.pw_uid for f in data.rglob("*")), \
            "the root wrapper must leave the service's files owned by the service user"
        server = start_like_the_unit(port, tmp_path / "server.log")
        code_out = it.run("pc", ["hall-server", "enrollment-code", "1"])  # per PC, on the server
        code = re.search(r"[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}", code_out)
        assert code, code_out

        # ------------------------------------------------ a window PC (same machine here)
        it.run("pc", [*APT, "install", str(debs["1.2.3"]["counter-app"])])
        assert installed_version("counter-app") == "1.2.3"
        for f in ("/usr/bin/counter-app", "/usr/sbin/counter-app-config",
                  "/opt/counter-app/counter-app", "/usr/share/applications/counter-app.desktop",
                  "/etc/xdg/autostart/counter-app.desktop"):
            assert Path(f).exists(), f
        url = f"http://127.0.0.1:{port}"
        it.run("pc", ["counter-app-config", "--server-url", url, "--hall", "LCX", "--window", "1"])
        assert stat.S_IMODE(DESK_CONFIG.stat().st_mode) == 0o644
        config_text = DESK_CONFIG.read_text(encoding="utf-8")
        assert url in config_text and "window_no = 1" in config_text
        refused = subprocess.run(["counter-app-config", "--enrollment-code", "X"],
                                 capture_output=True, text=True)
        assert refused.returncode == 2 and "clerk" in refused.stderr
        # The clerk's steps: their own files (here in tmp), the machine config from /etc/xdg.
        clerk = dict(os.environ)
        for k in ("COUNTER_MACHINE_CONFIG", "XDG_CONFIG_DIRS", "PYTHONPATH"):
            clerk.pop(k, None)
        clerk.update(COUNTER_DATA_DIR=str(tmp_path / "clerk" / "data"),
                     COUNTER_LOG_DIR=str(tmp_path / "clerk" / "log"),
                     COUNTER_USER_CONFIG=str(tmp_path / "clerk" / "prefs.toml"))
        enrolled = it.run("pc", ["counter-app", "enroll", "--enrollment-code", code.group(0)],
                          env=clerk)
        assert "enrolled at window 1" in enrolled
        selftest = it.run("pc", ["counter-app", "--self-test"], env=clerk, timeout=180)
        assert "FAIL" not in selftest, selftest
        devices = subprocess.run(["hall-server", "device", "list"], capture_output=True,
                                 text=True, timeout=60)
        assert devices.returncode == 0 and "1" in devices.stdout, devices.stdout + devices.stderr

        # ------------------------------------------------ upgrade both to 1.2.4
        stop(server)
        server = None
        uid_before = user.pw_uid
        subprocess.run([*APT, "install", str(debs["1.2.4"]["hall-server"]),
                        str(debs["1.2.4"]["counter-app"])], check=True, capture_output=True,
                       timeout=300)
        assert installed_version("hall-server") == "1.2.4"
        assert installed_version("counter-app") == "1.2.4"
        assert pwd.getpwnam("hall").pw_uid == uid_before
        assert DESK_CONFIG.read_text(encoding="utf-8") == config_text, "upgrade kept the config"
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        server = start_like_the_unit(port, tmp_path / "server.log")
        again = subprocess.run(["hall-server", "device", "list"], capture_output=True, text=True,
                               timeout=60)
        assert again.stdout == devices.stdout, "the database survived the upgrade"
        assert requests.get(f"{url}/api/v1/health", timeout=10).ok
        selftest2 = subprocess.run(["counter-app", "--self-test"], env=clerk, capture_output=True,
                                   text=True, timeout=180)
        assert selftest2.returncode == 0, selftest2.stdout + selftest2.stderr
        stop(server)
        server = None

        # ------------------------------------------------ remove keeps config and data
        subprocess.run([*APT, "remove", "counter-app", "hall-server"], check=True,
                       capture_output=True, timeout=300)
        for gone in ("/usr/bin/counter-app", "/opt/counter-app", "/usr/bin/hall-server",
                     "/opt/hall-server", str(UNIT)):
            assert not Path(gone).exists(), f"{gone} left after remove"
        assert DESK_CONFIG.exists() and Path("/etc/hall-server/env").exists()
        assert any(data.iterdir()), "remove keeps the hall's data"
        pwd.getpwnam("hall")

        # ------------------------------------------------ purge deletes everything
        subprocess.run([*APT, "purge", "counter-app", "hall-server"], check=True,
                       capture_output=True, timeout=300)
        for gone in (DESK_CONFIG.parent, Path("/etc/hall-server"), data,
                     Path("/etc/xdg/autostart/counter-app.desktop")):
            assert not gone.exists(), f"{gone} left after purge"
        with pytest.raises(KeyError):
            pwd.getpwnam("hall")
        with pytest.raises(KeyError):
            grp.getgrnam("hall")
        assert installed_version("counter-app") is None and installed_version("hall-server") is None
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(share, ignore_errors=True)
    n_pc, t_pc = it.summary("pc")
    n_srv, t_srv = it.summary("server")
    print(f"\n[runbook] server box: {n_srv} commands, {t_srv:.1f} s; "
          f"each window PC: {n_pc} commands (its enrollment code on the server included), "
          f"{t_pc:.1f} s")
    for machine, cmd, secs in it.log:
        print(f"[runbook]   {machine:6} {secs:6.1f} s  {cmd}")
    assert n_pc < 10 and t_pc < 300


def test_lintian_tags_are_explained(lintian_run: subprocess.Popen[str]) -> None:
    """Every lintian tag the packages get is explained in docs/deploy.md (its table)."""
    stdout, _ = lintian_run.communicate(timeout=600)
    tags = {m.group(1) for m in re.finditer(r"^[EWIXP]: [\w-]+(?: \w+)?: ([\w-]+)", stdout, re.M)}
    print(f"\n[lintian] tags: {sorted(tags)}")
    docs = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    explained = set(re.findall(r"^\| `([\w-]+)` \|", docs, re.M))
    assert tags <= explained, f"lintian tags not explained in docs/deploy.md: {sorted(tags - explained)}"
