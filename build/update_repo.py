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
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

APP_NAME = "counter-app"


def _repo(repo_dir: Path, keys_dir: Path) -> Any:
    from tufup.repo import Repository

    return Repository(app_name=APP_NAME, repo_dir=repo_dir, keys_dir=keys_dir,
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


def publish(repo_dir: Path, keys_dir: Path, bundle: Path, version: str) -> Path:
    """Add the bundle folder as a new signed target; returns the archive path."""
    from tufup.repo import Repository

    with contextlib.chdir(repo_dir.parent):
        repo = Repository.from_config()
        repo.add_bundle(new_bundle_dir=bundle, new_version=version)
        repo.publish_changes(private_key_dirs=[keys_dir])
    return repo_dir / "targets" / f"{APP_NAME}-{version}.tar.gz"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="signed update repository (tufup)")
    p.add_argument("action", choices=("init", "publish"))
    p.add_argument("--repo", type=Path, required=True)
    p.add_argument("--keys", type=Path, required=True)
    p.add_argument("--bundle", type=Path)
    p.add_argument("--version")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    repo, keys = a.repo.resolve(), a.keys.resolve()
    if a.action == "init":
        print(init(repo, keys))
        return 0
    if not a.bundle or not a.version:
        p.error("publish needs --bundle and --version")
    print(publish(repo, keys, a.bundle.resolve(), a.version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
