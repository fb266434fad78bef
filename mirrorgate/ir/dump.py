"""Deterministic dumps of the routing table and statuses (goldens, /config_dump, `status`).

Mappings are sorted by key, lists keep their (precedence or spec) order, numbers are integers.
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
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1000)


def to_json(data: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(data), indent=2).decode() + "\n"
