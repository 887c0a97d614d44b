"""Small pieces every view uses: re-labelling on a language switch, and themed plain-Tk widgets.

``Relabel`` remembers (widget, message id, option, format args) for each translated text and sets
them again when ``ui.i18n.set_language`` runs; it unsubscribes when its owner is destroyed.
``Toplevel`` is the CTkToplevel every window and dialog of ours derives from: it gives back what
customtkinter 6 keeps after a toplevel is destroyed (see its docstring).
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from typing import Any

import customtkinter as ctk

from ui import i18n, style
from ui.i18n import _
from ui.tasks import on_destroy


class Toplevel(ctk.CTkToplevel):
    """A CTkToplevel that leaves nothing behind when it is destroyed.

    customtkinter 6 keeps two things of every toplevel forever (bench/bench_memory.py found them:
    the desk opens two or three dialogs per citizen, ~50 KB of Python heap and a few Tk fonts
    each, ~24 MB a day at 240 tickets):
    - ``ScalingTracker.window_dpi_scaling_dict[window]``: ``remove_window`` forgets the window's
      callbacks but not this entry, so the dict keeps the destroyed window, its whole widget tree
      and its CTkFonts (whose Tk named fonts are freed only when the Python object is);
    - ``bind_all("<Button-1>", set_focus, add=True)`` in ``CTkToplevel.__init__``: one more Tcl
      command and one more line of the "all" binding per window, run on every click afterwards.
    """

    def bind_all(self, sequence: Any = None, func: Any = None, add: Any = None) -> Any:
        funcid = super().bind_all(sequence, func, add)
        if func is not None and isinstance(funcid, str):
            # Set up here, not in __init__: CTkToplevel.__init__ calls bind_all before it returns.
            self.__dict__.setdefault("_all_bindings", []).append((sequence, funcid))
        return funcid

    def destroy(self) -> None:
        for sequence, funcid in self.__dict__.pop("_all_bindings", []):
            try:
                # Only our own line: tkinter 3.11's unbind(sequence, funcid) would drop them all.
                script = str(self.tk.call("bind", "all", sequence))
                kept = [line for line in script.split("\n") if line.strip() and funcid not in line]
                self.tk.call("bind", "all", sequence, "".join(line + "\n" for line in kept))
                # tkinter registers bind_all commands on the root, so the root forgets it.
                self._root().deletecommand(funcid)
            except tk.TclError:
                pass  # the interpreter is going away with the root
        try:
            super().destroy()
        finally:
            from customtkinter.windows.widgets.scaling.scaling_tracker import ScalingTracker

            ScalingTracker.window_dpi_scaling_dict.pop(self, None)


class Relabel:
    """Keeps translated texts of one view current. Tk thread only."""

    def __init__(self, owner: tk.Misc, on_switch: Callable[[], None] | None = None) -> None:
        self._items: list[tuple[Any, str, str, dict[str, Any]]] = []
        self._on_switch = on_switch
        self._unsubscribe = i18n.on_change(self._switch)
        on_destroy(owner, self._unsubscribe)

    def text(self, widget: Any, msgid: str, option: str = "text", **fmt: Any) -> Any:
        """Set ``widget[option]`` to the translation of ``msgid`` now and after every switch."""
        self._items = [it for it in self._items if it[0] is not widget or it[2] != option]
        self._items.append((widget, msgid, option, fmt))
        widget.configure(**{option: _(msgid).format(**fmt) if fmt else _(msgid)})
        return widget

    def _switch(self, _lang: str) -> None:
        alive = []
        for widget, msgid, option, fmt in self._items:
            try:
                if not widget.winfo_exists():
                    continue
                widget.configure(**{option: _(msgid).format(**fmt) if fmt else _(msgid)})
                alive.append((widget, msgid, option, fmt))
            except tk.TclError:
                continue
        self._items = alive
        if self._on_switch is not None:
            try:
                self._on_switch()
            except tk.TclError:
                pass  # the owner is being torn down


def themed_listbox(master: tk.Misc, height: int = 8) -> tk.Listbox:
    """A plain Tk Listbox in theme colours: arrow keys and Enter work out of the box."""
    lb = tk.Listbox(
        master, height=height, activestyle="none", exportselection=False,
        font=style.tk_font(17), bg=style.pick("tree_bg"), fg=style.pick("tree_fg"),
        selectbackground=style.pick("tree_selected"), selectforeground=style.pick("tree_fg"),
        highlightthickness=2, highlightcolor=style.pick("accent"),
        highlightbackground=style.pick("tree_heading_bg"), relief="flat", borderwidth=0)
    return lb


def selected_indices(lb: tk.Listbox) -> tuple[int, ...]:
    """The selected rows of ``lb`` (typeshed leaves ``curselection`` unannotated)."""
    sel: tuple[int, ...] = lb.curselection()  # type: ignore[no-untyped-call]
    return sel


def select_index(lb: tk.Listbox, index: int) -> None:
    if lb.size() == 0:
        return
    index = max(0, min(index, lb.size() - 1))
    lb.selection_clear(0, "end")
    lb.selection_set(index)
    lb.activate(index)
    lb.see(index)


def action_button(master: tk.Misc, *, command: Callable[[], None], kind: str = "primary",
                  size: int = 18, height: int = 64, width: int = 150) -> ctk.CTkButton:
    colours = {
        "primary": {},
        "secondary": {"fg_color": style.color("button_secondary"),
                      "hover_color": style.color("button_secondary_hover")},
        "danger": {"fg_color": style.color("button_danger"),
                   "hover_color": style.color("button_danger_hover")},
        "ok": {"fg_color": style.color("button_ok"), "hover_color": style.color("button_ok_hover")},
    }[kind]
    return ctk.CTkButton(master, command=command, height=height, width=width,
                         font=style.font(size, "bold"), **colours)


def set_enabled(button: ctk.CTkButton, on: bool, normal_fg: Any) -> None:
    """Enable or disable a button so it is obvious at a glance: disabled ones turn flat grey.

    customtkinter only dims the text of a disabled button, which on a dark button is barely
    visible; staff must see what they can press without reading.
    """
    button.configure(state="normal" if on else "disabled",
                     fg_color=normal_fg if on else style.color("button_disabled"))
