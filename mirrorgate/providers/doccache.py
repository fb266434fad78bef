"""What a reload may skip: YAML documents whose text did not change since the previous load.

Rules:
1. A file's text is cut into chunks at every line that starts with ``---`` followed by a blank
   or the end of the line: libyaml starts a new document at each such line, whatever comes
   before it (a block or plain scalar ends there; an open quoted scalar or flow collection is an
   error either way). Text with directives (``%``), document-end markers (``...``), line breaks
   other than ``\\n``, or a byte-order mark after the start is not cut (``split`` returns None).
2. A chunk is remembered, by its exact text, with what its documents decoded to: the admitted
   object and its admission problems (both functions of the document alone). A chunk is
   remembered only when each of its documents decoded to an object without any error, note
   or warning (those name the file and the line, which may change), and only from files that
   parsed without error.
3. The cache keeps the chunks of the latest load only: its size follows the configuration's,
   and the objects it holds are those the latest snapshot holds anyway.
4. Everything that depends on other documents (duplicates, later files win) is decided again on
   every load, from the remembered objects, in document order.
"""

import re
from bisect import bisect_right
from collections.abc import Sequence
from itertools import pairwise

from mirrorgate.errors import FieldError
from mirrorgate.model.meta import Resource

_BOUNDARY = re.compile(r"^---(?=[ \t\n]|$)", re.M)
_UNCUT = re.compile(r"^(?:%|\.\.\.(?=[ \t\n]|$))", re.M)

# A document decoded and admitted: (line within its chunk, 1-based, object, admission problems).
Outcome = tuple[int, Resource, tuple[FieldError, ...]]


class Chunk:
    """One cut of a file: its first line (0-based) and its text."""

    __slots__ = ("line", "text")

    def __init__(self, line: int, text: str) -> None:
        self.line = line
        self.text = text


def split(text: str) -> list[Chunk] | None:
    """The chunks of ``text`` (rule 1), or None when it is not cut."""
    if "\r" in text or "\x85" in text or "\u2028" in text or "\u2029" in text or "\ufeff" in text[1:]:
        return None
    if _UNCUT.search(text):
        return None
    cuts = [0, *(m.start() for m in _BOUNDARY.finditer(text) if m.start() > 0), len(text)]
    chunks, line = [], 0
    for start, end in pairwise(cuts):
        piece = text[start:end]
        chunks.append(Chunk(line, piece))
        line += piece.count("\n")
    return chunks


class Cache:
    """Remembered chunks (rules 2 and 3): read the previous load's, fill the next one's."""

    def __init__(self) -> None:
        self.previous: dict[str, tuple[Outcome, ...]] = {}
        self.next: dict[str, tuple[Outcome, ...]] = {}

    def get(self, chunk: Chunk) -> tuple[Outcome, ...] | None:
        return self.previous.get(chunk.text)

    def keep(self, chunk: Chunk, outcomes: Sequence[Outcome]) -> None:
        self.next[chunk.text] = tuple(outcomes)

    def finish(self) -> None:
        self.previous, self.next = self.next, {}


class Recorder:
    """Collects, chunk by chunk, the outcomes of one file's documents in order (rule 2)."""

    def __init__(self, chunks: list[Chunk]) -> None:
        self.chunks = chunks
        self.starts = [c.line for c in chunks]
        self.outcomes: list[list[Outcome]] = [[] for _ in chunks]
        self.spoiled: set[int] = set()

    def index(self, line: int) -> int:
        """The chunk holding 1-based ``line``."""
        return bisect_right(self.starts, line - 1) - 1

    def note(self, line: int, outcome: tuple[Resource, tuple[FieldError, ...]] | None) -> None:
        i = self.index(line)
        if outcome is None:
            self.spoiled.add(i)
        else:
            self.outcomes[i].append((line - self.chunks[i].line, *outcome))

    def keep_all(self, cache: Cache) -> None:
        for i, chunk in enumerate(self.chunks):
            if i not in self.spoiled:
                cache.keep(chunk, self.outcomes[i])
