"""The desk's ticket card shows the matter's promise (issue 15 item 1): its time limit in
working days, 即办件 for a limit of 0, 秒批秒办 and 跨省通办, in both languages; and the Tk desk
view puts them on the matter line."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace as NS

import pytest

from ui import i18n
from ui.presenters import format as fmt

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def zh() -> Iterator[None]:
    i18n.set_language("zh")
    yield
    i18n.set_language("zh")


def ticket() -> NS:
    return NS(id=1, number="A001", category="A", priority="normal", state="called", recalls=0,
              queued_at=NOW - timedelta(minutes=3), matter_code="M1", target_window_no=None, started_at=None)


def matter(days: int, instant: bool = False, cross: bool = False) -> NS:
    return NS(code="M1", name_zh="个体工商户设立登记", name_en="Sole proprietor registration",
              time_limit_days=days, instant=instant, cross_region=cross)


def test_badges_in_chinese() -> None:
    assert fmt.ticket_card(ticket(), matter(3, cross=True), NOW).badges == ("承诺时限 3 个工作日", "跨省通办")
    assert fmt.ticket_card(ticket(), matter(0, instant=True), NOW).badges == ("即办件", "秒批秒办")
    assert fmt.ticket_card(ticket(), None, NOW).badges == ()


def test_badges_in_english() -> None:
    i18n.set_language("en")
    card = fmt.ticket_card(ticket(), matter(20, instant=True, cross=True), NOW)
    assert card.badges == ("Time limit 20 working days", "Instant approval", "Cross-province")


def test_the_desk_view_shows_them_on_the_matter_line() -> None:
    import tkinter as tk

    from ui import style
    from ui.views.desk import DeskView

    style.apply("light", 1.0)  # the desk's theme, as ui.app sets it up
    root = tk.Tk()  # pytest-xvfb gives the display; a GUI test is never skipped
    try:
        def nothing(*_: object) -> None:
            return None

        view = DeskView(root, on_action=nothing, on_resume=nothing, on_set_material=nothing, search=nothing,
                        on_language=nothing, on_unlock=nothing)
        view.show_ticket(fmt.ticket_card(ticket(), matter(5, cross=True), NOW), "called")
        text = view.matter_label.cget("text")
        assert "个体工商户设立登记" in text and "承诺时限 5 个工作日" in text and "跨省通办" in text
    finally:
        root.destroy()


def test_the_desk_figures_show_the_measured_rates() -> None:
    import tkinter as tk

    from ui import style
    from ui.views.figures import FiguresPanel

    stats = NS(served=4, avg_handle_seconds=300, no_shows=0, satisfaction_rate=0.75, satisfaction_rate_signed=None,
               ratings_by_level={}, tickets_per_hour=[0] * 24, on_time_rate=2 / 3, on_the_spot_rate=None)
    f = fmt.figures(stats)
    assert (f.on_time, f.on_the_spot) == ("66.7%", "—")
    style.apply("light", 1.0)
    root = tk.Tk()
    try:
        panel = FiguresPanel(root)
        panel.show(f)
        assert panel.values["on_time"].cget("text") == "66.7%"
        assert panel.values["on_the_spot"].cget("text") == "—"
    finally:
        root.destroy()
