"""Deterministic dumps of the routing table and statuses (goldens, /config_dump, `status`).

Mappings are sorted by key, lists keep their (precedence or spec) order, numbers are integers.
YAML text is PyYAML's pure-Python emitter's, byte for byte. libyaml's emitter writes it (about
twenty times faster) when the document is a mapping or a list, every string in it single-line
printable ASCII and every key a non-empty string under 120 characters: there the two emitters
take the same decisions (they differ on empty keys, keys near the 128-character limit of a simple
key, and how a lone scalar document ends). Other data goes through the pure-Python emitter.
"""

from typing import Any

import msgspec
import yaml

from mirrorgate.ir.table import RoutingTable


def table_to_builtins(table: RoutingTable) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(table))
    return out


def to_yaml(data: Any) -> str:
    """Block-style YAML with sorted keys: stable text for golden files and diffs."""
    dumper = _FAST_DUMPER if isinstance(data, (dict, list)) and _plain_ascii(data) else yaml.SafeDumper
    return yaml.dump(data, Dumper=dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1000)


_FAST_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _plain_ascii(data: Any) -> bool:
    """Is every string in ``data`` printable ASCII, and every key a string of 1 to 119 such
    characters? (The emitters differ on empty keys and on keys near their 128-character limit
    for a simple key.)"""
    todo = [data]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            if not item.isascii() or not item.isprintable():
                return False
        elif isinstance(item, dict):
            if not all(isinstance(k, str) and 0 < len(k) < 120 for k in item):
                return False
            todo.extend(item)
            todo.extend(item.values())
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
    return True


def to_json(data: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(data), indent=2).decode() + "\n"
