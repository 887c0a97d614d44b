"""The error hierarchy of the Hall API client, and the ONE place transport failures are mapped.

Every failure a caller of :class:`api_client.HallClient` can see is an :class:`ApiError` carrying
a message fit to show (``message_zh`` / ``message_en``), a stable machine ``code``, the server's
``request_id`` when there is one, and a ``retryable`` flag that the client's own retry loop, the
outbox and the live queue all trust. Nothing from ``requests``/``urllib3`` and no ``KeyError`` from
a malformed body escapes the client: :func:`from_transport_exception` and :func:`from_response`
are the only translators (the shape follows openai-python and stripe-python).

Retry policy per the contract (docs/hall-api.md "Errors"): 5xx and 429 are retryable, 409
``idempotency_in_progress`` is retryable, other 4xx are not; connection failures and timeouts are
retryable; TLS failures never are (a wrong certificate does not fix itself, and retrying one
only hides an attack).
"""

from __future__ import annotations

import email.utils
import json
import math
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import requests
import urllib3.exceptions

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ApiResponseValidationError",
    "ApiStatusError",
    "ApiTLSError",
    "ApiTimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ChecksumMismatchError",
    "ConflictError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "UnprocessableEntityError",
    "from_response",
    "from_transport_exception",
    "parse_retry_after",
]


