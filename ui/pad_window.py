"""The second-screen evaluator: a borderless window on the citizen-facing monitor.

Implements ``PadTransport`` (assurance "unsigned", source "second_screen"): the PC draws the pad
itself, so it cannot prove the citizen pressed the button; the server records such ratings as
unsigned. It shows the same screens as the LAN pad page: who serves you (photo, name, staff
number, window), five LARGE rating targets (colour + face + words), reasons for a bad rating,
thanks, "service paused" with the public wording, and "not rated" with a rate-later QR code.

Why it looks like this:
- Elderly citizens read it from a standing position: huge type, high-contrast colours, a face on
  every level so the meaning does not depend on colour or on reading.
- The citizen's language is not the clerk's: the pad has its own Chinese/English switch, and each
  new citizen starts in Chinese. Its texts therefore sit here as (zh, en) pairs, both languages
  needed at once, instead of going through the desk's gettext language.
- Its colours are a fixed high-contrast palette, the same in the desk's light and dark modes.
- Threads: ``show_*``/``ask_rating`` may be called from any thread; they are marshalled onto the
  Tk thread through ``post`` (the task runner's ``call_soon``). Ratings are handed to
  ``on_rating`` on a short-lived worker thread, so the outbox's COMMIT never blocks drawing.
"""

from __future__ import annotations

import gc
import io
import logging
import re
import threading
import tkinter as tk
import uuid
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import customtkinter as ctk
from PIL import Image, ImageDraw

from counter_app.pad.base import LEVELS, LEVELS_NEEDING_REASON, ClerkCard, PadRating, RatingRequest
from ui import style
from ui.views.common import Toplevel

log = logging.getLogger(__name__)

DEFAULT_SIZE = (1280, 800)

TEXTS: dict[str, tuple[str, str]] = {
    "hello": ("您好，为您服务的是", "Hello, you are served by"),
    "staff_no": ("工号 {staff_no}", "Staff no. {staff_no}"),
    "window": ("{no}号窗口 · {name}", "Window {no} · {name}"),
    "window_short": ("{no}号窗口", "Window {no}"),
    "rate_title": ("请您为本次服务评价", "Please rate this service"),
    "rate_hint": ("请点击下面的一个按钮", "Touch one of the buttons below"),
    "reasons_title": ("请选择不满意的原因（可多选）", "Why were you not satisfied? (choose one or more)"),
    "you_chose": ("您选择了：{level}", "You chose: {level}"),
    "submit": ("提交评价", "Submit"),
    "back": ("返回重选", "Back"),
    "sending": ("正在提交，请稍候…", "Sending, please wait…"),
    "thanks": ("感谢您的评价！", "Thank you for your rating!"),
    "thanks_sub": ("祝您生活愉快", "Have a nice day"),
    "paused": ("暂停服务", "Service paused"),
    "paused_sub": ("请到其他窗口办理，或稍候", "Please go to another window, or wait a moment"),
    "not_rated": ("您还没有评价", "You have not rated yet"),
    "not_rated_sub": ("用手机扫描二维码\n稍后也可以评价", "Scan the code with your phone\nto rate later"),
    "switch": ("English", "中文"),
    "retry": ("没有保存成功，请再点一次", "Not saved. Please touch your choice again"),
    "later_days": ("{days}天内都可以评价", "You can rate within {days} days"),
}
LEVEL_WORDS: dict[str, tuple[str, str]] = {
    "very_satisfied": ("非常满意", "Very satisfied"),
    "satisfied": ("满意", "Satisfied"),
    "basic": ("基本满意", "Basically satisfied"),
    "dissatisfied": ("不满意", "Dissatisfied"),
    "very_dissatisfied": ("非常不满意", "Very dissatisfied"),
}
# Fixed, high-contrast (white text passes 3:1 for large text on each).
PALETTE: dict[str, str] = {
    "very_satisfied": "#1B7A3A", "satisfied": "#3F8A1F", "basic": "#A86B00",
    "dissatisfied": "#C4540A", "very_dissatisfied": "#B3261E",
    "bg": "#F4F6F9", "bar": "#1F4E79", "bar_text": "#FFFFFF", "text": "#1A1A1A",
    "muted": "#4A5360", "card": "#FFFFFF", "reason": "#E3E8EF", "reason_on": "#1F4E79",
    "reason_text": "#1A1A1A", "reason_on_text": "#FFFFFF", "disabled": "#9AA3AE",
    "button": "#1F4E79", "secondary": "#5F6B7A", "paused": "#8A5A00",
}
# Face per level: mouth curve from a broad smile to a frown (meaning without colour or reading).
MOUTH = {"very_satisfied": 2, "satisfied": 1, "basic": 0, "dissatisfied": -1, "very_dissatisfied": -2}

