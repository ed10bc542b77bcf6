"""Plain-Python core shared by the TUI and the headless replay, one package a pipeline stage.

From the top down (each imports only what is below it; ``lint-imports`` checks the order):
``training`` (plan, launch, evaluate a run, scheduler jobs) > ``ship`` > ``evaluation`` >
``runs`` > ``data`` | ``hardware`` > ``models`` > the shared modules here: ``session``,
``spec`` and ``method_defaults`` (what every stage reads), ``jsonio``, ``atomic``, ``paths``,
``errors``. ``decide`` stands apart.

Nothing here imports textual, and heavy libraries (torch, transformers, trl, peft, datasets)
are imported inside the functions that need them, so importing the core stays cheap.
"""
