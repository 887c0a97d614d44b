"""The core's one error hierarchy, and the translation of api_client errors into it.

Everything the desk shows the user is a `CounterError` with a Chinese and an English message.
API errors are translated once, here (`from_api`), so no view ever sees an `ApiError` or a
requests exception; anything else that escapes the core is a bug and is logged as one.
"""

from __future__ import annotations

from typing import Any

OFFLINE_ZH = "服务器无法连接，已保存的评价和材料会在恢复后自动上传"
OFFLINE_EN = (
    "The server cannot be reached; saved ratings and documents will be uploaded "
    "automatically once it is back"
)


class CounterError(Exception):
    """Root of every error the core raises; carries a message fit to show, in zh and en."""

    default_zh = "操作失败"
    default_en = "The action failed"

    def __init__(
        self,
        *,
        message_zh: str | None = None,
        message_en: str | None = None,
        code: str = "",
        details: dict[str, Any] | None = None,
        retryable: bool = False,
        request_id: str | None = None,
    ) -> None:
        self.message_zh = message_zh or self.default_zh
        self.message_en = message_en or self.default_en
        self.code = code
        self.details: dict[str, Any] = dict(details or {})
        self.retryable = retryable
        self.request_id = request_id
        super().__init__(self.message_en)

    def message(self, lang: str) -> str:
        """The message in `lang` ("zh" or "en"; anything not English gets Chinese)."""
        return self.message_en if lang.lower().startswith("en") else self.message_zh

    def __str__(self) -> str:
        code = f" [{self.code}]" if self.code else ""
        return f"{self.message_en}{code}"


class OfflineError(CounterError):
    """The server cannot be reached (connection refused, reset, timed out)."""

    default_zh = OFFLINE_ZH
    default_en = OFFLINE_EN

    def __init__(self, *, message_zh: str | None = None, message_en: str | None = None,
                 **kw: Any) -> None:
        kw.setdefault("retryable", True)
        super().__init__(message_zh=message_zh, message_en=message_en, **kw)


class DeskBusyError(CounterError):
    """An action of the desk is already in flight; the second press is refused at once."""

    default_zh = "上一个操作仍在进行，请稍候"
    default_en = "The previous action is still in progress; please wait"


class IllegalActionError(CounterError):
    """The action is not allowed now (the server's 409 rules, or a local precondition)."""

    default_zh = "当前状态下不能进行此操作"
    default_en = "This action is not allowed now"


class ConfigError(CounterError):
    """The configuration is missing or wrong (including an untrusted server certificate)."""

    default_zh = "配置有误"
    default_en = "The configuration is wrong"


class CredentialError(CounterError):
    """Sign-in failed, the session expired, or the device credential is refused."""

    default_zh = "身份验证失败，请重新登录"
    default_en = "Authentication failed; please sign in again"


class NotSavedError(CounterError):
    """Something the user entered could not be stored; nothing was confirmed as saved."""

    default_zh = "未能保存，请重试"
    default_en = "Not saved; please try again"


def _server_message(err: Any) -> tuple[str | None, str | None]:
    zh = getattr(err, "message_zh", None) or None
    en = getattr(err, "message_en", None) or None
    return zh, en


def from_api(err: BaseException) -> CounterError:
    """Translate an api_client error (or anything else) into the core's hierarchy.

    Offline and timeouts become `OfflineError` with the reassuring outbox message; 409 becomes
    `IllegalActionError` with the server's own words; 401/403 become `CredentialError`.
    """
    if isinstance(err, CounterError):
        return err
    # Imported here, not at module top, so the pure parts of the core (and their tests) do not
    # depend on api_client being importable; the mapping itself needs the classes.
    from api_client import errors as api

    if not isinstance(err, api.ApiError):
        return CounterError(
            message_zh="程序内部错误，请查看日志", message_en="Internal error; see the log", code="internal"
        )
    zh, en = _server_message(err)
    kw: dict[str, Any] = {
        "code": err.code,
        "retryable": bool(err.retryable),
        "request_id": err.request_id,
    }
    if isinstance(err, api.ApiStatusError):
        kw["details"] = dict(err.details or {})
    if isinstance(err, (api.ApiConnectionError, api.ApiTimeoutError)):
        return OfflineError(**kw)
    if isinstance(err, api.ApiTLSError):
        return ConfigError(
            message_zh="无法验证服务器证书，请联系信息科检查证书配置",
            message_en="The server's certificate cannot be verified; ask IT to check the CA configuration",
            **kw,
        )
    if isinstance(err, api.ApiResponseValidationError):
        return CounterError(
            message_zh="服务器返回了无法识别的数据", message_en="The server sent data the desk cannot read", **kw
        )
    if isinstance(err, api.ConflictError):
        if err.code == "idempotency_in_progress":
            return DeskBusyError(message_zh=zh, message_en=en, **kw)
        return IllegalActionError(message_zh=zh, message_en=en, **kw)
    if isinstance(err, (api.AuthenticationError, api.PermissionDeniedError)):
        return CredentialError(message_zh=zh, message_en=en, **kw)
    if isinstance(err, api.RateLimitError):
        if err.code == "too_many_attempts":
            return CredentialError(message_zh=zh, message_en=en, **kw)
        return OfflineError(
            message_zh=zh or "服务器繁忙，请稍后再试", message_en=en or "The server is busy; try again shortly", **kw
        )
    if isinstance(err, api.ServerError):
        return OfflineError(
            message_zh="服务器暂时出错，请稍后再试", message_en="The server had a problem; try again shortly", **kw
        )
    if isinstance(err, (api.BadRequestError, api.NotFoundError, api.UnprocessableEntityError,
                        api.PayloadTooLargeError)):
        return IllegalActionError(message_zh=zh, message_en=en, **kw)
    return CounterError(message_zh=zh, message_en=en, **kw)