_GEOMETRY = re.compile(r"^(?:(\d+)x(\d+))?([+-]\d+)([+-]\d+)$")


def parse_geometry(text: str) -> tuple[int, int, int, int]:
    """``"1280x800+1280+0"`` or ``"+1280+0"`` (default size) -> (w, h, x, y). ValueError if bad."""
    m = _GEOMETRY.match((text or "").strip())
    if not m:
        raise ValueError(
            f"pad screen geometry {text!r} is not like '+1280+0' or '1280x800+1280+0' / "
            f"副屏位置 {text!r} 格式应为 '+1280+0' 或 '1280x800+1280+0'")
    w = int(m.group(1)) if m.group(1) else DEFAULT_SIZE[0]
    h = int(m.group(2)) if m.group(2) else DEFAULT_SIZE[1]
    return w, h, int(m.group(3)), int(m.group(4))


def face_image(level: str, size: int = 128) -> Image.Image:
    """A round face for a level: white on transparent, so it reads on the level's colour."""
    scale = 4  # draw big and shrink: smooth edges without an anti-aliasing library
    s = size * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    w = 7 * scale
    d.ellipse((w, w, s - w, s - w), outline="white", width=w)
    eye = s // 11
    for cx in (s * 0.36, s * 0.64):
        d.ellipse((cx - eye / 2, s * 0.36 - eye / 2, cx + eye / 2, s * 0.36 + eye / 2), fill="white")
    curve = MOUTH[level]
    left, right = s * 0.28, s * 0.72
    if curve == 0:
        d.line((left, s * 0.66, right, s * 0.66), fill="white", width=w)
    elif curve > 0:
        depth = s * (0.10 if curve == 1 else 0.17)
        d.arc((left, s * 0.52 - depth, right, s * 0.62 + depth), 20, 160, fill="white", width=w)
    else:
        depth = s * (0.08 if curve == -1 else 0.14)
        d.arc((left, s * 0.66, right, s * 0.78 + 2 * depth), 200, 340, fill="white", width=w)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def qr_image(url: str, scale: int = 10) -> Image.Image:
    """The rate-later link as a QR code (segno), black on white with a quiet zone."""
    import segno

    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=scale, border=4)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _photo(card: ClerkCard, size: tuple[int, int]) -> Image.Image:
    if card.photo_png:
        try:
            img = Image.open(io.BytesIO(card.photo_png)).convert("RGB")
            img.thumbnail(size)
            return img
        except Exception:  # noqa: BLE001 - a broken photo must not stop the pad
            log.warning("clerk photo could not be read; showing a placeholder")
    img = Image.new("RGB", size, "#C9D1DB")
    d = ImageDraw.Draw(img)
    w, h = size
    d.ellipse((w * 0.3, h * 0.15, w * 0.7, h * 0.5), fill="#8A95A3")
    d.pieslice((w * 0.12, h * 0.55, w * 0.88, h * 1.25), 180, 360, fill="#8A95A3")
    return img


