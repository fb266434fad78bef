"""The object store behind the fake API server: the apiserver's write and watch-history semantics.

- One global resourceVersion counter; every object carries its ``resourceVersion`` (a string),
  ``uid``, ``generation`` and ``creationTimestamp``.
- ``generation`` starts at 1 and grows only when the spec (everything outside ``metadata`` and
  ``status``) changes; status and metadata-only writes leave it alone.
- For kinds with a status subresource, create and PUT on the main resource ignore ``status``;
  PUT and merge PATCH on ``/status`` ignore everything but ``status``.
- A write carrying a ``resourceVersion`` other than the stored one is a 409 Conflict.
- Watch history is a bounded window of events: a watch can resume from an RV at or above
  ``floor``; anything older is 410 Expired (``compact()`` moves the floor to now).
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    group: str
    versions: tuple[str, ...]
    plural: str
    kind: str
    namespaced: bool
    status: bool

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def default_kinds(reference_grant_versions: tuple[str, ...] = ("v1",)) -> list[Kind]:
    gw = "gateway.networking.k8s.io"
    kinds = [
        Kind("", ("v1",), "namespaces", "Namespace", namespaced=False, status=True),
        Kind("", ("v1",), "services", "Service", namespaced=True, status=True),
        Kind("discovery.k8s.io", ("v1",), "endpointslices", "EndpointSlice", namespaced=True, status=False),
        Kind("", ("v1",), "secrets", "Secret", namespaced=True, status=False),
        Kind("", ("v1",), "configmaps", "ConfigMap", namespaced=True, status=False),
        Kind("coordination.k8s.io", ("v1",), "leases", "Lease", namespaced=True, status=False),
        Kind(gw, ("v1",), "gatewayclasses", "GatewayClass", namespaced=False, status=True),
        Kind(gw, ("v1",), "gateways", "Gateway", namespaced=True, status=True),
        Kind(gw, ("v1",), "httproutes", "HTTPRoute", namespaced=True, status=True),
        Kind(gw, ("v1",), "backendtlspolicies", "BackendTLSPolicy", namespaced=True, status=True),
        Kind("mirrorgate.dev", ("v1alpha1",), "mirrorpolicies", "MirrorPolicy", namespaced=True, status=True),
        Kind("mirrorgate.dev", ("v1alpha1",), "gatewayconfigs", "GatewayConfig", namespaced=True, status=False),
    ]
    if reference_grant_versions:
        kinds.append(Kind(gw, reference_grant_versions, "referencegrants", "ReferenceGrant", True, status=False))
    return kinds


class StatusError(Exception):
    """An apiserver error answer: a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def not_found(kind: Kind, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{kind.qualified} "{name}" not found', {"name": name, "kind": kind.plural})


def conflict(kind: Kind, name: str) -> StatusError:
    msg = (
        f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    return StatusError(409, "Conflict", msg, {"name": name, "kind": kind.plural})


def expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


@dataclass
class Event:
    rv: int
    kind: Kind
    namespace: str
    type: str
    obj: Obj


def spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self, history: int = 1000) -> None:
        self.rv = 1
        self.floor = 1
        self.objects: dict[tuple[str, str, str, str], Obj] = {}
        self.history: deque[Event] = deque()
        self.history_size = history
        self.listeners: set[asyncio.Queue[Any]] = set()

    def compact(self) -> None:
        """Forget every past event: watches from any earlier RV get 410 Expired."""
        self.history.clear()
        self.floor = self.rv

    def _record(self, kind: Kind, namespace: str, type_: str, obj: Obj) -> None:
        event = Event(self.rv, kind, namespace, type_, copy.deepcopy(obj))
        self.history.append(event)
        while len(self.history) > self.history_size:
            self.floor = self.history.popleft().rv
        for queue in self.listeners:
            queue.put_nowait(event)

    def _bump(self, obj: Obj) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def list(self, kind: Kind, namespace: str | None) -> list[Obj]:
        found = [
            o
            for (g, p, ns, _), o in sorted(self.objects.items())
            if g == kind.group and p == kind.plural and (namespace is None or ns == namespace)
        ]
        return [copy.deepcopy(o) for o in found]

    def get(self, kind: Kind, namespace: str, name: str) -> Obj:
        obj = self.objects.get((kind.group, kind.plural, namespace, name))
        if obj is None:
            raise not_found(kind, name)
        return copy.deepcopy(obj)

    def create(self, kind: Kind, namespace: str, body: Obj) -> Obj:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise StatusError(422, "Invalid", f"{kind.kind} is invalid: metadata.name: Required value")
        key = (kind.group, kind.plural, namespace, name)
        if key in self.objects:
            raise StatusError(409, "AlreadyExists", f'{kind.qualified} "{name}" already exists')
        if kind.status:
            obj.pop("status", None)
        if kind.namespaced:
            meta["namespace"] = namespace
        meta.update(uid=str(uuid.uuid4()), generation=1, creationTimestamp=now_rfc3339())
        obj.setdefault("kind", kind.kind)
        self._bump(obj)
        self.objects[key] = obj
        self._record(kind, namespace, "ADDED", obj)
        return copy.deepcopy(obj)

    def _current(self, kind: Kind, namespace: str, name: str, body: Obj) -> Obj:
        old = self.objects.get((kind.group, kind.plural, namespace, name))
        if old is None:
            raise not_found(kind, name)
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(kind, name)
        return old

    def replace(self, kind: Kind, namespace: str, name: str, body: Obj) -> Obj:
        """PUT on the main resource (status ignored when the kind has a status subresource)."""
        old = self._current(kind, namespace, name, body)
        obj = copy.deepcopy(body)
        keep = {k: old["metadata"][k] for k in ("uid", "creationTimestamp", "generation", "name")}
        obj["metadata"] = {**obj.get("metadata", {}), **keep}
        if kind.namespaced:
            obj["metadata"]["namespace"] = namespace
        if kind.status:
            obj.pop("status", None)
            if "status" in old:
                obj["status"] = copy.deepcopy(old["status"])
        if spec_of(obj) != spec_of(old):
            obj["metadata"]["generation"] = old["metadata"]["generation"] + 1
        return self._store(kind, namespace, name, obj)

    def replace_status(self, kind: Kind, namespace: str, name: str, body: Obj) -> Obj:
        """PUT on ``/status``: only ``status`` is taken from the body."""
        self._require_status(kind, name)
        old = self._current(kind, namespace, name, body)
        obj = copy.deepcopy(old)
        obj["status"] = copy.deepcopy(body.get("status"))
        if obj["status"] is None:
            obj.pop("status")
        return self._store(kind, namespace, name, obj)

    def patch_status(self, kind: Kind, namespace: str, name: str, patch: Obj) -> Obj:
        """Merge PATCH on ``/status``: the patch applies to the object, only ``status`` is kept."""
        self._require_status(kind, name)
        old = self._current(kind, namespace, name, patch)
        patched = merge_patch(old, patch)
        obj = copy.deepcopy(old)
        if "status" in patched:
            obj["status"] = patched["status"]
        else:
            obj.pop("status", None)
        return self._store(kind, namespace, name, obj)

    def _require_status(self, kind: Kind, name: str) -> None:
        if not kind.status:
            raise StatusError(404, "NotFound", f"the server could not find the requested resource ({name}/status)")

    def _store(self, kind: Kind, namespace: str, name: str, obj: Obj) -> Obj:
        self._bump(obj)
        self.objects[(kind.group, kind.plural, namespace, name)] = obj
        self._record(kind, namespace, "MODIFIED", obj)
        return copy.deepcopy(obj)

    def delete(self, kind: Kind, namespace: str, name: str) -> Obj:
        obj = self.objects.pop((kind.group, kind.plural, namespace, name), None)
        if obj is None:
            raise not_found(kind, name)
        self._bump(obj)
        self._record(kind, namespace, "DELETED", obj)
        return copy.deepcopy(obj)


def matches(obj: Obj, selector: str | None) -> bool:
    """Equality-based label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, comma-separated."""
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in (t.strip() for t in selector.split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term and term not in labels:
            return False
    return True
