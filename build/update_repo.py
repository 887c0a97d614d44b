"""The release side of signed updates: a TUF repository made with tufup (run by the release
manager, never on a window PC).

    python build/update_repo.py init    --repo R --keys K
    python build/update_repo.py publish --repo R --keys K --bundle build/work/dist/counter-app \
                                        --version 1.2.3

`init` creates the keys (root, targets, snapshot, timestamp: keep the root key offline) and the
first signed metadata; copy `R/metadata/root.json` to `build/updates/root.json` before building
so the app ships with its trust anchor. `publish` adds a bundle folder as
`counter-app-<version>.tar.gz` (plus a binary patch from the previous version) and re-signs.
Serve `R/metadata/` and `R/targets/` over HTTPS from any static web server.

    python build/update_repo.py resign --repo R --keys K [--roles timestamp,snapshot]

`resign` renews the expiry of the short-lived metadata (timestamp: 1 day, snapshot: 7 days;
with `--roles` also targets/root) and signs it again, changing nothing else: without it the
desks refuse every update once timestamp.json expires. Run it from a timer on the machine that
holds the online (timestamp, snapshot) keys: deploy/systemd/counter-update-resign.timer, or
cron `17 */6 * * * python build/update_repo.py resign --repo R --keys K` (docs/deploy.md).
`--publish` (`--skip-patch`) leaves the binary patch out: see docs/deploy.md, "Publishing".
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

APP_NAME = "counter-app"
# counter_app.update_diff makes the patches: importable from a checkout without an install too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _repo(repo_dir: Path, keys_dir: Path) -> Any:
    from tufup.repo import Repository

    from counter_app.update_diff import TarBlockDiff

    return Repository(app_name=APP_NAME, repo_dir=repo_dir, keys_dir=keys_dir,
                      binary_diff=TarBlockDiff,
                      # Short-lived timestamp/snapshot limit freeze attacks; a year for root.
                      expiration_days={"root": 365, "targets": 90, "snapshot": 7,
                                       "timestamp": 1})


def init(repo_dir: Path, keys_dir: Path) -> Path:
    """Create keys and the first metadata; returns the path of the root.json to ship."""
    # tufup writes its config file into the current folder: keep it beside the repository.
    repo_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(repo_dir.parent):
        repo = _repo(repo_dir, keys_dir)
        repo.save_config()
        repo.initialize()
    return repo_dir / "metadata" / "root.json"


def publish(repo_dir: Path, keys_dir: Path, bundle: Path, version: str, *,
            skip_patch: bool = False) -> Path:
    """Add the bundle folder as a new signed target; returns the archive path."""
    from tufup.repo import Repository

    from counter_app.update_diff import TarBlockDiff

    with contextlib.chdir(repo_dir.parent):
        repo = Repository.from_config()
        # The block diff (counter_app/update_diff.py): seconds instead of bsdiff4's minutes over
        # the whole archive; also for repositories made before it (their config names none).
        repo.binary_diff = TarBlockDiff
        repo.add_bundle(new_bundle_dir=bundle, new_version=version, skip_patch=skip_patch)
        repo.publish_changes(private_key_dirs=[keys_dir])
    return repo_dir / "targets" / f"{APP_NAME}-{version}.tar.gz"


RESIGN_ROLES = ("snapshot", "timestamp")


def resign(repo_dir: Path, keys_dir: Path, roles: tuple[str, ...] = RESIGN_ROLES) -> dict[str, str]:
    """Renew the expiry of `roles` (and what must follow: a new snapshot makes a new
    timestamp) and sign them again; returns role -> new expiry (ISO)."""
    from tufup.repo import Repository

    order = [r for r in ("root", "targets", "snapshot", "timestamp") if r in roles]
    if "targets" in order and "snapshot" not in order:
        order.append("snapshot")
    if "snapshot" in order and "timestamp" not in order:
        order.append("timestamp")
    with contextlib.chdir(repo_dir.parent):
        repo = Repository.from_config()
        for role in order:
            # A new expiry makes the role "modified"; publish_changes bumps its version, signs
            # it and updates the version recorded by the role that lists it.
            repo.refresh_expiration_date(role)
        repo.publish_changes(private_key_dirs=[keys_dir])
        return {r: getattr(repo.roles, r).signed.expires.isoformat() for r in order}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="signed update repository (tufup)")
    p.add_argument("action", choices=("init", "publish", "resign"))
    p.add_argument("--repo", type=Path, required=True)
    p.add_argument("--keys", type=Path, required=True)
    p.add_argument("--bundle", type=Path)
    p.add_argument("--version")
    p.add_argument("--skip-patch", action="store_true",
                   help="publish: no binary patch (desks download the whole archive)")
    p.add_argument("--roles", default=",".join(RESIGN_ROLES),
                   help="resign: comma-separated roles (default: snapshot,timestamp)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    repo, keys = a.repo.resolve(), a.keys.resolve()
    if a.action == "init":
        print(init(repo, keys))
        return 0
    if a.action == "resign":
        roles = tuple(r.strip() for r in a.roles.split(",") if r.strip())
        bad = [r for r in roles if r not in ("root", "targets", "snapshot", "timestamp")]
        if bad:
            p.error(f"unknown role(s): {', '.join(bad)}")
        for role, expires in resign(repo, keys, roles).items():
            print(f"{role}: expires {expires}")
        return 0
    if not a.bundle or not a.version:
        p.error("publish needs --bundle and --version")
    print(publish(repo, keys, a.bundle.resolve(), a.version, skip_patch=a.skip_patch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
