"""User-facing errors: one line that names the file (and line) and the fix."""

from __future__ import annotations

from pathlib import Path


class TuituneError(Exception):
    """An error caused by the user's input or environment, shown as one line without traceback.

    The CLI prints ``str(err)`` and exits non-zero; ``--debug`` shows the traceback.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.fix = fix
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path + (f":{self.line}" if self.line is not None else "") + ": "
        text = where + self.message
        if self.fix:
            text += f" (fix: {self.fix})"
        return text
