"""HallClient: the typed, blocking, thread-safe client of the Hall API (docs/hall-api.md).

One method per endpoint, returning the models of :mod:`api_client.models` and raising only
:mod:`api_client.errors`. The methods block: call them from worker threads, never from a UI
thread.

Why the pieces are the way they are:

- Every mutating call sends an ``Idempotency-Key`` (the caller's, e.g. the outbox row id, or a
  fresh uuid4 made once per call). The key stays the same across in-process retries and across
  the repeat after a token refresh, so the server's permanent dedupe turns every repetition into
  a replay of the first answer; that is what makes retrying a POST safe.
- Tokens live only in memory, behind a lock shared by all threads. On ``401 token_expired`` the
  client refreshes once and repeats the call; when several threads hit the expiry together, only
  the first refreshes and the others reuse its token.
- The device credential (``X-Device-Id``/``X-Device-Secret``) is sent on login and refresh only,
  the calls the server checks it on.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from importlib import metadata
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from . import errors
from ._http import Transport
from .models import (
    ApplicantCase,
    Case,
    CaseApplicant,
    CaseMailing,
    Category,
    DeviceCredential,
    EnrollmentCode,
    Hall,
    HallIdentity,
    Health,
    LoginResult,
    Matter,
    MatterPage,
    Me,
    PadInfo,
    PadPairing,
    QueueSnapshot,
    RatingChallenge,
    RatingReasons,
    RatingReceipt,
    RatingStatus,
    RatingSubmission,
    ServiceResult,
    Stats,
    Ticket,
    UploadCreated,
    UploadStatus,
    Window,
    WindowFollowups,
    _Obj,
    format_datetime,
)
from .sse import EventStream

log = logging.getLogger("api_client")

T = TypeVar("T")

#: The SSE read timeout: well above the server's 15 s ping, so a quiet but healthy stream is
#: never cut, while a dead one is noticed within a minute.
SSE_READ_TIMEOUT = 45.0


def _product_version() -> str:
    try:
        return metadata.version("counter-app")
    except metadata.PackageNotFoundError:
        return "0.1.0"


USER_AGENT = (
    f"counter-app/{_product_version()} (api_client; python-requests/{requests.__version__})"
)


def _seg(value: object) -> str:
    """A value made safe to put in a URL path segment."""
    return quote(str(value), safe="")


class HallClient:
    """The Hall API, typed. See the module docstring; every method may raise ``ApiError``."""

    def __init__(
        self,
        base_url: str,
        *,
        ca_bundle: str | None = None,
        proxies: dict[str, str] | None = None,
        timeout: tuple[float, float] = (3.05, 10.0),
        max_retries: int = 2,
        trust_env: bool = False,
        device_id: str | None = None,
        device_secret: str | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
    ) -> None:
        self._transport = Transport(
            base_url,
            ca_bundle=ca_bundle,
            proxies=proxies,
            timeout=timeout,
            max_retries=max_retries,
            trust_env=trust_env,
            user_agent=USER_AGENT,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )
        self._token_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._access_token: str | None = None
        self._refresh_token: str | None = None
        self._device: tuple[str, str] | None = None
        self.set_device_credential(device_id, device_secret)

    # --- plumbing -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def signed_in(self) -> bool:
        """True while the client holds an access token (it may still turn out expired)."""
        with self._token_lock:
            return self._access_token is not None

    def set_device_credential(self, device_id: str | None, device_secret: str | None) -> None:
        """Use this device credential on later logins (after ``enroll``, or loaded from keyring)."""
        if bool(device_id) != bool(device_secret):
            raise ValueError("give both device_id and device_secret, or neither / 设备凭据不完整")
        with self._token_lock:
            self._device = (device_id, device_secret) if device_id and device_secret else None

    def close(self) -> None:
        """Forget the tokens and close every connection."""
        with self._token_lock:
            self._access_token = None
            self._refresh_token = None
        self._transport.close()

    def __enter__(self) -> HallClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _store_tokens(self, result: LoginResult) -> None:
        with self._token_lock:
            self._access_token = result.access_token
            self._refresh_token = result.refresh_token

    def _device_headers(self) -> dict[str, str]:
        with self._token_lock:
            dev = self._device
        return {"X-Device-Id": dev[0], "X-Device-Secret": dev[1]} if dev else {}

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        idempotency_key: str | None = None,
        stream: bool = False,
        timeout: tuple[float, float] | None = None,
        max_retries: int | None = None,
    ) -> requests.Response:
        """Send with auth, the idempotency key, retries and one transparent token refresh."""
        hdrs = dict(headers or {})
        mutating = method not in ("GET", "HEAD")
        if mutating:
            key = idempotency_key or str(uuid.uuid4())
            if len(key) > 200:
                raise ValueError("Idempotency-Key longer than 200 characters / 幂等键过长")
            hdrs["Idempotency-Key"] = key
        refreshed = False
        while True:
            token: str | None = None
            if auth:
                with self._token_lock:
                    token = self._access_token
                if token is not None:
                    hdrs["Authorization"] = f"Bearer {token}"
            try:
                return self._transport.send(
                    method,
                    path,
                    # GET/HEAD are safe; every mutating call carries its key, so all repeat.
                    repeatable=True,
                    max_retries=max_retries,
                    params=params,
                    json_body=json_body,
                    data=data,
                    headers=hdrs,
                    stream=stream,
                    timeout=timeout,
                )
            except errors.AuthenticationError as err:
                if not auth or refreshed or token is None or err.code != "token_expired":
                    raise
                refreshed = True
                self._refresh_after_expiry(token)

    def _refresh_after_expiry(self, expired_token: str) -> None:
        with self._refresh_lock:
            with self._token_lock:
                current = self._access_token
            if current is not None and current != expired_token:
                return  # another thread refreshed while we waited
            self.refresh()

    def _json(self, resp: requests.Response) -> Any:
        rid = resp.headers.get("X-Request-ID")
        try:
            body = resp.content
            return json.loads(body)
        except requests.RequestException as exc:
            raise errors.from_transport_exception(exc) from exc
        except (ValueError, UnicodeDecodeError):
            raise errors.invalid_response(
                f"not JSON ({resp.headers.get('Content-Type', 'no content type')}, "
                f"{len(resp.content)} bytes)",
                request_id=rid,
            ) from None
        finally:
            resp.close()

    def _parse(self, resp: requests.Response, parse: Callable[[Any], T]) -> T:
        body = self._json(resp)
        try:
            return parse(body)
        except errors.ApiResponseValidationError as err:
            err.request_id = err.request_id or resp.headers.get("X-Request-ID")
            raise

    def _get(self, path: str, parse: Callable[[Any], T], **kw: Any) -> T:
        return self._parse(self._request("GET", path, **kw), parse)

    def _post(self, path: str, parse: Callable[[Any], T], body: Any = None, **kw: Any) -> T:
        return self._parse(self._request("POST", path, json_body=body, **kw), parse)

    def _put(self, path: str, parse: Callable[[Any], T], body: Any, **kw: Any) -> T:
        return self._parse(self._request("PUT", path, json_body=body, **kw), parse)

    @staticmethod
    def _list(parse: Callable[[Any], T], name: str) -> Callable[[Any], list[T]]:
        def p(obj: Any) -> list[T]:
            if not isinstance(obj, list):
                raise errors.invalid_response(f"{name} should be a list")
            return [parse(x) for x in obj]

        return p

    # --- health, sessions, devices ------------------------------------------------------------

    def health(self) -> Health:
        return self._get("/health", Health.from_json, auth=False)

    def identity(self) -> HallIdentity:
        """The hall code and server id (no sign-in): the key of this PC's device credential."""
        return self._get("/identity", HallIdentity.from_json, auth=False)

    def login(
        self,
        staff_no: str,
        password: str,
        window_no: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> LoginResult:
        body: dict[str, Any] = {"staff_no": staff_no, "password": password}
        if window_no is not None:
            body["window_no"] = window_no
        result = self._post(
            "/auth/login",
            LoginResult.from_json,
            body,
            auth=False,
            headers=self._device_headers(),
            idempotency_key=idempotency_key,
        )
        self._store_tokens(result)
        return result

    def change_password(self, staff_no: str, password: str, new_password: str) -> None:
        """Replace a staff member's password (after an IT reset the one-time password opens
        nothing else). No token: the current password proves who it is; the server counts
        failures as it does for login. 204 on success."""
        self._request(
            "POST", "/auth/password", auth=False,
            json_body={"staff_no": staff_no, "password": password, "new_password": new_password},
        ).close()

    def refresh(self, *, idempotency_key: str | None = None) -> LoginResult:
        with self._token_lock:
            refresh_token = self._refresh_token
        if refresh_token is None:
            raise errors.AuthenticationError(
                message_en="Not signed in", message_zh="尚未登录", code="not_signed_in", status=401
            )
        try:
            result = self._post(
                "/auth/refresh",
                LoginResult.from_json,
                {"refresh_token": refresh_token},
                auth=False,
                headers=self._device_headers(),
                idempotency_key=idempotency_key,
            )
        except errors.AuthenticationError:
            with self._token_lock:
                if self._refresh_token == refresh_token:
                    self._access_token = None
                    self._refresh_token = None
            raise
        self._store_tokens(result)
        return result

    def logout(self, *, idempotency_key: str | None = None) -> None:
        """End the staff session (the server closes the window). Tokens are forgotten even if
        the server cannot be told: the session then simply expires there."""
        try:
            self._request("POST", "/auth/logout", idempotency_key=idempotency_key).close()
        finally:
            with self._token_lock:
                self._access_token = None
                self._refresh_token = None

    def me(self) -> Me:
        return self._get("/me", Me.from_json)

    def enroll(
        self,
        enrollment_code: str,
        window_no: int,
        hostname: str,
        replace: bool = False,
        *,
        idempotency_key: str | None = None,
    ) -> DeviceCredential:
        body = {
            "enrollment_code": enrollment_code,
            "window_no": window_no,
            "hostname": hostname,
            "replace": replace,
        }
        return self._post(
            "/devices/enroll",
            DeviceCredential.from_json,
            body,
            auth=False,
            idempotency_key=idempotency_key,
        )

    def admin_enrollment_code(
        self, window_no: int, *, idempotency_key: str | None = None
    ) -> EnrollmentCode:
        return self._post(
            "/admin/enrollment-codes",
            EnrollmentCode.from_json,
            {"window_no": window_no},
            idempotency_key=idempotency_key,
        )

    def staff_photo(self, staff_no: str) -> bytes:
        resp = self._request("GET", f"/staff/{_seg(staff_no)}/photo")
        try:
            ctype = resp.headers.get("Content-Type", "")
            if not ctype.startswith("image/"):
                raise errors.invalid_response(f"staff photo is {ctype or 'untyped'}, not an image")
            return resp.content
        except requests.RequestException as exc:
            raise errors.from_transport_exception(exc) from exc
        finally:
            resp.close()

    # --- hall structure -----------------------------------------------------------------------

    def hall(self) -> Hall:
        return self._get("/hall", Hall.from_json)

    def windows(self) -> list[Window]:
        return self._get("/windows", self._list(Window.from_json, "windows"))

    def window(self, no: int) -> Window:
        return self._get(f"/windows/{_seg(no)}", Window.from_json)

    def pause_window(
        self, no: int, reason_code: str, *, idempotency_key: str | None = None
    ) -> Window:
        return self._post(
            f"/windows/{_seg(no)}/pause",
            Window.from_json,
            {"reason_code": reason_code},
            idempotency_key=idempotency_key,
        )

    def resume_window(self, no: int, *, idempotency_key: str | None = None) -> Window:
        return self._post(
            f"/windows/{_seg(no)}/resume", Window.from_json, idempotency_key=idempotency_key
        )

    def close_window(self, no: int, *, idempotency_key: str | None = None) -> Window:
        return self._post(
            f"/windows/{_seg(no)}/close", Window.from_json, idempotency_key=idempotency_key
        )

    def categories(self) -> list[Category]:
        return self._get("/categories", self._list(Category.from_json, "categories"))

    # --- matters ------------------------------------------------------------------------------

    def matters_page(
        self, updated_since: int = 0, after: str | None = None, limit: int = 500
    ) -> MatterPage:
        params: dict[str, Any] = {"updated_since": updated_since, "limit": limit}
        if after is not None:
            params["after"] = after
        return self._get("/matters", MatterPage.from_json, params=params)

    def sync_matters(self, updated_since: int = 0) -> MatterPage:
        """Every page since ``updated_since``; ``.catalog_version`` is the first page's, so a
        change made while paging is fetched again next time rather than missed."""
        first = self.matters_page(updated_since)
        items = list(first.items)
        after = first.next_after
        seen: set[str] = set()
        while after is not None:
            if after in seen:
                raise errors.invalid_response(f"matters paging loops at {after!r}")
            seen.add(after)
            page = self.matters_page(updated_since, after=after)
            items.extend(page.items)
            after = page.next_after
        return MatterPage(
            catalog_version=first.catalog_version, items=tuple(items), next_after=None
        )

    def matter(self, code: str) -> Matter:
        return self._get(f"/matters/{_seg(code)}", Matter.from_json)

    # --- tickets and queue --------------------------------------------------------------------

    def issue_ticket(
        self,
        category: str,
        priority: str = "normal",
        matter_code: str | None = None,
        appointment_at: datetime | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Ticket:
        body = {
            "category": category,
            "priority": priority,
            "matter_code": matter_code,
            "appointment_at": format_datetime(appointment_at) if appointment_at else None,
        }
        return self._post("/tickets", Ticket.from_json, body, idempotency_key=idempotency_key)

    def queue(self, window_no: int) -> QueueSnapshot:
        return self._get(f"/windows/{_seg(window_no)}/queue", QueueSnapshot.from_json)

    def ticket(self, id: int) -> Ticket:  # noqa: A002 - the contract's name
        return self._get(f"/tickets/{_seg(id)}", Ticket.from_json)

    def call_next(self, window_no: int, *, idempotency_key: str | None = None) -> Ticket | None:
        def parse(obj: Any) -> Ticket | None:
            return _Obj(obj, "CallNext").opt_obj("ticket", Ticket.from_json)

        return self._post(
            f"/windows/{_seg(window_no)}/call-next", parse, idempotency_key=idempotency_key
        )

    def _ticket_action(
        self, ticket_id: int, action: str, body: Any, idempotency_key: str | None
    ) -> Ticket:
        return self._post(
            f"/tickets/{_seg(ticket_id)}/{action}",
            Ticket.from_json,
            body,
            idempotency_key=idempotency_key,
        )

    def call_ticket(
        self, ticket_id: int, window_no: int, *, idempotency_key: str | None = None
    ) -> Ticket:
        return self._ticket_action(ticket_id, "call", {"window_no": window_no}, idempotency_key)

    def recall(self, ticket_id: int, *, idempotency_key: str | None = None) -> Ticket:
        return self._ticket_action(ticket_id, "recall", None, idempotency_key)

    def no_show(self, ticket_id: int, *, idempotency_key: str | None = None) -> Ticket:
        return self._ticket_action(ticket_id, "no-show", None, idempotency_key)

    def start_service(self, ticket_id: int, *, idempotency_key: str | None = None) -> ServiceResult:
        return self._post(
            f"/tickets/{_seg(ticket_id)}/start",
            ServiceResult.from_json,
            idempotency_key=idempotency_key,
        )

    def transfer(
        self,
        ticket_id: int,
        *,
        to_window_no: int | None = None,
        to_category: str | None = None,
        matter_code: str | None = None,
        priority: str | None = None,
        idempotency_key: str | None = None,
        reason: str = "",
    ) -> Ticket:
        body: dict[str, object] = {
            "to_window_no": to_window_no,
            "to_category": to_category,
            "matter_code": matter_code,
            "priority": priority,
        }
        if reason:
            body["reason"] = reason
        return self._ticket_action(ticket_id, "transfer", body, idempotency_key)

    def suspend(
        self, ticket_id: int, note: str = "", *, idempotency_key: str | None = None
    ) -> Ticket:
        return self._ticket_action(ticket_id, "suspend", {"note": note}, idempotency_key)

    def resume(
        self, ticket_id: int, window_no: int, *, idempotency_key: str | None = None
    ) -> Ticket:
        return self._ticket_action(ticket_id, "resume", {"window_no": window_no}, idempotency_key)

    def return_to_queue(self, ticket_id: int, *, idempotency_key: str | None = None) -> Ticket:
        return self._ticket_action(ticket_id, "return", None, idempotency_key)

    def complete(
        self,
        ticket_id: int,
        outcome: str,
        note: str = "",
        reason: str = "",
        *,
        idempotency_key: str | None = None,
    ) -> ServiceResult:
        return self._post(
            f"/tickets/{_seg(ticket_id)}/complete",
            ServiceResult.from_json,
            {"outcome": outcome, "note": note, "reason": reason},
            idempotency_key=idempotency_key,
        )

    # --- cases --------------------------------------------------------------------------------

    def case(self, case_id: int) -> Case:
        return self._get(f"/cases/{_seg(case_id)}", Case.from_json)

    def set_case_matter(
        self, case_id: int, matter_code: str, *, idempotency_key: str | None = None
    ) -> Case:
        return self._put(
            f"/cases/{_seg(case_id)}/matter",
            Case.from_json,
            {"matter_code": matter_code},
            idempotency_key=idempotency_key,
        )

    # --- the applicant on a case (docs/applicant.md) -----------------------------------------------
    def set_applicant(
        self, case_id: int, applicant: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> CaseApplicant:
        """Record who came (the ``ApplicantIn`` fields); the reply is masked."""
        return self._put(f"/cases/{_seg(case_id)}/applicant", CaseApplicant.from_json, dict(applicant),
                         idempotency_key=idempotency_key)

    def applicant(self, case_id: int) -> CaseApplicant:
        return self._get(f"/cases/{_seg(case_id)}/applicant", CaseApplicant.from_json)

    def reveal_applicant(self, case_id: int, purpose: str) -> CaseApplicant:
        """The unmasked record; the server writes an audit row with ``purpose``."""
        return self._post(f"/cases/{_seg(case_id)}/applicant/reveal", CaseApplicant.from_json,
                          {"purpose": purpose})

    def window_followups(self, window_no: int) -> WindowFollowups:
        """The window's unfinished bad-rating follow-ups and its appeals (its own staff only)."""
        return self._get(f"/windows/{_seg(window_no)}/followups", WindowFollowups.from_json)

    def search_applicants(
        self, *, case_no: str | None = None, id_number: str | None = None, phone: str | None = None,
        day: str | None = None,
    ) -> list[ApplicantCase]:
        params = {k: v for k, v in (("case_no", case_no), ("id_number", id_number), ("phone", phone),
                                    ("day", day)) if v}

        def parse(obj: Any) -> list[ApplicantCase]:
            if not isinstance(obj, dict):
                raise errors.invalid_response("applicant search should be an object")
            return self._list(ApplicantCase.from_json, "cases")(obj.get("cases"))

        return self._get("/applicants/search", parse, params=params)

    def set_mailing(
        self, case_id: int, mailing: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> CaseMailing:
        """Record the result mailing (recipient, phone, address, carrier, tracking number);
        the reply is masked."""
        return self._put(f"/cases/{_seg(case_id)}/mailing", CaseMailing.from_json, dict(mailing),
                         idempotency_key=idempotency_key)

    def mailing(self, case_id: int) -> CaseMailing:
        return self._get(f"/cases/{_seg(case_id)}/mailing", CaseMailing.from_json)

    def set_material(
        self,
        case_id: int,
        item_id: str,
        status: str,
        note: str = "",
        *,
        idempotency_key: str | None = None,
    ) -> Case:
        return self._put(
            f"/cases/{_seg(case_id)}/materials/{_seg(item_id)}",
            Case.from_json,
            {"status": status, "note": note},
            idempotency_key=idempotency_key,
        )

    def set_case_notes(
        self, case_id: int, notes: str, *, idempotency_key: str | None = None
    ) -> Case:
        return self._put(
            f"/cases/{_seg(case_id)}/notes",
            Case.from_json,
            {"notes": notes},
            idempotency_key=idempotency_key,
        )

    # --- ratings ------------------------------------------------------------------------------

    def rating_reasons(self) -> RatingReasons:
        return self._get("/rating-reasons", RatingReasons.from_json)

    def rating_challenge(
        self, case_id: int, *, idempotency_key: str | None = None
    ) -> RatingChallenge:
        return self._post(
            f"/cases/{_seg(case_id)}/rating-challenge",
            RatingChallenge.from_json,
            idempotency_key=idempotency_key,
        )

    def rate_later_link(self, case_id: int) -> str:
        """The citizen's rate-later URL for a completed, unrated case of this window (printed
        notice, second screen's QR), with the server's unguessable token in it. Refused where a
        pad is paired (the pad shows its QR itself); handing it out ends the on-the-spot
        rating and is recorded on the server."""

        def parse(obj: Any) -> str:
            return _Obj(obj, "RateLaterLink").text("url")

        return self._get(f"/cases/{_seg(case_id)}/rate-later-link", parse)

    def submit_rating(self, rating: RatingSubmission, *, idempotency_key: str) -> RatingReceipt:
        """Deliver a rating. ``idempotency_key`` is required: the outbox passes the rating id,
        so a delivery repeated after a lost answer is a replay, never a second rating."""
        if not idempotency_key:
            raise ValueError("submit_rating needs an idempotency_key / 提交评价须提供幂等键")
        return self._post(
            "/ratings", RatingReceipt.from_json, rating.to_json(), idempotency_key=idempotency_key
        )

    def window_rating_ids(self, window_no: int, day: date) -> list[str]:
        def parse(obj: Any) -> list[str]:
            return list(_Obj(obj, "WindowRatings").texts("ids"))

        return self._get(
            f"/windows/{_seg(window_no)}/ratings", parse, params={"date": day.isoformat()}
        )

    # -- evaluator pads ----------------------------------------------------------------------
    def start_pad_pairing(
        self, window_no: int, *, idempotency_key: str | None = None
    ) -> PadPairing:
        """Supervisor or IT: a one-time token + 6-digit code to pair a pad at the window."""
        return self._post(
            f"/windows/{_seg(window_no)}/pads/pairings",
            PadPairing.from_json,
            idempotency_key=idempotency_key,
        )

    def rating_status(self, case_id: int) -> RatingStatus:
        """How the rating opened for the case ended (rated / open / closed), never its level:
        the pad posts its rating to the hall server itself, the desk only learns the outcome."""
        return self._get(f"/cases/{_seg(case_id)}/rating-status", RatingStatus.from_json)

    def window_pads(self, window_no: int) -> list[PadInfo]:
        """The pad paired at the window (a list of at most one)."""

        def parse(obj: Any) -> list[PadInfo]:
            return list(_Obj(obj, "WindowPads").seq("pads", PadInfo.from_json))

        return self._get(f"/windows/{_seg(window_no)}/pads", parse)

    def unpair_pad(
        self, window_no: int, pad_id: str, *, idempotency_key: str | None = None
    ) -> None:
        self._request(
            "DELETE",
            f"/windows/{_seg(window_no)}/pads/{_seg(pad_id)}",
            idempotency_key=idempotency_key,
        ).close()

    def stats(self, day: date | None = None, window_no: int | None = None) -> Stats:
        params: dict[str, Any] = {}
        if day is not None:
            params["date"] = day.isoformat()
        if window_no is not None:
            params["window_no"] = window_no
        return self._get("/stats", Stats.from_json, params=params)

    # --- documents ----------------------------------------------------------------------------

    def create_upload(
        self,
        case_id: int,
        item_id: str,
        filename: str,
        content_type: str,
        size: int,
        sha256: str,
        *,
        idempotency_key: str | None = None,
    ) -> UploadCreated:
        body = {
            "item_id": item_id,
            "filename": filename,
            "content_type": content_type,
            "size": size,
            "sha256": sha256,
        }
        return self._post(
            f"/cases/{_seg(case_id)}/documents",
            UploadCreated.from_json,
            body,
            idempotency_key=idempotency_key,
        )

    @staticmethod
    def _offset_header(resp: requests.Response, what: str) -> int:
        raw = resp.headers.get("Upload-Offset")
        resp.close()
        if raw is None or not raw.strip().isdigit():
            raise errors.invalid_response(
                f"{what}: Upload-Offset header missing or not a number ({raw!r:.30})",
                request_id=resp.headers.get("X-Request-ID"),
            )
        return int(raw)

    def upload_offset(self, upload_id: str) -> int:
        """Where the server's copy ends (``HEAD``): the offset to resume from."""
        resp = self._request("HEAD", f"/uploads/{_seg(upload_id)}")
        return self._offset_header(resp, "HEAD upload")

    def upload_chunk(
        self,
        upload_id: str,
        offset: int,
        data: bytes,
        *,
        idempotency_key: str | None = None,
    ) -> int:
        """Send ``data`` to be written at ``offset``; returns the server's new offset.

        ``409 offset_mismatch`` -> ConflictError, ``details['offset']`` is where to resume;
        ``460`` -> ChecksumMismatchError, send the chunk again.
        """
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
        headers = {
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Upload-Checksum": f"sha256 {digest}",
            "Tus-Resumable": "1.0.0",
        }
        resp = self._request(
            "PATCH",
            f"/uploads/{_seg(upload_id)}",
            data=bytes(data),
            headers=headers,
            idempotency_key=idempotency_key,
        )
        return self._offset_header(resp, "PATCH upload")

    def upload_status(self, upload_id: str) -> UploadStatus:
        return self._get(f"/uploads/{_seg(upload_id)}", UploadStatus.from_json)

    # --- live events --------------------------------------------------------------------------

    def events(
        self,
        window_no: int | None = None,
        last_event_id: str | None = None,
        *,
        read_timeout: float = SSE_READ_TIMEOUT,
    ) -> EventStream:
        """A live stream of hall events (SSE) that reconnects by itself; iterate it on a worker
        thread and ``close()`` it from any thread. ``read_timeout`` must exceed the server's
        ping interval (15 s): a stream silent for longer is taken as dead and reopened."""
        params: dict[str, Any] = {}
        if window_no is not None:
            params["window_no"] = window_no

        def connect(last_id: str | None) -> requests.Response:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if last_id:
                headers["Last-Event-ID"] = last_id
            return self._request(
                "GET",
                "/events",
                params=params,
                headers=headers,
                stream=True,
                timeout=(self._transport.timeout[0], read_timeout),
                max_retries=0,  # the stream has its own reconnect loop
            )

        return EventStream(connect, last_event_id=last_event_id)
