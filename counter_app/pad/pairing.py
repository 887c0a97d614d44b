"""Start pairing a pad at this window, with a supervisor's or IT's credential.

The supervisor signs in through a separate HallClient used only for this one call (the desk's
own session is a window staff's and may not pair), asks the server for a one-time pairing and
signs out again. The result is what the desk shows: a QR code of the pad page's URL carrying
the 128-bit token in the fragment (`http://<lan-ip>:<port>/pad/#pair=<token>`: a fragment never
reaches a server log), the 6-digit fallback code and the expiry.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from counter_app.errors import CounterError, from_api


@dataclass(frozen=True)
class PairingOffer:
    window_no: int
    url: str  # the pad page with #pair=<token>
    token: str
    code: str  # 6-digit fallback, typed on the pad
    expires_at: datetime
    qr_png: bytes


def lan_ip(server_url: str, listen_host: str = "0.0.0.0") -> str:
    """The address pads on the LAN reach this PC at: the configured one, or the interface the
    route to the hall server leaves from (a UDP connect sends nothing)."""
    if listen_host not in ("", "0.0.0.0", "::"):
        return listen_host
    host = urlsplit(server_url).hostname or "127.0.0.1"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, 9))
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def qr_png(text: str) -> bytes:
    import segno

    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=8, border=4)
    return buf.getvalue()


def start_pairing(settings: Any, staff_no: str, password: str, *,
                  host: str | None = None, port: int | None = None,
                  client_factory: Callable[..., Any] | None = None) -> PairingOffer:
    """Sign in as the supervisor/IT `staff_no`, start a pairing for this window, sign out.

    Raises CounterError (zh/en) on a wrong password, a staff without the role (403), or no link.
    """
    if client_factory is None:
        from api_client import HallClient

        client_factory = HallClient
    client = client_factory(settings.server_url, ca_bundle=settings.ca_bundle,
                            proxies=getattr(settings, "proxies", None))
    try:
        try:
            client.login(staff_no, password)
            pairing = client.start_pad_pairing(settings.window_no)
        except CounterError:
            raise
        except Exception as exc:
            raise from_api(exc) from exc
        finally:
            try:
                client.logout()
            except Exception:  # the supervisor's session then just expires
                pass
    finally:
        client.close()
    ip = host or lan_ip(settings.server_url, getattr(settings, "pad_listen_host", "0.0.0.0"))
    p = port or int(getattr(settings, "pad_listen_port", 8765))
    url = f"http://{ip}:{p}/pad/#pair={pairing.token}"
    return PairingOffer(window_no=pairing.window_no, url=url, token=pairing.token,
                        code=pairing.code, expires_at=pairing.expires_at, qr_png=qr_png(url))
