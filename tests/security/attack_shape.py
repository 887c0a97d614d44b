"""The live-attack runner's shapes (AttackContext, AttackResult) as the common rules define
them, for the server's attacks until the runner's own `attack_base` module is merged: the
runner reads only these attributes, so either class serves it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class AttackResult:
    name: str
    attempt: str
    status: int
    answer: str
    blocked: bool


@dataclass
class AttackContext:
    base_url: str
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.trust_env = False

    def login(self, staff_no: str, password: str, window_no: int | None) -> str:
        body: dict[str, Any] = {"staff_no": staff_no, "password": password}
        if window_no is not None:
            body["window_no"] = window_no
        r = self.session.post(self.base_url + "/api/v1/auth/login", json=body, timeout=30)
        r.raise_for_status()
        return str(r.json()["access_token"])
