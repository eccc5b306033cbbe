"""The app file's comments by line (with :mod:`tokenize`), to carry them into the spec: the comment block
directly above a line, and a comment at the end of a line."""

from __future__ import annotations

import io
import tokenize

# Comments that are not the author's: linters' pragmas and the cost line mtc writes above each function.
NOT_CARRIED = ("noqa", "type:", "ruff:", "Estimated cost:", "max_containers is the sweep's max_parallel")


def printable(text: str) -> str:
    """``text`` without control characters (a comment may hold an escape sequence; the spec must not)."""
    return "".join(char for char in text if char.isprintable())


class SourceComments:
    def __init__(self, source: str) -> None:
        self.lines = source.splitlines()
        self.by_line: dict[int, str] = {}
        try:
            for token in tokenize.generate_tokens(io.StringIO(source).readline):
                if token.type == tokenize.COMMENT:
                    self.by_line[token.start[0]] = printable(token.string.lstrip("#").strip())
        except (tokenize.TokenError, SyntaxError):
            pass

    def _whole_line(self, line: int) -> bool:
        return line in self.by_line and self.lines[line - 1].lstrip().startswith("#")

    def above(self, line: int) -> list[str]:
        """The comment lines right above ``line`` (no blank line between), top to bottom."""
        found: list[str] = []
        current = line - 1
        while current >= 1 and self._whole_line(current):
            found.append(self.by_line[current])
            current -= 1
        return [text for text in reversed(found) if text and not text.startswith(NOT_CARRIED)]

    def trailing(self, line: int) -> list[str]:
        if line in self.by_line and not self._whole_line(line):
            text = self.by_line[line]
            return [] if text.startswith(NOT_CARRIED) else [text]
        return []

    def around(self, line: int) -> list[str]:
        return self.above(line) + self.trailing(line)
