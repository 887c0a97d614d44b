"""The capture panel: a window over the desk with the case's checklist as slots.

Left: the slots (material, requirement, status, pages, upload state). Right: where to capture
from (scanner / hot folder / file) and how, the selected slot's page thumbnails (click one to
select it; move, delete or rescan it), the marks that replace a scan (electronic licence,
accepted-pending, not applicable), "finish and upload", and the one-time notification.

Thin: the presenter decides; this only lays out and shows. Thumbnails come as decoded PIL
images from a worker; turning them into CTkImage copies pixels and decodes nothing.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable, Sequence
from tkinter import ttk
from typing import TYPE_CHECKING, Any

import customtkinter as ctk

from ui import style
from ui.i18n import N_, _
from ui.presenters.capture import (
    COLOURS,
    FEEDS,
    MARKS,
    RESOLUTIONS,
    SOURCES,
    CapturePresenter,
    SlotRow,
    label,
)
from ui.views.common import Toplevel, set_enabled

if TYPE_CHECKING:
    from PIL import Image

    from ui.app import DeskApp

COLUMNS = ("name", "requirement", "status", "pages", "upload")


class CaptureWindow(Toplevel):
    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master)
        self.presenter: CapturePresenter | None = None
        self._normal_fg: dict[str, Any] = {}  # each button's own fill, for when it is enabled again
        self.file_chooser: tk.Misc | None = None
        # Fits the screen (1366x768 with a taskbar is common), never bigger than it.
        sw, sh = self.winfo_screenwidth(), self.winfo_screenheight()
        self.geometry(f"{min(1320, sw)}x{min(820, sh - 40)}+0+0")
        self.minsize(min(1100, sw), min(600, sh - 40))
        self.transient(master.winfo_toplevel())
        self.grid_columnconfigure(0, weight=9, uniform="c")
        self.grid_columnconfigure(1, weight=11, uniform="c")
        self.grid_rowconfigure(2, weight=1)
        self._images: list[ctk.CTkImage] = []
        self._thumb_frames: list[ctk.CTkFrame] = []
        self.closed = False

        self.header = ctk.CTkLabel(self, font=style.font(22, "bold"), anchor="w", text="")
        self.header.grid(row=0, column=0, columnspan=2, sticky="ew", padx=16, pady=(12, 4))

        # Left: slots.
        left = ctk.CTkFrame(self)
        left.grid(row=2, column=0, sticky="nsew", padx=(12, 6), pady=6)
        left.grid_columnconfigure(0, weight=1)
        left.grid_rowconfigure(0, weight=1)
        self.tree = ttk.Treeview(left, columns=COLUMNS, show="headings", selectmode="browse",
                                 style=style.style_treeview(self, "Capture.Treeview", 34))
        widths = {"name": 210, "requirement": 104, "status": 86, "pages": 50, "upload": 100}
        for col in COLUMNS:
            self.tree.column(col, width=widths[col], minwidth=widths[col] // 2, anchor="w",
                             stretch=col == "name")
        self.tree.tag_configure("alarm", foreground=style.pick("danger"))
        self.tree.grid(row=0, column=0, sticky="nsew", padx=8, pady=8)
        self.tree.bind("<<TreeviewSelect>>", self._on_tree_select)

        # Right: controls, pages, actions.
        right = ctk.CTkFrame(self)
        right.grid(row=2, column=1, sticky="nsew", padx=(6, 12), pady=6)
        right.grid_columnconfigure(0, weight=1)
        right.grid_rowconfigure(2, weight=1)

        opts = ctk.CTkFrame(right, fg_color="transparent")
        opts.grid(row=0, column=0, sticky="ew", padx=10, pady=(10, 4))
        self.source_seg = ctk.CTkSegmentedButton(opts, font=style.font(15), height=36,
                                                 command=self._on_source)
        self.source_seg.grid(row=0, column=0, padx=(0, 10))
        self.res_menu = ctk.CTkOptionMenu(opts, width=110, height=36, font=style.font(15),
                                          values=[f"{r} dpi" for r in RESOLUTIONS],
                                          command=lambda v: self._p(lambda p: p.set_options(resolution=int(v.split()[0]))))
        self.res_menu.grid(row=0, column=1, padx=4)
        self.colour_menu = ctk.CTkOptionMenu(opts, width=120, height=36, font=style.font(15),
                                             command=self._on_colour)
        self.colour_menu.grid(row=0, column=2, padx=4)
        self.feed_menu = ctk.CTkOptionMenu(opts, width=140, height=36, font=style.font(15),
                                           command=self._on_feed)
        self.feed_menu.grid(row=0, column=3, padx=4)

        bar = ctk.CTkFrame(right, fg_color="transparent")
        bar.grid(row=1, column=0, sticky="ew", padx=10, pady=4)
        self.capture_button = ctk.CTkButton(bar, height=46, width=190, font=style.font(18, "bold"),
                                            command=lambda: self._p(lambda p: p.capture()))
        self.capture_button.grid(row=0, column=0, padx=(0, 8))
        self.import_button = ctk.CTkButton(bar, height=46, width=150, font=style.font(16),
                                           fg_color=style.color("button_secondary"),
                                           hover_color=style.color("button_secondary_hover"),
                                           command=self._import)
        self.import_button.grid(row=0, column=1, padx=4)
        self.pages_title = ctk.CTkLabel(bar, font=style.font(16, "bold"), anchor="w", text="")
        self.pages_title.grid(row=0, column=2, padx=12, sticky="w")
        bar.grid_columnconfigure(2, weight=1)

        self.strip = ctk.CTkScrollableFrame(right, orientation="horizontal", height=290)
        self.strip.grid(row=2, column=0, sticky="nsew", padx=10, pady=4)
        self.empty_label = ctk.CTkLabel(self.strip, font=style.font(16), text="",
                                        text_color=style.color("muted"))

        edit = ctk.CTkFrame(right, fg_color="transparent")
        edit.grid(row=3, column=0, sticky="ew", padx=10, pady=4)
        self.edit_buttons: dict[str, ctk.CTkButton] = {}
        for i, (key, cmd) in enumerate((("left", lambda: self._p(lambda p: p.move(-1))),
                                        ("right", lambda: self._p(lambda p: p.move(1))),
                                        ("delete", lambda: self._p(lambda p: p.delete())),
                                        ("rescan", lambda: self._p(lambda p: p.rescan())))):
            b = ctk.CTkButton(edit, height=38, width=120, font=style.font(15), command=cmd,
                              fg_color=style.color("button_secondary"),
                              hover_color=style.color("button_secondary_hover"))
            b.grid(row=0, column=i, padx=(0, 6))
            self.edit_buttons[key] = b

        marks = ctk.CTkFrame(right, fg_color="transparent")
        marks.grid(row=4, column=0, sticky="ew", padx=10, pady=4)
        self.mark_buttons: dict[str, ctk.CTkButton] = {}
        for i, status in enumerate(MARKS):
            b = ctk.CTkButton(marks, height=38, width=130, font=style.font(15),
                              command=lambda s=status: self._p(lambda p: p.mark(s)),
                              fg_color=style.color("button_secondary"),
                              hover_color=style.color("button_secondary_hover"))
            b.grid(row=0, column=i, padx=(0, 6))
            self.mark_buttons[status] = b

        done = ctk.CTkFrame(right, fg_color="transparent")
        done.grid(row=5, column=0, sticky="ew", padx=10, pady=(4, 10))
        done.grid_columnconfigure(2, weight=1)
        self.finish_button = ctk.CTkButton(done, height=50, width=220, font=style.font(18, "bold"),
                                           fg_color=style.color("button_ok"), hover_color=style.color("button_ok_hover"),
                                           command=lambda: self._p(lambda p: p.finish()))
        self.finish_button.grid(row=0, column=0, padx=(0, 8))
        self.notice_button = ctk.CTkButton(done, height=50, width=200, font=style.font(18, "bold"),
                                           fg_color=style.color("warning"),
                                           command=lambda: self._p(lambda p: p.notice()))
        self.notice_button.grid(row=0, column=1, padx=4)
        self.close_button = ctk.CTkButton(done, height=50, width=110, font=style.font(16),
                                          fg_color=style.color("button_secondary"),
                                          hover_color=style.color("button_secondary_hover"),
                                          command=self.close)
        self.close_button.grid(row=0, column=3, padx=(8, 0))

        self.message_label = ctk.CTkLabel(self, font=style.font(16), anchor="w", text="",
                                          corner_radius=8, height=34)
        # At the top, under the title: a message at the bottom was off screen at 1366x768.
        self.message_label.grid(row=1, column=0, columnspan=2, sticky="ew", padx=12, pady=(0, 4))
        self.protocol("WM_DELETE_WINDOW", self.close)
        self.bind("<Escape>", lambda _e: self.close())
        self.yes_no: ctk.CTkToplevel | None = None
        self.relabel()

    # -- wiring --------------------------------------------------------------------------------------
    def _p(self, act: Callable[[CapturePresenter], object]) -> None:
        """Run ``act`` on the presenter once it is attached (the window is built first)."""
        if self.presenter is not None:
            act(self.presenter)

    def _on_tree_select(self, _e: tk.Event[tk.Misc]) -> None:
        sel = self.tree.selection()
        if sel:
            self._p(lambda p: p.select(sel[0]))

    def _on_source(self, value: str) -> None:
        for s in SOURCES:
            if label(s) == value and self.presenter is not None:
                self.presenter.set_source(s)

    def _on_colour(self, value: str) -> None:
        for c in COLOURS:
            if label(c) == value and self.presenter is not None:
                self.presenter.set_options(colour=c)

    def _on_feed(self, value: str) -> None:
        for f in FEEDS:
            if label(f) == value and self.presenter is not None:
                self.presenter.set_options(feed=f)

    def _import(self) -> None:
        self.ask_files(lambda paths: self._p(lambda p: p.import_files(paths)))

    def relabel(self) -> None:
        self.title(_("Capture materials"))
        for col, msgid in {"name": N_("Material"), "requirement": N_("Need"),
                           "status": N_("Status"), "pages": N_("Pages"),
                           "upload": N_("Upload")}.items():
            self.tree.heading(col, text=_(msgid))
        self.source_seg.configure(values=[label(s) for s in SOURCES])
        self.colour_menu.configure(values=[label(c) for c in COLOURS])
        self.feed_menu.configure(values=[label(f) for f in FEEDS])
        self.import_button.configure(text=_("Import file…"))
        for key, msgid in {"left": N_("◀ Earlier"), "right": N_("Later ▶"),
                           "delete": N_("Delete page"), "rescan": N_("Rescan page")}.items():
            self.edit_buttons[key].configure(text=_(msgid))
        for status, b in self.mark_buttons.items():
            b.configure(text=label(status))
        self.finish_button.configure(text=_("Finish and upload"))
        self.notice_button.configure(text=_("One-time notice"))
        self.close_button.configure(text=_("Close"))

    # -- show_* (the CaptureView protocol) -------------------------------------------------------
    def set_header(self, text: str) -> None:
        self.header.configure(text=text)

    def show_slots(self, rows: Sequence[SlotRow], selected: str | None) -> None:
        self.tree.delete(*self.tree.get_children(""))
        for r in rows:
            self.tree.insert("", "end", iid=r.item_id, tags=("alarm",) if r.alarm else (),
                             values=(r.name, r.requirement, r.status, r.pages, r.upload))
        if selected and self.tree.exists(selected):
            self.tree.selection_set(selected)
            self.tree.see(selected)

    def show_pages(self, title: str, thumbs: Sequence[Image.Image], selected: int | None) -> None:
        for f in self._thumb_frames:
            f.destroy()
        self._thumb_frames, self._images = [], []
        n = len(thumbs)
        self.pages_title.configure(text=f"{title} · " + _("{n} page(s)").format(n=n))
        if not thumbs:
            self.empty_label.configure(text=_("No pages waiting in this item. Choose a source and "
                                              "press the blue button above, or import a file."))
            self.empty_label.grid(row=0, column=0, padx=20, pady=40)
        else:
            self.empty_label.grid_forget()
        for i, thumb in enumerate(thumbs):
            chosen = i == selected
            frame = ctk.CTkFrame(self.strip, corner_radius=8, border_width=3,
                                 border_color=style.color("accent") if chosen else style.color("panel"))
            frame.grid(row=0, column=i, padx=6, pady=6)
            img = ctk.CTkImage(light_image=thumb, dark_image=thumb, size=thumb.size)
            self._images.append(img)
            pic = ctk.CTkLabel(frame, image=img, text="")
            pic.pack(padx=6, pady=(6, 2))
            cap = ctk.CTkLabel(frame, text=_("Page {n}").format(n=i + 1), font=style.font(14))
            cap.pack(pady=(0, 4))
            for w in (frame, pic, cap):
                w.bind("<Button-1>", lambda _e, k=i: self._p(lambda p: p.select_page(k)))
            self._thumb_frames.append(frame)
        has = selected is not None and 0 <= selected < n
        for key, b in self.edit_buttons.items():
            ok = has and not (key == "left" and selected == 0) and not (key == "right" and selected == n - 1)
            self._enable(b, ok)

    def show_controls(self, source: str, resolution: int, colour: str, feed: str,
                      busy: bool, can_finish: bool, can_notice: bool) -> None:
        self.source_seg.set(label(source))
        self.res_menu.set(f"{resolution} dpi")
        self.colour_menu.set(label(colour))
        self.feed_menu.set(label(feed))
        scanner = source == "scanner"
        for w in (self.res_menu, self.colour_menu, self.feed_menu):
            on = scanner and not busy
            key = str(w)
            normal = self._normal_fg.setdefault(key, (w.cget("fg_color"), w.cget("button_color")))
            grey = style.color("button_disabled")
            # Scanner options do nothing for a folder or files: greyed, not blue.
            w.configure(state="normal" if on else "disabled", fg_color=normal[0] if on else grey,
                        button_color=normal[1] if on else grey)
        text = {"scanner": _("Scan"), "folder": _("Take from folder"),
                "file": _("Choose files…")}[source]
        self.capture_button.configure(text=text + (" …" if busy else ""))
        self._enable(self.capture_button, not busy)
        self._enable(self.import_button, not busy)
        # Disabled buttons turn flat grey: a green or orange one must mean "press me".
        self._enable(self.finish_button, can_finish)
        self._enable(self.notice_button, can_notice)
        for b in self.mark_buttons.values():
            self._enable(b, not busy)

    def _enable(self, button: ctk.CTkButton, on: bool) -> None:
        normal = self._normal_fg.setdefault(str(button), button.cget("fg_color"))
        set_enabled(button, on, normal)

    def show_message(self, text: str, kind: str = "info") -> None:
        fg = {"info": "info_bg", "warn": "warning_bg", "error": "danger_bg"}.get(kind, "info_bg")
        tc = {"info": "text", "warn": "warning", "error": "danger"}.get(kind, "text")
        self.message_label.configure(text=f"  {text}", fg_color=style.color(fg),
                                     text_color=style.color(tc))
        self.message_kind = kind

    def ask_files(self, on_done: Callable[[list[str]], None]) -> None:
        """The desk's own chooser (ui/views/file_chooser.py), not Tk's English one."""
        from ui.views.file_chooser import FileChooser

        self.file_chooser = FileChooser(self, lambda paths: on_done(list(paths)))

    def ask_yes_no(self, text: str, on_done: Callable[[bool], None]) -> None:
        d = Toplevel(self)
        d.title(_("Suspend the ticket?"))
        d.transient(self)
        ctk.CTkLabel(d, text=text, font=style.font(17), wraplength=520, justify="left").pack(
            padx=24, pady=(22, 14))
        row = ctk.CTkFrame(d, fg_color="transparent")
        row.pack(pady=(0, 20))

        def answer(yes: bool) -> None:
            d.destroy()
            self.yes_no = None
            on_done(yes)

        self.yes_button = ctk.CTkButton(row, text=_("Suspend (Enter)"),
                                        font=style.font(17, "bold"), height=44,
                                        command=lambda: answer(True))
        self.yes_button.pack(side="left", padx=8)
        self.no_button = ctk.CTkButton(row, text=_("Not now (Esc)"),
                                       font=style.font(17), height=44,
                                       fg_color=style.color("button_secondary"),
                                       hover_color=style.color("button_secondary_hover"),
                                       command=lambda: answer(False))
        self.no_button.pack(side="left", padx=8)
        d.bind("<Return>", lambda _e: answer(True))
        d.bind("<Escape>", lambda _e: answer(False))
        self.yes_no = d

    def is_open(self) -> bool:
        return not self.closed and bool(self.winfo_exists())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._images.clear()
        self.destroy()


def open_for_desk(app: DeskApp, item_id: str | None) -> CaptureWindow | None:
    """Open (or raise) the capture panel for the desk's current case, on ``item_id``'s slot."""
    from counter_app import events as ev
    from ui import i18n
    from ui.tasks import ViewRunner, on_destroy

    desk, core = app.desk, app.core
    if desk is None:
        return None
    case = desk.s.case
    ticket = desk.s.ticket
    code = ((case.matter_code if case is not None else None)
            or (ticket.matter_code if ticket is not None else None))
    # The desk presenter already looked the matter up on a worker to draw the checklist; no
    # catalog read on the Tk thread here.
    matter = desk.current_matter() if code else None
    documents = core.documents
    if case is None or matter is None or documents is None:
        desk.notice(lambda: _("Start the service and set the matter (F7, F8) before capturing."),
                    "warn")
        return None
    existing = app.capture_window
    if existing is not None and not existing.closed and existing.winfo_exists():
        if existing.presenter is not None and item_id:
            existing.presenter.select(item_id)
        existing.lift()
        return existing
    win = CaptureWindow(app.root)
    staff = core.session.staff
    clerk = f"{staff.name_zh}（{staff.staff_no}）" if staff is not None else ""
    hall = (core.hall.name_zh if core.hall is not None else "") or "政务服务大厅"
    runner = ViewRunner(app.runner, win.is_open, "the capture panel")
    presenter = CapturePresenter(win, runner, core, case, matter, clerk=clerk,
                                 window_label=f"{app.settings.window_no}号窗口", hall_name=hall,
                                 item_id=item_id)
    win.presenter = presenter
    number = ticket.number if ticket is not None else ""

    def header() -> None:
        name = matter.name_en if i18n.language() == "en" and matter.name_en else matter.name_zh
        win.set_header(f"{number} · {name} · {case.case_no}")

    def on_desk(e: ev.DeskChanged) -> None:
        if e.case is not None and e.case.id == case.id:
            presenter.case = e.case
            presenter.render()

    header()
    app.dispatcher.bind_to_widget(win, ev.DocumentUploadProgress, presenter.on_upload_progress)
    app.dispatcher.bind_to_widget(win, ev.DeskChanged, on_desk)
    def relabel(_lang: str) -> None:
        win.relabel()
        header()
        presenter.render()

    def restored(n: int) -> None:
        if n:
            presenter.render()

    on_destroy(win, i18n.on_change(relabel))
    presenter.render()
    app.runner.run(lambda: documents.restore(case.id), restored, presenter._fail)
    app.capture_window = win
    return win
