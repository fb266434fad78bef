"""Deterministic dumps of the routing table and statuses (goldens, /config_dump, `status`).

Rules:
1. Mappings are sorted by key, lists keep their (precedence or spec) order, numbers are integers.
2. YAML text is what ``yaml.safe_dump`` (PyYAML's pure-Python emitter) writes, byte for byte.
   A direct block writer produces it when the data is dicts with string keys of 1 to 119
   characters, lists or tuples (none directly inside another), str, int, bool and None, every
   string printable ASCII, no object met twice and no line long enough for PyYAML to fold; for
   such data PyYAML's choices reduce to plain or single-quoted scalars and fixed indentation.
   Any other data goes through PyYAML.
3. When the writer cannot take the whole document, a top-level mapping is written key by key,
   and a long list under one of its keys in batches: block style writes the items of such a
   list at the left margin, each as a top-level list would, so the pieces concatenate to the
   whole document, and one unusual item sends only its batch through PyYAML. Data where one
   dict or list appears twice is written whole (PyYAML anchors it).
4. The cyclic garbage collector is paused while a dump runs (``mirrorgate.gcpause``): a dump builds no
   cycles, and collections walking the whole configuration were most of a large dump's time.
"""

from typing import Any

import msgspec
import yaml

from mirrorgate.gcpause import paused_gc
from mirrorgate.ir.table import RoutingTable

SECRET_FIELDS = ("chainPem", "keyPem")  # Certificate fields never dumped (private key material)


def table_to_builtins(table: RoutingTable) -> dict[str, Any]:
    """The table as JSON-shaped data for ``/config_dump`` and ``status --routing-table``: every
    field but the PEM of ``certificates`` (a private key never leaves the process that serves it)."""
    out: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(table))
    for cert in out.get("certificates", ()):
        for name in SECRET_FIELDS:
            cert.pop(name, None)
    return out


def to_yaml(data: Any) -> str:
    """Block-style YAML with sorted keys: stable text for golden files and diffs."""
    with paused_gc():
        whole = _written(data)
        if whole is not None:
            return whole
        if isinstance(data, dict) and data and all(isinstance(k, str) for k in data) and not _shares(data):
            return "".join(_top_level_entry(k, data[k]) for k in sorted(data))
        return _dump(data)


def _shares(data: Any) -> bool:
    """Is some dict or list met twice in ``data``? (PyYAML anchors it, across the whole document.)"""
    seen: set[int] = set()
    todo = [data]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            return True
        seen.add(id(item))
        children = item.values() if type(item) is dict else item
        todo.extend(c for c in children if (type(c) in _SEQUENCES and c != ()) or type(c) is dict)
    return False


_SEQUENCES = (list, tuple)  # PyYAML's safe representer writes a tuple as a list


# Items of a long top-level list dumped at a time, as one small document (rule 3).
BATCH = 256


def _top_level_entry(key: str, value: Any) -> str:
    """``key: value`` of a top-level mapping; a long list as its first item then batches of the rest."""
    if not isinstance(value, list) or len(value) <= BATCH:
        return _dump({key: value})
    rest = value[1:]
    return _dump({key: value[:1]}) + "".join(_dump(rest[i : i + BATCH]) for i in range(0, len(rest), BATCH))


def _dump(data: Any) -> str:
    text = _written(data)
    if text is not None:
        return text
    return yaml.dump(
        data, Dumper=yaml.SafeDumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1000
    )


def _written(data: Any) -> str | None:
    """``data`` as the block writer writes it; None when it is left to PyYAML."""
    if not isinstance(data, (dict, *_SEQUENCES)) or not data:
        return None
    try:
        return _BlockWriter().document(data)
    except _Unusual:
        return None


class _Unusual(Exception):
    """Data the block writer leaves to PyYAML (rule 2)."""


_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER: Any = yaml.resolver.Resolver()
# First characters that stop a plain scalar (YAML indicators), and the ones that do when a space follows.
_INDICATOR_FIRST = frozenset("#,[]{}&*!|>'\"%@`")
_INDICATOR_BEFORE_SPACE = frozenset("?:-")
_MAX_LINE = 990  # PyYAML folds a scalar at a space past column 1000 (width=1000)


