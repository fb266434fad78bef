"""A composed YAML node tree -> Python data, faster than PyYAML's constructor for plain documents.

Rules:
1. ``construct(loader, node)`` returns exactly what ``loader.construct_document(node)`` returns
   (same values, same mapping order) or raises ``Unusual``; the caller then constructs the
   document PyYAML's way, so every error and every unusual feature (merge keys, anchors and
   aliases, non-default tags, complex keys, a key given twice) keeps PyYAML's behaviour and
   messages.
2. Plain means: mappings, sequences and scalars with the default tags; scalar values go through
   the loader's own constructor for their tag (``int``, ``bool``, ``null``, ``float``,
   ``timestamp``...), strings are the node's value as PyYAML returns them; equal strings met by
   one loader are returned as one object (a configuration repeats its names, kinds and groups
   thousands of times, and the decoded objects keep them).
3. ``MemoResolve`` remembers the tag the resolver gave a (kind, value, implicit) triple: the
   composer asks again for every repeated key and value, and the answer only depends on them
   when no path resolver is registered (none is, for the safe loaders).
"""

from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_NULL = "tag:yaml.org,2002:null"
_SCALAR_TAGS = frozenset(
    {
        "tag:yaml.org,2002:null",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:timestamp",
    }
)


class Unusual(Exception):
    """The document needs PyYAML's own constructor (rule 1)."""


def construct(loader: Any, node: Node) -> Any:
    """The document ``node`` as Python data (rule 1); raises ``Unusual``."""
    return _Builder(loader).build(node)


class _Builder:
    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.seen: set[int] = set()
        self.strings: dict[str, str] = loader.__dict__.setdefault("_strings", {})

    def build(self, node: Node) -> Any:
        ident = id(node)
        if ident in self.seen:  # an alias: PyYAML shares one object, and may recurse
            raise Unusual
        self.seen.add(ident)
        cls, tag = type(node), node.tag
        if cls is ScalarNode:
            if tag == _STR:
                return self.strings.setdefault(node.value, node.value)
            if tag == _NULL:
                return None
            if tag in _SCALAR_TAGS:
                return self.loader.yaml_constructors[tag](self.loader, node)
            raise Unusual
        if cls is MappingNode and tag == _MAP:
            return self.mapping(node)
        if cls is SequenceNode and tag == _SEQ:
            return [self.build(item) for item in node.value]
        raise Unusual

    def mapping(self, node: Node) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if type(key_node) is not ScalarNode:
                raise Unusual
            if key_node.tag != _STR and key_node.tag not in _SCALAR_TAGS:
                raise Unusual
            key = self.build(key_node)
            if key in out:
                raise Unusual
            out[key] = self.build(value_node)
        return out


class MemoResolve:
    """Mixin for a PyYAML loader: the tags of scalars remembered (rule 3)."""

    _resolved: dict[tuple[str, Any], Any]

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not ScalarNode or self.yaml_path_resolvers:  # type: ignore[attr-defined]
            return super().resolve(kind, value, implicit)  # type: ignore[misc]
        memo: dict[tuple[str, Any], Any] | None = getattr(self, "_resolved", None)
        if memo is None:
            memo = {}
            self._resolved = memo
        key = (value, implicit)  # str and bools: a key the cyclic GC soon stops tracking
        tag = memo.get(key)
        if tag is None:
            tag = memo[key] = super().resolve(kind, value, implicit)  # type: ignore[misc]
        return tag
