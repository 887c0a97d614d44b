"""Theme, appearance, scaling and the CJK font: chosen once at start-up, read by every view.

Colours come from ``theme/counter.json`` as (light, dark) pairs; views never carry literal colours.
The "Counter" section of that file holds our own named colours (badges, banners, the list, the
chart); ``color()`` gives the pair for CTk widgets and ``pick()`` the single value for plain Tk
(Canvas, ttk.Treeview), which do not understand pairs.
"""

from __future__ import annotations

import sys
import tkinter as tk
from tkinter import ttk

import customtkinter as ctk

from ui.resources import resource_path

THEME_FILE = resource_path("theme", "counter.json")

_scaling = 1.0


def cjk_family() -> str:
    """The CJK-capable family for this platform (WenQuanYi Micro Hei on Linux, YaHei on Windows)."""
    if sys.platform.startswith("win"):
        return "Microsoft YaHei"
    if sys.platform == "darwin":
        return "PingFang SC"
    return "WenQuanYi Micro Hei"


def apply(appearance: str = "light", scaling: float = 1.0) -> None:
    """Load the theme, set an explicit appearance mode and the widget scaling. Tk thread only.

    "System" mode is refused on purpose: customtkinter then polls gsettings every 30 ms.
    """
    global _scaling
    if appearance not in ("light", "dark"):
        appearance = "light"
    ctk.set_default_color_theme(str(THEME_FILE))
    ctk.set_appearance_mode(appearance)
    # Linux DPI is not detected by customtkinter 6: the scaling setting is the only knob.
    scaling = min(max(float(scaling or 1.0), 0.75), 2.5)
    ctk.set_widget_scaling(scaling)
    _scaling = scaling


def appearance() -> str:
    """"light" or "dark" (never "system")."""
    return "dark" if ctk.get_appearance_mode().lower() == "dark" else "light"


def color(name: str) -> tuple[str, str]:
    """The (light, dark) pair of one of our named colours, for CTk widgets."""
    pair = ctk.ThemeManager.theme["Counter"][name]
    return (pair[0], pair[1])


def pick(name: str) -> str:
    """The one colour of the current appearance mode, for plain Tk and ttk widgets."""
    light, dark = color(name)
    return dark if appearance() == "dark" else light


def font(size: int = 15, weight: str = "normal") -> ctk.CTkFont:
    """A CTkFont in the CJK family (scales with the widget scaling). Tk thread only."""
    return ctk.CTkFont(family=cjk_family(), size=size, weight=weight)


def tk_font(size: int = 15, weight: str = "normal") -> tuple[str, int, str]:
    """A font tuple for plain Tk/ttk widgets, scaled by hand (they are not scaled by CTk)."""
    scale = _scaling
    return (cjk_family(), -round(size * scale), weight)


def style_treeview(root: tk.Misc, style_name: str = "Counter.Treeview", row_px: int = 34) -> str:
    """Style ttk.Treeview to match the theme (background, heading, selection, font, row height)."""
    scale = _scaling
    st = ttk.Style(root)
    # "clam" honours background colours on every platform; the native themes ignore some of them.
    if st.theme_use() != "clam":
        st.theme_use("clam")
    st.configure(
        style_name,
        background=pick("tree_bg"),
        fieldbackground=pick("tree_bg"),
        foreground=pick("tree_fg"),
        rowheight=round(row_px * scale),
        font=tk_font(16),
        borderwidth=0,
    )
    st.configure(
        f"{style_name}.Heading",
        background=pick("tree_heading_bg"),
        foreground=pick("tree_fg"),
        font=tk_font(14, "bold"),
        relief="flat",
    )
    st.map(
        style_name,
        background=[("selected", pick("tree_selected"))],
        foreground=[("selected", pick("tree_fg"))],
    )
    st.map(f"{style_name}.Heading", background=[("active", pick("tree_selected"))])
    return style_name