class _BlockWriter:
    """PyYAML's block style (indent 2, sequences in mappings at the key's indentation), for
    dicts with string keys, lists, str, int, bool and None; strings printable ASCII on one line.
    A scalar is plain when PyYAML's emitter would write it plain, else single-quoted: the
    emitter's analysis restricted to those characters. Raises ``_Unusual`` for anything else (a
    list directly in a list, an object met twice, a line PyYAML would fold, another type)."""

    def __init__(self) -> None:
        self.out: list[str] = []  # lines not yet joined
        self.parts: list[str] = []  # joined lines
        self.seen: set[int] = set()
        self.rendered: dict[str, str] = {}

    def document(self, data: Any) -> str:
        if type(data) is dict:
            self.mapping(data, 0, "")
        else:
            self.sequence(data, 0)
        self.flush()
        return "".join(self.parts)

    def flush(self) -> None:
        """Join the lines written so far (a million short strings would cost more than the text)."""
        if any(len(line) > _MAX_LINE for line in self.out):
            raise _Unusual
        self.parts.append("".join(self.out))
        self.out.clear()

    def collection(self, data: Any) -> None:
        if data == ():  # the one empty tuple: PyYAML never anchors it
            return
        if id(data) in self.seen:  # PyYAML would write an anchor and an alias
            raise _Unusual
        self.seen.add(id(data))

    def mapping(self, data: dict[str, Any], indent: int, first: str) -> None:
        self.collection(data)
        pad = " " * indent
        if not all(type(k) is str and 0 < len(k) < 120 for k in data):  # see rule 2
            raise _Unusual
        for i, key in enumerate(sorted(data)):
            self.entry(f"{first if i == 0 and first else pad}{self.scalar(key)}:", data[key], indent)

    def entry(self, head: str, value: Any, indent: int) -> None:
        t = type(value)
        if t is dict and value:
            self.out.append(head + "\n")
            self.mapping(value, indent + 2, "")
        elif t in _SEQUENCES and value:
            self.out.append(head + "\n")
            self.sequence(value, indent)
        else:
            self.out.append(f"{head} {self.leaf(value)}\n")

    def sequence(self, data: list[Any] | tuple[Any, ...], indent: int) -> None:
        self.collection(data)
        prefix = " " * indent + "- "
        for item in data:
            t = type(item)
            if t is dict and item:
                self.mapping(item, indent + 2, prefix)
            elif t in _SEQUENCES and item:
                raise _Unusual
            else:
                self.out.append(f"{prefix}{self.leaf(item)}\n")
            if len(self.out) > 4096:
                self.flush()

    def leaf(self, value: Any) -> str:
        t = type(value)
        if t is dict or t in _SEQUENCES:
            self.collection(value)
            return "{}" if t is dict else "[]"
        return self.scalar(value)

    def scalar(self, value: Any) -> str:
        t = type(value)
        if t is str:
            text = self.rendered.get(value)
            if text is None:
                text = self.rendered[value] = _render(value)
            return text
        if t is bool:
            return "true" if value else "false"
        if t is int:
            return str(value)
        if value is None:
            return "null"
        raise _Unusual


def _render(s: str) -> str:
    """A printable ASCII string as PyYAML writes it in block context: plain or single-quoted."""
    if not (s.isascii() and s.isprintable()):
        raise _Unusual
    if _RESOLVER.resolve(yaml.ScalarNode, s, (True, False)) == _STR_TAG and _block_plain(s):
        return s
    return "'" + s.replace("'", "''") + "'"


def _block_plain(s: str) -> bool:
    """PyYAML's ``allow_block_plain`` for a non-empty printable ASCII string."""
    if s[0] == " " or s[-1] == " " or s.startswith(("---", "...")) or s[0] in _INDICATOR_FIRST:
        return False
    if s[0] in _INDICATOR_BEFORE_SPACE and (len(s) == 1 or s[1] == " "):
        return False
    return not (": " in s[1:] or (s[-1] == ":" and len(s) > 1) or " #" in s)


def to_json(data: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(data), indent=2).decode() + "\n"
