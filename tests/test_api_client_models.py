"""Model parsing (pure logic): valid bodies parse, and ANY malformed body gives
ApiResponseValidationError naming the field, never KeyError/TypeError/ValueError (hypothesis)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api_client import errors, models

STAFF = {"staff_no": "1001", "name_zh": "王丽娜", "name_en": "Wang Lina", "role": "staff",
         "photo_url": "/api/v1/staff/1001/photo", "disabled": False}  # fmt: skip
WINDOW = {"no": 1, "name_zh": "1号窗口", "name_en": "Window 1", "categories": ["A"],
          "state": "open", "pause_reason_code": None, "staff": STAFF, "current_ticket_id": None}  # fmt: skip
TICKET = {"id": 1, "number": "A001", "category": "A", "matter_code": None, "priority": "normal",
          "appointment_at": None, "state": "serving", "window_no": 1, "target_window_no": None,
          "issued_at": "2026-11-25T01:00:00Z", "queued_at": "2026-11-25T01:00:00Z",
          "called_at": "2026-11-25T01:05:00.5+08:00", "started_at": "2026-11-25T01:06:00Z",
          "finished_at": None, "recalls": 2, "case_id": 7}  # fmt: skip
CASE = {"id": 7, "case_no": "GXQ-20261125-0007", "ticket_id": 1, "matter_code": "M1",
        "staff_no": "1001", "window_no": 1, "started_at": "2026-11-25T01:06:00Z",
        "completed_at": None, "outcome": None,
        "materials": [{"item_id": "m1", "status": "received", "note": ""}], "notes": ""}  # fmt: skip
MATTER = {"code": "M1", "name_zh": "设立登记", "name_en": "Registration", "department_zh": "市场监管局",
          "department_en": "AMR", "category": "A", "time_limit_days": 0, "instant": True,
          "cross_region": False, "version": 3, "deleted": False,
          "checklist": [{"id": "m1", "name_zh": "身份证", "name_en": "ID card", "requirement": "required",
                         "copies": 1, "original_required": True, "e_licence": True,
                         "notes_zh": "", "notes_en": ""}]}  # fmt: skip
STATS = {"date": "2026-11-25", "window_no": 3, "served": 10, "avg_wait_seconds": 61.5,
         "avg_handle_seconds": 300, "no_shows": 1, "on_time_rate": 1.0, "on_the_spot_rate": None,
         "ratings": 4, "satisfaction_rate": 0.75, "bad_open": 1, "tickets_per_hour": [0] * 24,
         "ratings_by_level": {"very_satisfied": 3, "dissatisfied": 1}}  # fmt: skip

SAMPLES: list[tuple[Any, dict[str, Any]]] = [
    (models.Staff, STAFF),
    (models.Window, WINDOW),
    (models.Ticket, TICKET),
    (models.Case, CASE),
    (models.Matter, MATTER),
    (models.Stats, STATS),
    (models.ServiceResult, {"ticket": TICKET, "case": CASE}),
    (models.QueueSnapshot, {"window": WINDOW, "current": TICKET, "waiting": [TICKET], "suspended": []}),
    (models.MatterPage, {"catalog_version": 9, "items": [MATTER], "next_after": None}),
    (models.LoginResult, {"access_token": "a", "refresh_token": "r", "token_type": "bearer",
                          "expires_in": 900, "staff": STAFF, "window": WINDOW}),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "body"), SAMPLES, ids=[c.__name__ for c, _ in SAMPLES])
def test_valid_bodies_parse(cls: Any, body: dict[str, Any]) -> None:
    obj = cls.from_json(json.loads(json.dumps(body)))
    assert isinstance(obj, cls)


def test_times_become_aware_utc() -> None:
    t = models.Ticket.from_json(TICKET)
    assert t.called_at == dt.datetime(2026, 11, 24, 17, 5, 0, 500000, tzinfo=dt.UTC)
    assert t.called_at.tzinfo is dt.UTC


@pytest.mark.parametrize(("cls", "body"), SAMPLES, ids=[c.__name__ for c, _ in SAMPLES])
def test_every_missing_required_field_is_named(cls: Any, body: dict[str, Any]) -> None:
    for key in body:
        broken = {k: v for k, v in body.items() if k != key}
        try:
            cls.from_json(broken)
        except errors.ApiResponseValidationError as e:
            assert key in e.message_en and key in e.message_zh


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
        ),
        max_leaves=20,
    )


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Any, Any]:
    cls, body = draw(st.sampled_from(SAMPLES))
    body = json.loads(json.dumps(body))
    if draw(st.booleans()):
        return cls, draw(_json_values())
    # Replace one field (possibly nested one level) with an arbitrary JSON value.
    key = draw(st.sampled_from(sorted(body)))
    if isinstance(body[key], dict) and body[key] and draw(st.booleans()):
        sub = draw(st.sampled_from(sorted(body[key])))
        body[key][sub] = draw(_json_values())
    else:
        body[key] = draw(_json_values())
    return cls, body


@settings(max_examples=400, deadline=None)
@given(mutated())
def test_malformed_bodies_only_raise_validation_errors(case: tuple[Any, Any]) -> None:
    cls, body = case
    try:
        cls.from_json(body)
    except errors.ApiResponseValidationError as e:
        assert e.code == "invalid_response" and e.message_zh and e.message_en


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["ticket.issued", "message", ""]))
def test_server_event_from_arbitrary_data(data: bytes, etype: str) -> None:
    try:
        payload = json.loads(data)
    except ValueError:
        return
    try:
        ev = models.ServerEvent.from_sse("1", etype, payload)
    except errors.ApiResponseValidationError:
        return
    assert ev.id == "1" and isinstance(ev.data, dict)


def test_rating_submission_round_trip() -> None:
    r = models.RatingSubmission(
        id="5b1c", case_id=7, window_no=3, level="dissatisfied",
        rated_at=dt.datetime(2026, 11, 25, 9, 30, 0, 250000, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        source="pad", reasons=("r1", "r2"), reasons_version="v1", comment="太慢",
        pad_id="pad-3", pad_counter=41, challenge="abc", signature="sig",
    )  # fmt: skip
    body = r.to_json()
    assert body["rated_at"] == "2026-11-25T01:30:00.250000Z"
    assert body["reasons"] == ["r1", "r2"]
    back = models.RatingSubmission.from_json(json.loads(json.dumps(body)))
    assert back == r
    with pytest.raises(ValueError, match="naive"):
        models.format_datetime(dt.datetime(2026, 1, 1))


def test_secrets_are_not_in_repr() -> None:
    cred = models.DeviceCredential.from_json(
        {"device_id": "d1", "device_secret": "S3CRET", "window_no": 1}
    )
    login = models.LoginResult.from_json(SAMPLES[-1][1])
    assert "S3CRET" not in repr(cred) and "d1" in repr(cred)
    assert "access_token=" not in repr(login) and "refresh_token=" not in repr(login)


def test_deleted_matter_tombstone_needs_only_code_and_version() -> None:
    m = models.Matter.from_json({"code": "M9", "version": 12, "deleted": True})
    assert m.deleted and m.version == 12 and m.checklist == ()


def test_retry_after_forms() -> None:
    now = dt.datetime(2026, 11, 25, 9, 0, 0, tzinfo=dt.UTC)
    assert errors.parse_retry_after("7") == 7.0
    assert errors.parse_retry_after("Wed, 25 Nov 2026 09:00:30 GMT", now=now) == 30.0
    assert errors.parse_retry_after("Wed, 25 Nov 2026 08:00:00 GMT", now=now) == 0.0
    assert errors.parse_retry_after("soon") is None and errors.parse_retry_after(None) is None
    assert errors.parse_retry_after("nan") is None and errors.parse_retry_after("-5") == 0.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("avg_wait_seconds", 10**400),
        ("avg_wait_seconds", float("inf")),
        ("date", "2026-13-01"),
        ("served", 1.5),
        ("served", True),
    ],
)
def test_out_of_range_numbers_and_dates(field: str, value: Any) -> None:
    with pytest.raises(errors.ApiResponseValidationError, match=f"Stats.{field}"):
        models.Stats.from_json({**STATS, field: value})


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "2026-11-25T09:00:00\x00Z", "", 5])
def test_bad_timestamps(value: Any) -> None:
    with pytest.raises(errors.ApiResponseValidationError, match="Ticket.issued_at"):
        models.Ticket.from_json({**TICKET, "issued_at": value})
