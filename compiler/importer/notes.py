"""What the importer could not carry over: each item is one warning (with the app file's line) and one
``# mtc import: ...`` comment placed at the nearest key of the spec."""

from __future__ import annotations

from dataclasses import dataclass, field


class Unreadable(Exception):
    """A value the importer cannot know without running the code, or a form the spec lacks."""

    def __init__(self, reason: str, line: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass(frozen=True)
class Note:
    line: int
    message: str


@dataclass
class Notes:
    """Collected while reading; :meth:`sorted` gives them in the app file's order."""

    items: list[Note] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        self.items.append(Note(line, message))

    def sorted(self) -> list[Note]:
        return sorted(self.items, key=lambda note: note.line)
