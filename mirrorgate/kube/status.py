"""The leader's status writer: translated statuses onto the status subresources of the objects we own.

Rules:

- Leader only. Nothing is written before ``set_leading(True)``; becoming leader starts a full
  pass over every owned object; ``set_leading(False)`` cancels the pass at once (a request
  already sent may still complete). Without a fence two processes may both believe they lead
  for a moment, which is why every write is conflict-checked.
- Ownership. A GatewayClass is ours when ``spec.controllerName`` is our controller name; a
  Gateway when its class is ours. An HTTPRoute's ``status.parents`` entries are ours when their
  ``controllerName`` is ours; entries for a Gateway parent are written only when that Gateway is
  ours. A BackendTLSPolicy's ``status.ancestors`` entries are ours when their ``controllerName``
  is ours and their ``ancestorRef`` is a Gateway of ours. A MirrorPolicy (``mirrorgate.dev``,
  mirrorgate's own kind) is always ours: its ``status.conditions`` are written whenever it is read.
  Nothing of another controller is ever written.
- Merge (read-modify-write on the live object). GatewayClass: the ``Accepted`` condition and
  ``supportedFeatures`` (GEP-2162). Gateway: conditions, ``listeners`` (each with
  ``supportedKinds``, ``attachedRoutes`` and conditions, all required by the CRD) and
  ``addresses`` from ``addresses()``. HTTPRoute (``parents`` is an atomic list shared by every
  controller): our entries are updated in place, our entries for parents we no longer have are
  dropped, new ones are appended; entries of other controllers stay untouched and in order.
  BackendTLSPolicy: ``ancestors`` (``PolicyAncestorStatus``, also shared by every controller) is
  merged the same way, our entries keyed by ``ancestorRef``, and only for ancestors that are
  Gateways of ours. The Gateway API caps that list at ``MAX_ANCESTORS`` entries: other
  controllers' entries are never dropped to make room; ours that do not fit are left out (in
  their merged order) and recorded as an error.
  MirrorPolicy: its conditions (``Accepted``, ``ResolvedRefs``).
  Conditions are a map keyed by ``type``: ours are replaced in place, types we never set are
  kept, our types we no longer set are dropped.
- ``observedGeneration`` is the generation that was translated. ``lastTransitionTime`` is the
  live condition's when its ``status`` is unchanged, else now (RFC 3339, UTC, seconds). When a
  live condition of ours has a newer ``observedGeneration`` than the one translated, our cache
  is behind: that object is left alone until a later update.
- Nothing is written when the merged status equals the live one, so a settled cluster gets no
  writes. The live object comes from the reflector caches, or from our own last write or read
  while the cache still shows the version that write replaced.
- Writes are PUTs on ``/status`` carrying the live ``resourceVersion``. 409: re-read the
  object, merge again and retry with backoff, at most ``ATTEMPTS`` times, then give up until the
  next update. 404: the object is gone, skip it. 5xx, 429 or an unreachable server: the pass
  is retried with backoff (the server's Retry-After when longer) until it succeeds or leadership
  is lost. Any other refusal (400, 403, 422) is recorded and the object skipped.
- Coalescing. ``update`` only replaces the desired state and wakes the one writer task; a pass
  visits objects in a stable order (GatewayClasses, Gateways, HTTPRoutes, BackendTLSPolicies,
  MirrorPolicies, each by namespace and name) and reads the newest desired state for each;
  updates during a pass cause one more pass.
- Objects our admission refused (``Rejected``) get ``Accepted=False``: a GatewayClass with
  reason ``InvalidParameters``, a Gateway with ``Invalid`` (and ``Programmed=False``, no
  listeners, no addresses), an HTTPRoute with ``UnsupportedValue`` in one entry per parentRef to
  a Gateway of ours, a MirrorPolicy with ``Invalid`` (its ``ResolvedRefs`` dropped). The message is
  the admission message.
- Counters for ``/status`` and metrics: ``writes``, ``conflicts``, ``errors``, ``last_error``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from mirrorgate.kube.client import ApiError, Conflict, KubeClient, KubeError, NotFound, Resource, Unreachable
from mirrorgate.kube.features import supported_features

log = logging.getLogger("mirrorgate.kube.status")

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (kind, namespace, name); namespace "" for cluster-scoped kinds
LiveFn = Callable[[str, str, str], Obj | None]

GATEWAY_API = "gateway.networking.k8s.io"
OWNED_CONDITIONS = frozenset({"Accepted", "Programmed", "ResolvedRefs", "Conflicted", "PartiallyInvalid"})
KIND_ORDER = {"GatewayClass": 0, "Gateway": 1, "HTTPRoute": 2, "BackendTLSPolicy": 3, "MirrorPolicy": 4}
MAX_MESSAGE = 32 * 1024
MAX_ANCESTORS = 16  # PolicyStatus.ancestors maxItems
# kind -> (its shared list of per-controller entries, the reference field of one entry)
SHARED = {"HTTPRoute": ("parents", "parentRef"), "BackendTLSPolicy": ("ancestors", "ancestorRef")}


class Rejected(NamedTuple):
    """An object the API server accepted and our admission refused."""

    kind: str
    namespace: str
    name: str
    generation: int
    message: str


class Desired(NamedTuple):
    """The part of one object's status we own, as translated."""

    generation: int
    status: Obj
    publish: bool = False  # a Gateway whose addresses come from ``addresses()``


