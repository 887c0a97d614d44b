"""Views: CTkFrame subclasses with layout, ``show_*``/``set_busy`` methods and their key children
as attributes. No decisions here (presenters make them) and no I/O (the task runner does it).
"""
