"""Plain-Python core shared by the TUI and the headless replay.

Nothing here imports textual, and heavy libraries (torch, transformers, trl, peft, datasets)
are imported inside the functions that need them, so importing the core stays cheap.
"""