# ---- desired state (pure)


def desired_state(status_list: Obj, rejected: Sequence[Rejected], controller: str, live: LiveFn) -> dict[Key, Desired]:
    """Every owned object's desired status, from ``list_view`` items and the refused objects."""
    items = [i for i in status_list.get("items") or [] if isinstance(i, dict)]
    refused = {(r.kind, r.namespace, r.name): r for r in rejected}
    classes = _our_classes(items, rejected, controller, live)
    gateways = _our_gateways(items, rejected, classes, live)
    out: dict[Key, Desired] = {}
    for item in items:
        key = item_key(item)
        wanted = None if key in refused else _desired_item(item, controller, classes, gateways)
        if wanted is not None:
            out[key] = wanted
    for key, r in refused.items():
        wanted = _desired_rejected(r, controller, classes, gateways, live)
        if wanted is not None:
            out[key] = wanted
    return out


def item_key(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name", "")))


def _spec(obj: Obj | None) -> Obj:
    return (obj or {}).get("spec") or {}


def _our_classes(items: list[Obj], rejected: Sequence[Rejected], controller: str, live: LiveFn) -> set[str]:
    names = {item_key(i)[2] for i in items if i.get("kind") == "GatewayClass"}
    ours = {item_key(i)[2] for i in items if i.get("kind") == "GatewayClass" and _controller(i) == controller}
    for r in rejected:
        if r.kind == "GatewayClass" and r.name not in names and _controller(live(r.kind, "", r.name)) == controller:
            ours.add(r.name)
    return ours


def _controller(obj: Obj | None) -> str:
    return str(_spec(obj).get("controllerName", ""))


def _our_gateways(items: list[Obj], rejected: Sequence[Rejected], classes: set[str], live: LiveFn) -> set[Key]:
    ours = {item_key(i) for i in items if i.get("kind") == "Gateway" and _spec(i).get("gatewayClassName") in classes}
    for r in rejected:
        if r.kind == "Gateway" and _spec(live(r.kind, r.namespace, r.name)).get("gatewayClassName") in classes:
            ours.add((r.kind, r.namespace, r.name))
    return ours


def _generation(item: Obj) -> int:
    return int((item.get("metadata") or {}).get("generation") or 0)


def _desired_item(item: Obj, controller: str, classes: set[str], gateways: set[Key]) -> Desired | None:
    kind, ns, name = key = item_key(item)
    status = plain(item.get("status") or {})
    if kind not in SHARED and not status:
        return None  # not translated as ours: nothing to write
    if kind == "GatewayClass" and name in classes:
        wanted = {"conditions": status.get("conditions") or [], "supportedFeatures": supported_features()}
        return Desired(_generation(item), wanted)
    if kind == "Gateway" and key in gateways:
        listeners = [_listener(li) for li in status.get("listeners") or []]
        return Desired(_generation(item), {"conditions": status.get("conditions") or [], "listeners": listeners}, True)
    if kind == "HTTPRoute":
        parents = [p for p in status.get("parents") or [] if _our_parent(p, controller, ns, gateways)]
        return Desired(_generation(item), {"parents": parents})
    if kind == "BackendTLSPolicy":
        ancestors = [a for a in status.get("ancestors") or [] if _our_ancestor(a, controller, ns, gateways)]
        return Desired(_generation(item), {"ancestors": ancestors})
    if kind == "MirrorPolicy":
        return Desired(_generation(item), {"conditions": status.get("conditions") or []})
    return None


def plain(value: Any) -> Any:
    """JSON-shaped copy: tuples become lists, so it compares equal to what the API server returns."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _listener(listener: Obj) -> Obj:
    """A ListenerStatus with its required fields present even when empty."""
    return {
        "name": listener.get("name", ""),
        "supportedKinds": listener.get("supportedKinds") or [],
        "attachedRoutes": int(listener.get("attachedRoutes") or 0),
        "conditions": listener.get("conditions") or [],
    }


def _our_parent(entry: Obj, controller: str, route_ns: str, gateways: set[Key]) -> bool:
    if entry.get("controllerName") != controller:
        return False
    return _parent_allowed(entry.get("parentRef") or {}, route_ns, gateways)


def _our_ancestor(entry: Obj, controller: str, policy_ns: str, gateways: set[Key]) -> bool:
    """A policy's ancestor entry is ours when its controller is ours and it names a Gateway of ours."""
    ref = entry.get("ancestorRef") or {}
    is_gateway = (ref.get("group", GATEWAY_API), ref.get("kind", "Gateway")) == (GATEWAY_API, "Gateway")
    return entry.get("controllerName") == controller and is_gateway and _parent_allowed(ref, policy_ns, gateways)


def _parent_allowed(ref: Obj, route_ns: str, gateways: set[Key]) -> bool:
    """A Gateway parent must be a Gateway of ours; other parents (GAMMA Services) are ours by controllerName."""
    if (ref.get("group", GATEWAY_API), ref.get("kind", "Gateway")) != (GATEWAY_API, "Gateway"):
        return True
    return ("Gateway", str(ref.get("namespace") or route_ns), str(ref.get("name", ""))) in gateways


def _desired_rejected(
    r: Rejected, controller: str, classes: set[str], gateways: set[Key], live: LiveFn
) -> Desired | None:
    if r.kind == "GatewayClass" and r.name in classes:
        return Desired(r.generation, {"conditions": [_refused("Accepted", "InvalidParameters", r)]})
    if r.kind == "Gateway" and (r.kind, r.namespace, r.name) in gateways:
        conditions = [_refused("Accepted", "Invalid", r), _refused("Programmed", "Invalid", r)]
        return Desired(r.generation, {"conditions": conditions, "listeners": []})
    if r.kind == "MirrorPolicy":
        return Desired(r.generation, {"conditions": [_refused("Accepted", "Invalid", r)]})
    obj = live(r.kind, r.namespace, r.name) if r.kind == "HTTPRoute" else None
    if obj is None:
        return None
    refs = [p for p in _spec(obj).get("parentRefs") or [] if _is_gateway_ref(p, r.namespace, gateways)]
    parents = [_refused_parent(p, controller, r) for p in refs]
    return Desired(r.generation, {"parents": parents})


def _is_gateway_ref(ref: Obj, route_ns: str, gateways: set[Key]) -> bool:
    is_gateway = (ref.get("group", GATEWAY_API), ref.get("kind", "Gateway")) == (GATEWAY_API, "Gateway")
    return is_gateway and _parent_allowed(ref, route_ns, gateways)


def _refused(kind: str, reason: str, r: Rejected) -> Obj:
    message = r.message[:MAX_MESSAGE]
    return {"type": kind, "status": "False", "reason": reason, "message": message, "observedGeneration": r.generation}


def _refused_parent(ref: Obj, controller: str, r: Rejected) -> Obj:
    echo = {"group": ref.get("group", GATEWAY_API), "kind": ref.get("kind", "Gateway"), "name": ref.get("name", "")}
    echo.update({k: ref[k] for k in ("namespace", "sectionName", "port") if ref.get(k) is not None})
    condition = _refused("Accepted", "UnsupportedValue", r)
    return {"parentRef": echo, "controllerName": controller, "conditions": [condition]}


# ---- merge with the live object (pure)


def merged_status(kind: str, wanted: Desired, live_status: Obj, controller: str, addresses: list[Obj], now: str) -> Obj:
    """The live status with our part replaced as the rules say; fields we do not own are kept."""
    st = copy.deepcopy(live_status)
    if kind in SHARED:
        field, ref = SHARED[kind]
        entries = merge_parents(live_status.get(field) or [], wanted.status[field], controller, now, ref)
        if kind == "BackendTLSPolicy":
            entries = capped(entries, controller)
        if entries or field in st:
            st[field] = entries
        return st
    st["conditions"] = merge_conditions(live_status.get("conditions") or [], wanted.status["conditions"], now)
    if kind == "GatewayClass":
        _put(st, "supportedFeatures", wanted.status.get("supportedFeatures"))
        return st
    if kind == "MirrorPolicy":
        return st
    live_listeners = {li.get("name"): li for li in live_status.get("listeners") or []}
    listeners = [_merge_listener(li, live_listeners.get(li["name"]), now) for li in wanted.status["listeners"]]
    _put(st, "listeners", listeners)
    _put(st, "addresses", addresses if wanted.publish else [])
    return st


def _put(status: Obj, field: str, value: Any) -> None:
    if value:
        status[field] = value
    else:
        status.pop(field, None)


def merge_conditions(live: Iterable[Obj], wanted: Iterable[Obj], now: str) -> list[Obj]:
    """Ours replaced in place (keeping ``lastTransitionTime`` when ``status`` is unchanged), others kept."""
    pending = {c["type"]: c for c in wanted}
    out = []
    for c in live:
        kind = c.get("type")
        if kind in pending:
            out.append(_stamp(pending.pop(kind), c, now))
        elif kind not in OWNED_CONDITIONS:
            out.append(c)
    out.extend(_stamp(c, None, now) for c in pending.values())
    return out


def _stamp(condition: Obj, old: Obj | None, now: str) -> Obj:
    same = old is not None and old.get("status") == condition.get("status") and old.get("lastTransitionTime")
    return {**condition, "lastTransitionTime": old["lastTransitionTime"] if same and old else now}


def _merge_listener(wanted: Obj, live: Obj | None, now: str) -> Obj:
    return {**wanted, "conditions": merge_conditions((live or {}).get("conditions") or [], wanted["conditions"], now)}


def merge_parents(
    live: Iterable[Obj], wanted: Iterable[Obj], controller: str, now: str, ref: str = "parentRef"
) -> list[Obj]:
    """Other controllers' entries untouched and in order; ours updated in place, dropped or appended.

    ``ref`` names the entry's reference field: ``parentRef`` (routes) or ``ancestorRef`` (policies)."""
    pending = {_ref_id(p.get(ref) or {}): p for p in wanted}
    out = []
    for entry in live:
        if entry.get("controllerName") != controller:
            out.append(entry)
            continue
        mine = pending.pop(_ref_id(entry.get(ref) or {}), None)
        if mine is not None:
            out.append(_merge_parent(mine, entry, now))
    out.extend(_merge_parent(p, None, now) for p in pending.values())
    return out


def capped(entries: list[Obj], controller: str) -> list[Obj]:
    """At most ``MAX_ANCESTORS`` entries: every other controller's kept, ours in order while room is left."""
    room = MAX_ANCESTORS - sum(1 for e in entries if e.get("controllerName") != controller)
    out = []
    for entry in entries:
        if entry.get("controllerName") == controller:
            if room <= 0:
                continue
            room -= 1
        out.append(entry)
    return out


def _ref_id(ref: Obj) -> tuple[Any, ...]:
    """A parentRef with the CRD's defaults applied, for matching live entries to ours."""
    fields = (ref.get("namespace"), ref.get("name"), ref.get("sectionName"), ref.get("port"))
    return (ref.get("group", GATEWAY_API), ref.get("kind", "Gateway"), *fields)


def _merge_parent(wanted: Obj, live: Obj | None, now: str) -> Obj:
    conditions = merge_conditions((live or {}).get("conditions") or [], wanted.get("conditions") or [], now)
    return {**wanted, "conditions": conditions}


def behind(kind: str, wanted: Desired, live_status: Obj, controller: str) -> bool:
    """Whether a live condition of ours has a newer ``observedGeneration`` than the one translated."""
    if kind in SHARED:
        field = SHARED[kind][0]
        mine = [p for p in live_status.get(field) or [] if p.get("controllerName") == controller]
        conditions = [c for p in mine for c in p.get("conditions") or []]
    else:
        conditions = [c for c in live_status.get("conditions") or [] if c.get("type") in OWNED_CONDITIONS]
    return any(int(c.get("observedGeneration") or 0) > wanted.generation for c in conditions)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _order(key: Key) -> tuple[int, str, str]:
    return (KIND_ORDER.get(key[0], len(KIND_ORDER)), key[1], key[2])


def _transient(exc: KubeError) -> bool:
    return isinstance(exc, Unreachable) or (isinstance(exc, ApiError) and (exc.code >= 500 or exc.code == 429))


def _name(key: Key) -> str:
    return f"{key[0]} {key[1]}/{key[2]}" if key[1] else f"{key[0]} {key[2]}"


def _rv(obj: Obj | None) -> str | None:
    return None if obj is None else (obj.get("metadata") or {}).get("resourceVersion")


# ---- the writer


class StatusSync:
    """Writes the desired statuses while leading; see the module rules."""

    ATTEMPTS = 5  # writes of one object per pass when each meets a 409
    BACKOFF = 0.1  # seconds; doubles per failure, jittered up to +50 %
    MAX_BACKOFF = 10.0

    def __init__(
        self,
        client: KubeClient,
        *,
        controller_name: str,
        live: LiveFn,
        resources: Mapping[str, Resource],
        addresses: Callable[[], list[dict[str, str]]] = list,
    ) -> None:
        self.client = client
        self.controller_name = controller_name
        self.live = live
        self.resources = dict(resources)
        self.addresses = addresses
        self.writes = 0
        self.conflicts = 0
        self.errors = 0
        self.last_error: str | None = None
        self.rng = random.Random()
        self._desired: dict[Key, Desired] = {}
        self._leading = False
        self._wake = asyncio.Event()
        self._pass: asyncio.Task[None] | None = None
        self._fresher: dict[Key, tuple[str | None, Obj]] = {}

    @property
    def leading(self) -> bool:
        return self._leading

    @property
    def idle(self) -> bool:
        """No pass running or pending (every update so far has been handled)."""
        return self._pass is None and not self._wake.is_set()

    def stats(self) -> dict[str, Any]:
        """The counters, for ``/status``."""
        return {
            "leading": self._leading,
            "writes": self.writes,
            "conflicts": self.conflicts,
            "errors": self.errors,
            "lastError": self.last_error,
        }

    def update(self, status_list: dict[str, Any], rejected: Sequence[Rejected] = ()) -> None:
        """Replace the desired state (``list_view`` output plus refused objects); returns at once."""
        self._desired = desired_state(status_list, rejected, self.controller_name, self.live)
        self._wake.set()

    def set_leading(self, leading: bool) -> None:
        """True: a full pass now, then one per update; False: stop writing at once."""
        if leading == self._leading:
            return
        self._leading = leading
        self._fresher.clear()
        if leading:
            self._wake.set()
        elif self._pass is not None:
            self._pass.cancel()

    async def run(self) -> None:
        """The one writer task, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._leading:
                continue
            self._pass = writing = asyncio.create_task(self._write_all())
            try:
                await writing
            except asyncio.CancelledError:
                writing.cancel()
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
            except Exception as exc:  # a bug must not end the writer: the next update tries again
                log.exception("kubernetes status: pass failed")
                self._failed(f"status pass failed: {exc!r}")
            finally:
                self._pass = None

    async def _write_all(self) -> None:
        """Passes until one completes; a transient failure restarts the pass after a backoff."""
        failures = 0
        while True:
            try:
                await self._one_pass()
                return
            except KubeError as exc:
                self._failed(f"status pass: {exc}")
                await asyncio.sleep(self._backoff(failures, exc))
                failures += 1

    async def _one_pass(self) -> None:
        addresses = self.addresses()
        for key in sorted(self._desired, key=_order):
            await self._sync(key, addresses)

    async def _sync(self, key: Key, addresses: list[dict[str, str]]) -> None:
        """Write one object until it is settled, gone, refused, or out of attempts."""
        obj = self._live(key)
        for attempt in range(self.ATTEMPTS):
            body = self._body(key, obj, addresses)
            if body is None:
                return
            try:
                result = await self.client.replace_status(self.resources[key[0]], body)
            except Conflict:
                self.conflicts += 1
                await asyncio.sleep(self._backoff(attempt))
                obj = await self._reread(key)
                continue
            except NotFound:
                return
            except KubeError as exc:
                if _transient(exc):
                    raise
                self._failed(f"{_name(key)}: {exc}")
                return
            self.writes += 1
            self._remember(key, result)
            return
        self._failed(f"{_name(key)}: still conflicting after {self.ATTEMPTS} attempts")

    def _body(self, key: Key, obj: Obj | None, addresses: list[dict[str, str]]) -> Obj | None:
        """The object to PUT, or None when there is nothing to write."""
        wanted = self._desired.get(key)
        resource = self.resources.get(key[0])
        if wanted is None or obj is None or resource is None:
            return None
        live_status = obj.get("status") or {}
        if behind(key[0], wanted, live_status, self.controller_name):
            return None
        status = merged_status(key[0], wanted, live_status, self.controller_name, addresses, utc_now())
        if status == live_status:
            return None
        self._record_cap(key, wanted, status)
        return {**obj, "apiVersion": resource.api_version, "kind": resource.kind, "status": status}

    def _record_cap(self, key: Key, wanted: Desired, status: Obj) -> None:
        """Ours left out of a policy's capped ``ancestors`` list are recorded, once per write."""
        if key[0] != "BackendTLSPolicy":
            return
        written = sum(1 for a in status.get("ancestors") or [] if a.get("controllerName") == self.controller_name)
        left_out = len(wanted.status["ancestors"]) - written
        if left_out > 0:
            self._failed(f"{_name(key)}: {left_out} ancestor entries of ours left out (at most {MAX_ANCESTORS})")

    def _live(self, key: Key) -> Obj | None:
        """The cached object, or what we last wrote or read while the cache still shows an older version."""
        cached = self.live(*key)
        if key in self._fresher:
            stale_rv, newer = self._fresher[key]
            if cached is not None and _rv(cached) == stale_rv:
                return newer
            del self._fresher[key]
        return cached

    def _remember(self, key: Key, newer: Obj) -> None:
        self._fresher[key] = (_rv(self.live(*key)), newer)

    async def _reread(self, key: Key) -> Obj | None:
        resource = self.resources[key[0]]
        try:
            obj = await self.client.get(resource, key[2], key[1] or None)
        except NotFound:
            return None
        except KubeError as exc:
            if _transient(exc):
                raise
            self._failed(f"{_name(key)}: {exc}")
            return None
        self._remember(key, obj)
        return obj

    def _backoff(self, failures: int, exc: KubeError | None = None) -> float:
        delay = min(self.MAX_BACKOFF, self.BACKOFF * 2.0 ** min(failures, 30)) * (1 + self.rng.random() / 2)
        retry_after = exc.retry_after if isinstance(exc, ApiError) else None
        return max(delay, retry_after or 0.0)

    def _failed(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        log.warning("kubernetes status: %s", message)
