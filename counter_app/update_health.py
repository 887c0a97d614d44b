"""`doctor`'s look at the signed update repository: do its metadata expire soon?

TUF metadata carry expiry dates (timestamp 1 day, snapshot 7 days, targets 90, root 365, see
build/update_repo.py). Once one has expired every desk refuses every update, silently from the
clerk's point of view. doctor fetches the four top-level files from `update_url/metadata/`
(bounded by a timeout, with the configured CA bundle and proxy rules of the desk: no proxy from
the environment) and reports the earliest expiry: FAIL when past, WARN within 48 hours, OK
otherwise. It only reads dates: signatures are checked by the update client itself (tufup), so a
forged file here can at worst change this line, never what is installed.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime

from counter_app.config import Settings
from counter_app.selftest import FAIL, INFO, OK, WARN, CheckResult

ROLES = ("timestamp", "snapshot", "targets", "root")
WARN_WITHIN_S = 48 * 3600.0
FETCH_TIMEOUT_S = 5.0
RESIGN_ZH = ("请发布管理员在持有签名密钥的机器上运行 python build/update_repo.py resign "
             "（并启用 counter-update-resign.timer 定时续签）")
RESIGN_EN = ("The release manager runs `python build/update_repo.py resign` on the machine with "
             "the signing keys (and enables counter-update-resign.timer so it renews itself)")


def _opener(s: Settings) -> urllib.request.OpenerDirector:
    ctx = ssl.create_default_context(cafile=str(s.ca_bundle) if s.ca_bundle else None)
    proxy = str(getattr(s, "proxy", "") or "")
    # An empty ProxyHandler ignores the environment's proxies, as the desk's own client does.
    proxies = {"http": proxy, "https": proxy} if proxy else {}
    return urllib.request.build_opener(urllib.request.ProxyHandler(proxies),
                                       urllib.request.HTTPSHandler(context=ctx))


def fetch_expiries(s: Settings) -> dict[str, datetime]:
    """Role -> expiry of the repository's current metadata (raises OSError / ValueError)."""
    base = str(s.update_url).rstrip("/") + "/metadata/"
    opener = _opener(s)
    out: dict[str, datetime] = {}
    for role in ROLES:
        with opener.open(f"{base}{role}.json", timeout=FETCH_TIMEOUT_S) as resp:
            doc = json.loads(resp.read(4 * 1024 * 1024))
        expires = str(doc["signed"]["expires"]).replace("Z", "+00:00")
        out[role] = datetime.fromisoformat(expires).astimezone(UTC)
    return out


def check_update_metadata(s: Settings, *, now: Callable[[], float]) -> list[CheckResult]:
    if not str(getattr(s, "update_url", "") or ""):
        return [CheckResult("update metadata", INFO, "updates not configured (update_url empty)")]
    try:
        expiries = fetch_expiries(s)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [CheckResult("update metadata", WARN, f"cannot read {s.update_url}/metadata/: {exc}",
                            "检查更新服务器地址（update_url）与网络；柜台可照常使用",
                            "Check update_url and the network to it; the desk works meanwhile")]
    role, first = min(expiries.items(), key=lambda kv: kv[1])
    left = first.timestamp() - now()
    when = first.strftime("%Y-%m-%d %H:%M UTC")
    if left <= 0:
        return [CheckResult("update metadata", FAIL,
                            f"{role}.json expired at {when}: every update is refused",
                            RESIGN_ZH, RESIGN_EN)]
    if left < WARN_WITHIN_S:
        return [CheckResult("update metadata", WARN,
                            f"{role}.json expires in {left / 3600:.0f} h ({when}); after that "
                            "every update is refused", RESIGN_ZH, RESIGN_EN)]
    return [CheckResult("update metadata", OK, f"earliest expiry {role}.json at {when}")]
