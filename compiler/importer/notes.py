"""What the importer could not carry over: each item is one warning (with the app file's line) and one
``# mtc import: ...`` comment placed at the nearest key of the spec."""

from __future__ import annotations

from dataclasses import dataclass, field


class Unreadable(Exception):
    """A value the importer cannot know without running the code (raised by :mod:`.values`)."""

    def __init__(self, reason: str, line: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass(frozen=True)
class Note:
    line: int
    message: str
    where: tuple[str, ...] = ()  # the spec path the comment goes next to (the nearest key that exists)


@dataclass
class Notes:
    """Collected while reading; the order is the app file's."""

    items: list[Note] = field(default_factory=list)

    def add(self, line: int, message: str, where: tuple[str, ...] = ()) -> None:
        self.items.append(Note(line, message, where))

    def unreadable(self, exc: Unreadable, what: str, where: tuple[str, ...]) -> None:
        self.add(exc.line, f"{what}: {exc.reason}", where)

    def sorted(self) -> list[Note]:
        return sorted(self.items, key=lambda note: note.line)