class SecondScreenPad:
    """PadTransport drawing the evaluator on a second monitor. See the module docstring."""

    name = "second_screen"
    assurance = "unsigned"

    def __init__(self, root: tk.Misc, post: Callable[[Callable[[], None]], None], *,
                 geometry: str = "+1280+0", hall_name: tuple[str, str] = ("", "")) -> None:
        self._root = root
        self._post_fn = post
        self._tk_thread = threading.get_ident()
        self.width, self.height, self.x, self.y = parse_geometry(geometry)
        self.hall_name = hall_name
        self.lang = "zh"
        self.screen = "none"
        self.window: ctk.CTkToplevel | None = None
        self._on_rating: Callable[[PadRating], None] = lambda _r: None
        self._on_state: Callable[[str], None] = lambda _s: None
        self._card: ClerkCard | None = None
        self._request: RatingRequest | None = None
        self._level: str | None = None
        self._chosen: list[str] = []
        self._paused: tuple[str, str] = ("", "")
        self._rate_later_url = ""
        self._images: list[ctk.CTkImage] = []
        self._fonts: dict[tuple[int, str], ctk.CTkFont] = {}
        self.level_buttons: dict[str, ctk.CTkButton] = {}
        self.reason_buttons: dict[str, ctk.CTkButton] = {}
        self.submit_button: ctk.CTkButton | None = None
        self.back_button: ctk.CTkButton | None = None
        self.lang_button: ctk.CTkButton | None = None
        self.qr: Image.Image | None = None
        self.retry_note = False
        #: Set by PadService from the hall's rules; shown on the "not rated" screen.
        self.rate_later_days: int | None = None
        #: Set by PadService: each touch while rating restarts its timeout.
        self.on_activity: Callable[[], None] | None = None

    # -- PadTransport (any thread) -----------------------------------------------------------------
    def start(self, on_rating: Callable[[PadRating], None], on_state: Callable[[str], None]) -> None:
        self._on_rating, self._on_state = on_rating, on_state
        self._post(self._open)

    def stop(self) -> None:
        self._post(self._close)

    def show_idle(self, card: ClerkCard) -> None:
        def show() -> None:
            self._card, self._request, self.lang = card, None, "zh"  # each citizen starts in zh
            self._render("idle")
        self._post(show)

    def show_paused(self, public_zh: str, public_en: str) -> None:
        def show() -> None:
            self._paused, self._request = (public_zh, public_en), None
            self._render("paused")
        self._post(show)

    def ask_rating(self, request: RatingRequest, card: ClerkCard) -> None:
        def show() -> None:
            self._card, self._request, self._level, self._chosen = card, request, None, []
            self.retry_note = False
            self._render("rating")
        self._post(show)

    def show_not_rated(self, rate_later_url: str) -> None:
        def show() -> None:
            self._request, self._rate_later_url = None, rate_later_url
            self._render("not_rated")
        self._post(show)

    def show_thanks(self) -> None:
        def show() -> None:
            self._request = None
            self._render("thanks")
        self._post(show)

    # -- Tk thread ----------------------------------------------------------------------------------
    def _post(self, fn: Callable[[], None]) -> None:
        if threading.get_ident() == self._tk_thread:
            fn()
        else:
            self._post_fn(fn)

    def _open(self) -> None:
        if self.window is not None:
            return
        win = Toplevel(self._root, fg_color=PALETTE["bg"])
        win.overrideredirect(True)  # borderless: nothing for a citizen to drag or close
        win.geometry(f"{self.width}x{self.height}+{self.x}+{self.y}")
        win.protocol("WM_DELETE_WINDOW", lambda: None)
        self.window = win
        self._on_state("connected")
        self._render(self.screen if self.screen != "none" else "blank")

    def _close(self) -> None:
        win, self.window = self.window, None
        if win is not None:
            try:
                win.destroy()
            except tk.TclError:
                pass
        self._images.clear()
        self._fonts.clear()
        gc.collect()
        self._on_state("offline")

    def t(self, key: str, **fmt: Any) -> str:
        text = TEXTS[key][0 if self.lang == "zh" else 1]
        return text.format(**fmt) if fmt else text

    def _loc(self, pair: tuple[str, str]) -> str:
        zh, en = pair
        return (en or zh) if self.lang == "en" else (zh or en)

    def _font(self, size: int, weight: str = "normal") -> ctk.CTkFont:
        # One font object per size, kept for the window's life: screens are rebuilt often.
        key = (size, weight)
        if key not in self._fonts:
            self._fonts[key] = style.font(size, weight)
        return self._fonts[key]

    def toggle_language(self) -> None:
        self.lang = "en" if self.lang == "zh" else "zh"
        self._render(self.screen)

    def _render(self, screen: str) -> None:
        self.screen = screen
        win = self.window
        if win is None:
            return
        for child in win.winfo_children():
            child.destroy()
        self._images.clear()
        # The old screen's widgets hold reference cycles; collect them here, on the Tk thread.
        # Left to chance, a worker thread's collection frees them there and can hang in Tk.
        gc.collect()
        self.level_buttons, self.reason_buttons = {}, {}
        self.submit_button = self.back_button = None
        self._bar(win)
        body = ctk.CTkFrame(win, fg_color=PALETTE["bg"], corner_radius=0)
        body.pack(fill="both", expand=True)
        getattr(self, f"_draw_{screen}")(body)

    def _bar(self, win: ctk.CTkToplevel) -> None:
        bar = ctk.CTkFrame(win, fg_color=PALETTE["bar"], corner_radius=0, height=78)
        bar.pack(fill="x")
        card = self._card
        where = self._loc(self.hall_name)
        if card is not None:
            where = (where + "    " if where else "") + self.t(
                "window_short", no=card.window_no)
        ctk.CTkLabel(bar, text=where, font=self._font(28, "bold"),
                     text_color=PALETTE["bar_text"]).pack(side="left", padx=28, pady=14)
        self.lang_button = ctk.CTkButton(
            bar, text=self.t("switch"), width=170, height=56, font=self._font(26, "bold"),
            fg_color=PALETTE["card"], text_color=PALETTE["bar"], hover_color=PALETTE["reason"],
            command=self.toggle_language)
        self.lang_button.pack(side="right", padx=20, pady=10)

    def _draw_blank(self, body: ctk.CTkFrame) -> None:
        pass

    def _draw_idle(self, body: ctk.CTkFrame) -> None:
        card = self._card
        if card is None:
            return
        box = ctk.CTkFrame(body, fg_color=PALETTE["card"], corner_radius=18)
        box.place(relx=0.5, rely=0.5, anchor="center")
        photo = _photo(card, (270, 360))
        img = ctk.CTkImage(light_image=photo, dark_image=photo, size=photo.size)
        self._images.append(img)
        ctk.CTkLabel(box, image=img, text="").grid(row=0, column=0, rowspan=4, padx=36, pady=36)
        ctk.CTkLabel(box, text=self.t("hello"), font=self._font(32), text_color=PALETTE["muted"],
                     anchor="w").grid(row=0, column=1, sticky="sw", padx=(0, 48), pady=(48, 0))
        name = self._loc((card.name_zh, card.name_en))
        ctk.CTkLabel(box, text=name, font=self._font(76, "bold"), text_color=PALETTE["text"],
                     anchor="w").grid(row=1, column=1, sticky="w", padx=(0, 48))
        ctk.CTkLabel(box, text=self.t("staff_no", staff_no=card.staff_no), font=self._font(40),
                     text_color=PALETTE["text"], anchor="w").grid(row=2, column=1, sticky="w")
        window_name = self._loc((card.window_name_zh, card.window_name_en))
        # Names such as "1号窗口 市场主体登记" already carry the number: do not say it twice.
        where = (window_name if window_name and str(card.window_no) in window_name
                 else self.t("window", no=card.window_no, name=window_name).rstrip(" ·"))
        ctk.CTkLabel(box, text=where,
                     font=self._font(34), text_color=PALETTE["muted"], anchor="w",
                     wraplength=640, justify="left").grid(row=3, column=1, sticky="nw",
                                                          padx=(0, 48), pady=(8, 48))

    def _draw_rating(self, body: ctk.CTkFrame) -> None:
        req = self._request
        if req is None:
            return
        ctk.CTkLabel(body, text=self.t("rate_title"), font=self._font(54, "bold"),
                     text_color=PALETTE["text"]).pack(pady=(34, 4))
        matter = self._loc((req.matter_name_zh, req.matter_name_en))
        sub = f"{matter}    {self.t('rate_hint')}" if matter else self.t("rate_hint")
        if self.retry_note:
            sub, colour = self.t("retry"), PALETTE["very_dissatisfied"]
        else:
            colour = PALETTE["muted"]
        ctk.CTkLabel(body, text=sub, font=self._font(28, "bold" if self.retry_note else "normal"),
                     text_color=colour, wraplength=self.width - 80).pack(pady=(0, 24))
        row = ctk.CTkFrame(body, fg_color="transparent")
        row.pack(fill="both", expand=True, padx=24, pady=(0, 30))
        font_size = 36 if self.lang == "zh" else 27
        for i, level in enumerate(LEVELS):
            face = face_image(level, 132)
            img = ctk.CTkImage(light_image=face, dark_image=face, size=(132, 132))
            self._images.append(img)
            words = self._loc(LEVEL_WORDS[level]).replace(" ", "\n", 1) if self.lang == "en" \
                else self._loc(LEVEL_WORDS[level])
            b = ctk.CTkButton(row, text=words, image=img, compound="top", corner_radius=22,
                              font=self._font(font_size, "bold"), text_color="#FFFFFF",
                              fg_color=PALETTE[level], hover_color=PALETTE[level],
                              command=lambda lv=level: self.on_level(lv))
            b.grid(row=0, column=i, sticky="nsew", padx=10)
            row.grid_columnconfigure(i, weight=1, uniform="levels")
            self.level_buttons[level] = b
        row.grid_rowconfigure(0, weight=1)

    def _draw_reasons(self, body: ctk.CTkFrame) -> None:
        req, level = self._request, self._level
        if req is None or level is None:
            return
        head = ctk.CTkFrame(body, fg_color="transparent")
        head.pack(fill="x", padx=30, pady=(12, 4))
        ctk.CTkLabel(head, text=self.t("reasons_title"), font=self._font(38, "bold"),
                     text_color=PALETTE["text"], anchor="w").pack(side="left")
        ctk.CTkLabel(body, text=self.t("you_chose", level=self._loc(LEVEL_WORDS[level])),
                     font=self._font(28, "bold"), text_color=PALETTE[level],
                     anchor="w").pack(fill="x", padx=30, pady=(0, 6))
        grid = ctk.CTkFrame(body, fg_color="transparent")
        grid.pack(fill="both", expand=True, padx=24)
        rows = max(1, (len(req.reasons) + 1) // 2)
        height = max(46, min(84, (self.height - 370) // rows - 10))
        size = 26 if self.lang == "zh" else 20
        for i, (code, zh, en) in enumerate(req.reasons):
            b = ctk.CTkButton(grid, text="", height=height, corner_radius=12, anchor="w",
                              font=self._font(size, "bold"), border_width=2,
                              border_color=PALETTE["reason_on"],
                              command=lambda c=code: self.on_reason(c))
            b.grid(row=i // 2, column=i % 2, sticky="ew", padx=8, pady=5)
            self.reason_buttons[code] = b
            self._paint_reason(code, (zh, en))
        grid.grid_columnconfigure((0, 1), weight=1, uniform="reasons")
        foot = ctk.CTkFrame(body, fg_color="transparent")
        foot.pack(fill="x", padx=30, pady=(8, 20))
        self.back_button = ctk.CTkButton(foot, text=self.t("back"), width=260, height=78,
                                         font=self._font(32, "bold"), corner_radius=16,
                                         fg_color=PALETTE["secondary"],
                                         hover_color=PALETTE["secondary"], command=self.on_back)
        self.back_button.pack(side="left")
        self.submit_button = ctk.CTkButton(foot, text=self.t("submit"), width=380, height=78,
                                           font=self._font(36, "bold"), corner_radius=16,
                                           command=self.on_submit)
        self.submit_button.pack(side="right")
        self._paint_submit()

    def _paint_reason(self, code: str, texts: tuple[str, str]) -> None:
        b = self.reason_buttons[code]
        on = code in self._chosen
        mark = "√  " if on else "○  "
        b.configure(text=mark + self._loc(texts),
                    fg_color=PALETTE["reason_on"] if on else PALETTE["reason"],
                    hover_color=PALETTE["reason_on"] if on else PALETTE["reason"],
                    text_color=PALETTE["reason_on_text"] if on else PALETTE["reason_text"])

    def _paint_submit(self) -> None:
        if self.submit_button is None:
            return
        ready = bool(self._chosen)
        # Stays pressable: a press without a reason only points at the list (no dead button).
        self.submit_button.configure(fg_color=PALETTE["button"] if ready else PALETTE["disabled"],
                                     hover_color=PALETTE["button"] if ready else PALETTE["disabled"])

    def _draw_message(self, body: ctk.CTkFrame, title: str, sub: str, colour: str) -> None:
        box = ctk.CTkFrame(body, fg_color="transparent")
        box.place(relx=0.5, rely=0.45, anchor="center")
        ctk.CTkLabel(box, text=title, font=self._font(88, "bold"), text_color=colour,
                     wraplength=self.width - 100).pack()
        if sub:
            ctk.CTkLabel(box, text=sub, font=self._font(40), text_color=PALETTE["text"],
                         wraplength=self.width - 100).pack(pady=(24, 0))

    def _draw_sending(self, body: ctk.CTkFrame) -> None:
        self._draw_message(body, self.t("sending"), "", PALETTE["muted"])

    def _draw_thanks(self, body: ctk.CTkFrame) -> None:
        self._draw_message(body, self.t("thanks"), self.t("thanks_sub"), PALETTE["very_satisfied"])

    def _draw_paused(self, body: ctk.CTkFrame) -> None:
        public = self._loc(self._paused)
        sub = public if public and public != self.t("paused") else ""
        sub = (sub + "\n" if sub else "") + self.t("paused_sub")
        self._draw_message(body, self.t("paused"), sub, PALETTE["paused"])

    def _draw_not_rated(self, body: ctk.CTkFrame) -> None:
        box = ctk.CTkFrame(body, fg_color="transparent")
        box.place(relx=0.5, rely=0.5, anchor="center")
        self.qr = qr_image(self._rate_later_url or "-")
        side = min(440, self.height - 260)
        img = ctk.CTkImage(light_image=self.qr, dark_image=self.qr, size=(side, side))
        self._images.append(img)
        ctk.CTkLabel(box, image=img, text="").grid(row=0, column=0, rowspan=2, padx=(0, 48))
        ctk.CTkLabel(box, text=self.t("not_rated"), font=self._font(60, "bold"),
                     text_color=PALETTE["text"], anchor="w").grid(row=0, column=1, sticky="sw")
        sub = self.t("not_rated_sub")
        if self.rate_later_days:
            sub += "\n" + self.t("later_days", days=self.rate_later_days)
        ctk.CTkLabel(box, text=sub, font=self._font(36),
                     text_color=PALETTE["muted"], anchor="w", justify="left",
                     wraplength=560).grid(row=1, column=1, sticky="nw", pady=(16, 0))

    # -- the citizen's touches (Tk thread) ---------------------------------------------------------
    def _touched(self) -> None:
        # The citizen is busy rating: the desk's PadService restarts its timeout (a complaint
        # half chosen is never cut off).
        if self.on_activity is not None:
            self.on_activity()

    def on_level(self, level: str) -> None:
        if self._request is None or self.screen != "rating":
            return
        self._touched()
        self._level = level
        if level in LEVELS_NEEDING_REASON:
            self._chosen = []
            self._render("reasons")
        else:
            self._emit(level, ())

    def on_reason(self, code: str) -> None:
        if self._request is None or self.screen != "reasons":
            return
        self._touched()
        if code in self._chosen:
            self._chosen.remove(code)
        else:
            self._chosen.append(code)
        texts = {c: (zh, en) for c, zh, en in self._request.reasons}
        self._paint_reason(code, texts[code])
        self._paint_submit()

    def on_back(self) -> None:
        if self._request is not None:
            self._touched()
            self._level, self._chosen = None, []
            self._render("rating")

    def on_submit(self) -> None:
        if self._request is None or self._level is None or self.screen != "reasons":
            return
        if not self._chosen:
            return  # the grey button says "choose first"; the list is right above it
        order = [c for c, _zh, _en in self._request.reasons]
        self._emit(self._level, tuple(sorted(self._chosen, key=order.index)))

    def _emit(self, level: str, reasons: tuple[str, ...]) -> None:
        req = self._request
        if req is None:
            return
        self._request = None  # one rating per service: a second touch does nothing
        rating = PadRating(
            rating_id=str(uuid.uuid4()), case_id=req.case_id, level=level, reasons=reasons,
            comment="", source="second_screen", challenge=req.challenge,
            rated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            window_no=req.window_no)
        self._render("sending")
        ref = weakref.ref(self)
        post = self._post_fn

        def failed() -> None:  # Tk thread
            pad = ref()
            if pad is not None:
                pad._retry(req)

        # The worker gets the callback, the rating and a weak way back, never ``self``: the last
        # reference to an object holding Tk images must not be dropped on a worker.
        threading.Thread(target=_deliver, args=(self._on_rating, rating, lambda: post(failed)),
                         name="pad-second-screen", daemon=True).start()

    def _retry(self, request: RatingRequest) -> None:
        """The desk did not store the rating: let the citizen touch again (a new rating id)."""
        if self._request is None and self.screen == "sending":
            self._request, self._level, self._chosen = request, None, []
            self.retry_note = True
            self._render("rating")


def _deliver(on_rating: Callable[[PadRating], None], rating: PadRating,
             failed: Callable[[], None]) -> None:
    """Worker thread: hand the rating over; no widgets here."""
    try:
        on_rating(rating)
    except Exception as exc:  # noqa: BLE001 - refused or not saved: the citizen may try again
        log.warning("the second-screen rating was not stored: %s", exc)
        failed()
