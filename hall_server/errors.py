"""The one error envelope: `ApiError`, its zh/en messages per code, and the handlers that turn
every failure (ours, FastAPI validation, Starlette 404/405, anything unexpected) into it."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("hall_server")

MESSAGES: dict[str, tuple[str, str]] = {
    "malformed_json": ("请求内容不是有效的 JSON", "The request body is not valid JSON"),
    "bad_request": ("请求有误", "Bad request"),
    "unauthorized": ("未登录或登录已失效", "Not signed in, or the session has ended"),
    "token_expired": ("登录已过期，请刷新", "The access token has expired"),
    "bad_credentials": ("工号或密码错误", "Wrong staff number or password"),
    "too_many_attempts": ("登录失败次数过多，请稍后再试", "Too many failed sign-ins; try again later"),
    "staff_disabled": ("该工号已停用", "This staff account is disabled"),
    "forbidden": ("无权执行此操作", "You may not do this"),
    "device_required": ("此电脑未登记，不能在窗口登录", "This PC is not enrolled for a window"),
    "not_found": ("未找到", "Not found"),
    "method_not_allowed": ("不支持此请求方法", "Method not allowed"),
    "too_large": ("内容过大", "The request is too large"),
    "validation_error": ("请求字段有误", "Some fields are invalid"),
    "rate_limited": ("请求过于频繁", "Too many requests"),
    "too_many_streams": (
        "本次登录打开的实时连接过多，请关闭多余的窗口",
        "Too many live event streams for this sign-in; close the extra ones",
    ),
    "internal_error": ("服务器内部错误", "Internal server error"),
    "idempotency_mismatch": (
        "同一幂等键用于了不同的请求",
        "This Idempotency-Key was used for a different request",
    ),
    "idempotency_in_progress": ("相同请求正在处理中", "The same request is being processed"),
    "idempotency_expired": ("该请求的结果已无法重放，请重新登录", "This reply can no longer be replayed; sign in again"),
    "window_not_held": (
        "本次登录已不再占用该窗口（已在别处登录或窗口已由他人接管），请重新登录",
        "This sign-in no longer holds the window (signed in elsewhere, or taken over); sign in again",
    ),
    "window_in_use": ("该窗口已有其他人员登录", "Another staff member is signed in at this window"),
    "window_paused": ("窗口已暂停服务", "The window is paused"),
    "window_closed": ("窗口未开放", "The window is closed"),
    "window_busy": ("窗口正在办理业务", "The window is serving someone"),
    "window_has_device": ("该窗口已登记了另一台电脑", "Another PC is enrolled at this window"),
    "unknown_reason": ("未知的暂停原因", "Unknown pause reason"),
    "unknown_category": ("未知的业务类别", "Unknown category"),
    "unknown_matter": ("未知的事项", "Unknown matter"),
    "unknown_window": ("未知的窗口", "Unknown window"),
    "ticket_taken": ("该号已被其他窗口叫走", "Another window already called this ticket"),
    "not_your_ticket": ("该号不在本窗口办理", "This ticket is held by another window"),
    "illegal_transition": ("当前状态下不能执行此操作", "Not allowed in the ticket's current state"),
    "recall_limit": ("已达到重呼次数上限", "The recall limit has been reached"),
    "no_show_too_early": ("尚不能过号", "Too early to mark a no-show"),
    "window_not_serving_category": ("该窗口不办理此类业务", "This window does not serve this category"),
    "reason_required": ("差评须选择或填写原因", "A bad rating needs a reason or a comment"),
    "unknown_rating_reason": ("未知的评价原因", "Unknown rating reason"),
    "case_already_rated": ("该办件已评价", "This case has already been rated"),
    "case_closed": ("办件已办结", "The case is already completed"),
    "unknown_item": ("该事项没有此材料", "The matter has no such checklist item"),
    "unsupported_type": ("不支持的文件类型", "Unsupported file type"),
    "offset_mismatch": ("上传位置不一致", "Upload offset mismatch"),
    "checksum_mismatch": ("分块校验失败", "Chunk checksum mismatch"),
    "sha256_mismatch": ("文件校验失败，请重新上传", "Whole-file SHA-256 mismatch; upload again"),
    "upload_complete": ("文件已上传完毕", "The upload is already complete"),
    "bad_enrollment_code": ("登记码无效或已过期", "Invalid or expired enrollment code"),
    "staff_exists": ("该工号已存在", "This staff number already exists"),
    # hall set-up and administration (issue 14; hall_server/admin.py, hallsetup.py)
    "password_change_required": ("请先修改初始密码再登录", "Change your one-time password before signing in"),
    "weak_password": ("新密码至少 8 位，且不能与原密码相同", "The new password needs 8+ characters and must differ from the old one"),
    "device_revoked": ("此电脑的登记已被注销，不能在窗口登录", "This PC's enrolment was revoked; it cannot open a window"),
    "already_initialised": ("数据库中已有大厅，不能重复初始化", "This database already holds a hall; init never overwrites it"),
    "not_initialised": ("大厅尚未初始化，请先运行 hall-server init", "The hall is not set up yet; run hall-server init first"),
    "bad_photo": ("照片不符合要求", "The photo is not acceptable"),
    "in_use": ("仍在使用中，不能删除", "Still in use; it cannot be removed"),
    "window_exists": ("该窗口号已存在", "This window number already exists"),
    "invalid_calendar": ("节假日文件有误，未导入任何内容", "Invalid calendar file; nothing was imported"),
    "invalid_settings": ("设置有误，未作任何修改", "Invalid settings; nothing was changed"),
    "import_invalid": ("导入数据有误，未导入任何内容", "Invalid import data; nothing was imported"),
    "conflict": ("操作冲突", "Conflict"),
}


class ApiError(Exception):
    """A failure with a stable machine code, shown to users in zh and en."""

    def __init__(
        self,
        status: int,
        code: str,
        details: dict[str, Any] | None = None,
        *,
        message_zh: str | None = None,
        message_en: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        zh, en = MESSAGES.get(code, (code, code))
        self.status = status
        self.code = code
        self.details = details or {}
        self.message_zh = message_zh or zh
        self.message_en = message_en or en
        self.headers = headers or {}
        super().__init__(f"{status} {code}")


def request_id_of(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def envelope(
    request_id: str, code: str, zh: str, en: str, details: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message_zh": zh,
            "message_en": en,
            "request_id": request_id,
            "details": details or {},
        }
    }


def error_response(request: Request, err: ApiError) -> JSONResponse:
    rid = request_id_of(request)
    body = envelope(rid, err.code, err.message_zh, err.message_en, err.details)
    # Set here too: a 500 is answered outside our request-id middleware.
    return JSONResponse(body, status_code=err.status, headers={**err.headers, "X-Request-ID": rid})


def install_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                return error_response(
                    request, ApiError(400, "malformed_json", {"message": str(e.get("msg", ""))})
                )
            errors.append(
                {
                    "field": ".".join(str(p) for p in e.get("loc", ())),
                    "type": str(e.get("type", "")),
                    "message": str(e.get("msg", "")),
                }
            )
        return error_response(request, ApiError(422, "validation_error", {"errors": errors}))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        # FastAPI wraps a failure while reading the body (e.g. our 413 from the size limit)
        # in a 400: report the real cause.
        if isinstance(exc.__cause__, ApiError):
            return error_response(request, exc.__cause__)
        code = {
            400: "bad_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
            429: "rate_limited",
        }.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal_error")
        headers = dict(exc.headers or {})
        return error_response(request, ApiError(exc.status_code, code, headers=headers))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request, ApiError(500, "internal_error"))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