class ApiError(Exception):
    """Root of every error the client raises."""

    #: Default for the class; instances may override (e.g. a 409 ``idempotency_in_progress``).
    default_retryable: bool = False

    def __init__(
        self,
        *,
        message_zh: str,
        message_en: str,
        code: str,
        request_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message_zh = message_zh
        self.code = code
        self.request_id = request_id
        self.retryable = self.default_retryable if retryable is None else retryable

    def message(self, lang: str) -> str:
        """The message in ``lang`` ("zh" or "en"; anything else gets English)."""
        return self.message_zh if lang.startswith("zh") else self.message_en

    def __str__(self) -> str:
        rid = f", request {self.request_id}" if self.request_id else ""
        return f"{self.message_en} [{self.code}{rid}]"


class ApiConnectionError(ApiError):
    """The server could not be reached, or the connection broke mid-answer."""

    default_retryable = True


class ApiTimeoutError(ApiError):
    """No connection or no answer within the configured (connect, read) timeout."""

    default_retryable = True


class ApiTLSError(ApiError):
    """The server's certificate was refused (unknown CA, wrong host name, expired, ...).

    Never retryable: verification is always on and a bad certificate is not a passing fault.
    """

    default_retryable = False

    def __init__(self, *, message_zh: str, message_en: str, **kw: Any) -> None:
        kw["retryable"] = False
        super().__init__(message_zh=message_zh, message_en=message_en, **kw)


class ApiResponseValidationError(ApiError):
    """The server answered, but with something that is not what the contract promises."""

    default_retryable = False


class ApiStatusError(ApiError):
    """The server answered with an error status; carries its error envelope."""

    default_retryable = False

    def __init__(
        self,
        *,
        message_zh: str,
        message_en: str,
        code: str,
        status: int,
        request_id: str | None = None,
        details: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(
            message_zh=message_zh, message_en=message_en, code=code, request_id=request_id,
            retryable=retryable,
        )
        self.status = status
        self.details: dict[str, Any] = dict(details or {})
        self.retry_after = retry_after


class BadRequestError(ApiStatusError):
    """400."""


class AuthenticationError(ApiStatusError):
    """401: bad credentials, expired or unknown token."""


class PermissionDeniedError(ApiStatusError):
    """403."""


class NotFoundError(ApiStatusError):
    """404."""


class ConflictError(ApiStatusError):
    """409: an illegal transition or a conflict (``ticket_taken``, ``offset_mismatch``, ...)."""


class PayloadTooLargeError(ApiStatusError):
    """413."""


class UnprocessableEntityError(ApiStatusError):
    """422: validation failed, or the same Idempotency-Key came with a different request."""


class ChecksumMismatchError(ApiStatusError):
    """460: an upload chunk arrived damaged; the offset did not move, send the chunk again."""


class RateLimitError(ApiStatusError):
    """429; ``retry_after`` says when to come back."""

    default_retryable = True


class ServerError(ApiStatusError):
    """5xx."""

    default_retryable = True


_STATUS_CLASSES: dict[int, type[ApiStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    460: ChecksumMismatchError,
}

# Fallback wording when the answer carries no envelope (a proxy's page, a HEAD, a crash).
_STATUS_WORDS: dict[type[ApiStatusError], tuple[str, str]] = {
    BadRequestError: (
        "The server refused the request as malformed",
        "请求格式有误，服务器拒绝处理",
    ),
    AuthenticationError: ("Not signed in, or the session has expired", "未登录或登录已过期"),
    PermissionDeniedError: ("Not allowed", "没有权限执行此操作"),
    NotFoundError: ("Not found on the server", "服务器上找不到该对象"),
    ConflictError: ("The request conflicts with the current state", "操作与当前状态冲突"),
    PayloadTooLargeError: ("Too large for the server", "内容超出服务器允许的大小"),
    UnprocessableEntityError: ("The server could not accept the data", "服务器无法接受提交的数据"),
    ChecksumMismatchError: ("The data arrived damaged", "数据传输中损坏"),
    RateLimitError: ("The server is busy; try again shortly", "服务器繁忙，请稍后重试"),
    ServerError: ("The server had an internal error", "服务器内部错误"),
    ApiStatusError: ("The server refused the request", "服务器拒绝了请求"),
}

# Codes whose 4xx means "the same thing will work in a moment" despite the status class.
_RETRYABLE_CODES = frozenset({"idempotency_in_progress"})
# A 429 that is a lockout of a staff number (login throttling), not load shedding: retrying
# in-process would only burn more attempts.
_NOT_RETRYABLE_CODES = frozenset({"too_many_attempts"})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _status_class(status: int) -> type[ApiStatusError]:
    if status >= 500:
        return ServerError
    return _STATUS_CLASSES.get(status, ApiStatusError)


def from_response(response: requests.Response) -> ApiStatusError:
    """Build the error for an error-status answer from the server's envelope.

    Tolerates any body: a missing, non-JSON or half-formed envelope falls back to wording per
    status class and a code ``http_<status>``.
    """
    status = response.status_code
    cls = _status_class(status)
    request_id = response.headers.get("X-Request-ID")
    code = f"http_{status}"
    en, zh = _STATUS_WORDS[cls]
    en, zh = f"{en} (HTTP {status})", f"{zh}（HTTP {status}）"
    details: dict[str, Any] = {}
    envelope: Any = None
    try:
        if response.content:
            envelope = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, requests.RequestException):
        envelope = None
    if isinstance(envelope, dict) and isinstance(envelope.get("error"), dict):
        err = envelope["error"]
        if isinstance(err.get("code"), str) and err["code"]:
            code = err["code"]
        if isinstance(err.get("message_en"), str) and err["message_en"]:
            en = err["message_en"]
        if isinstance(err.get("message_zh"), str) and err["message_zh"]:
            zh = err["message_zh"]
        if isinstance(err.get("request_id"), str) and err["request_id"]:
            request_id = request_id or err["request_id"]
        if isinstance(err.get("details"), dict):
            details = err["details"]
    retryable: bool | None = None
    if code in _RETRYABLE_CODES:
        retryable = True
    elif code in _NOT_RETRYABLE_CODES:
        retryable = False
    return cls(
        message_zh=zh,
        message_en=en,
        code=code,
        status=status,
        request_id=request_id,
        details=details,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        retryable=retryable,
    )


def _is_tls_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, requests.exceptions.SSLError | urllib3.exceptions.SSLError | ssl.SSLError):
            return True
        stack.extend([e.__cause__, e.__context__, getattr(e, "reason", None)])
        stack.extend(a for a in e.args if isinstance(a, BaseException))
    return False


def from_transport_exception(exc: BaseException, *, what: str = "") -> ApiError:
    """Map any requests/urllib3/socket exception to the client's hierarchy.

    ``what`` (e.g. "GET /hall") goes into the English message to help support; it never holds
    a query string, token or body.
    """
    where = f" ({what})" if what else ""
    if isinstance(exc, ApiError):
        return exc
    # SSLError subclasses ConnectionError in requests: test it first.
    if _is_tls_failure(exc):
        return ApiTLSError(
            message_en=f"The server's certificate was refused; the connection is not trusted{where}: {exc}",
            message_zh="服务器证书未通过验证（证书颁发机构未知、主机名不符或已过期），连接不安全，已拒绝。"
            "请联系信息科检查服务器证书和CA配置。",
            code="tls_error",
        )
    if isinstance(
        exc,
        requests.exceptions.Timeout | urllib3.exceptions.TimeoutError | TimeoutError,
    ):
        return ApiTimeoutError(
            message_en=f"The server did not answer in time{where}",
            message_zh="服务器响应超时，请检查网络后重试",
            code="timeout",
        )
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema
        | requests.exceptions.InvalidHeader
        | urllib3.exceptions.LocationParseError,
    ):
        return ApiConnectionError(
            message_en=f"The server address is not valid{where}: {exc}",
            message_zh="服务器地址配置有误，请联系信息科",
            code="invalid_url",
            retryable=False,
        )
    if isinstance(
        exc,
        requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError
        | urllib3.exceptions.ProtocolError
        | urllib3.exceptions.DecodeError,
    ):
        return ApiConnectionError(
            message_en=f"The connection broke while the server was answering{where}",
            message_zh="与服务器的连接在传输中断开",
            code="connection_broken",
        )
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return ApiResponseValidationError(
            message_en=f"The server redirected in a loop{where}",
            message_zh="服务器重定向次数过多",
            code="invalid_response",
        )
    return ApiConnectionError(
        message_en=f"Cannot reach the server{where}: {type(exc).__name__}",
        message_zh="无法连接服务器，请检查网络",
        code="connection_error",
    )


def invalid_response(problem: str, *, request_id: str | None = None) -> ApiResponseValidationError:
    """The error for a body that does not match the contract; ``problem`` names the field."""
    return ApiResponseValidationError(
        message_en=f"The server's answer does not match the Hall API: {problem}",
        message_zh=f"服务器返回的数据不符合接口约定：{problem}",
        code="invalid_response",
        request_id=request_id,
    )
