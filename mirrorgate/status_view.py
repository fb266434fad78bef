"""Render loaded objects with their computed status, shaped like ``kubectl get -o yaml|json``.

A Secret's ``data`` and ``stringData`` values are shown as ``<redacted>``: a ``kubernetes.io/tls``
Secret holds a private key, and this view is what ``/status`` and ``mirrorgate status`` print.
"""

from datetime import UTC, datetime
from typing import Any

import msgspec

from mirrorgate.model.meta import Resource
from mirrorgate.model.snapshot import Snapshot
from mirrorgate.translate.status import AnyStatus


def object_view(obj: Resource, status: AnyStatus | None, now: str | None = None) -> dict[str, Any]:
    """One object as the apiserver would return it: defaults applied, empty fields omitted,
    ``status`` from the translation (conditions get ``lastTransitionTime`` = ``now`` when given)."""
    body: dict[str, Any] = prune(msgspec.to_builtins(obj))
    if body.get("kind") == "Secret":  # private keys never leave the process: keys listed, values redacted
        for field in ("data", "stringData"):
            if field in body:
                body[field] = dict.fromkeys(body[field], "<redacted>")
    if status is not None:
        st: dict[str, Any] = msgspec.to_builtins(status)
        if now is not None:
            _stamp(st, now)
        body["status"] = st
    return body


def list_view(snap: Snapshot, statuses: dict[str, AnyStatus], now: str | None = None) -> dict[str, Any]:
    """``{"apiVersion": "v1", "kind": "List", "items": [...]}`` of every object in the snapshot."""
    items = [object_view(o, statuses.get(str(o.key)), now) for o in snap.objects()]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def prune(value: Any) -> Any:
    """Drop ``None`` and empty mappings/lists (Kubernetes' ``omitempty``); keep ``""`` and ``0``."""
    if isinstance(value, dict):
        out = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != [] and not _empty_meta(k, v)}
    if isinstance(value, list | tuple):
        return [prune(v) for v in value]
    return value


def _empty_meta(key: str, value: Any) -> bool:
    return key in ("creationTimestamp", "uid", "namespace") and value == ""


def _stamp(value: Any, now: str) -> None:
    if isinstance(value, dict):
        if "observedGeneration" in value and "reason" in value:
            value["lastTransitionTime"] = now
        for v in value.values():
            _stamp(v, now)
    elif isinstance(value, list | tuple):
        for v in value:
            _stamp(v, now)
