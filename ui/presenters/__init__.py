"""Presenters: plain Python between the core and the views. No customtkinter, no tkinter here,
so every decision the desk makes (what is enabled, what a ticket card says) is tested without Tk.
"""
