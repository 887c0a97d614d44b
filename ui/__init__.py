"""The counter desk's window: customtkinter views, plain-Python presenters, the task runner that
keeps I/O off the Tk thread, the theme and the translations. Imports counter_app, never the server.
"""
