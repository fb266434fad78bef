"""A reflector: one resource kept in a local cache by list-then-watch, as client-go's reflector does.

Rules (the Kubernetes API concepts "Efficient detection of changes" and client-go's reflector):

- List (all pages), then watch from the list's ``resourceVersion`` with ``allowWatchBookmarks``
  and a ``timeoutSeconds`` drawn at random from a window (300-600 s by default) so that many
  watches do not end together.
- The resourceVersion of every event, BOOKMARK included, becomes the resume point. RVs are
  opaque strings: compared for equality only, never ordered.
- A stream the server ends cleanly is resumed from the last RV, without a relist.
- 410 Expired (on the watch request or as an ERROR event) means events were lost: relist,
  replace the cache and synthesize DELETED for every object that vanished meanwhile. Never jump
  to "now" without a list.
- Any other failure (connection refused, stalled stream, 5xx, 429, a credential plugin failing) waits a jittered backoff
  (``backoff_initial`` doubling to ``backoff_max``, or the server's Retry-After when longer), then
  watches again from the last RV, or relists when there is none yet.
- ``metadata.managedFields`` is stripped on ingest. ``on_change()`` runs after every cache
  change; ``on_event(type, obj)`` sees every change, synthesized DELETEDs included.
- A namespaced kind watched in a list of namespaces runs one list/watch per namespace; ``synced``
  is set once every one of them finished its first list.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mirrorgate.kube.client import ApiError, Expired, KubeClient, KubeError, Resource, object_key
from mirrorgate.kube.kubeconfig import KubeconfigError

log = logging.getLogger("mirrorgate.kube")

EventHook = Callable[[str, dict[str, Any]], None]


@dataclass
class ReflectorHealth:
    """What ``/status`` and metrics report about one reflector."""

    connected: bool = False
    last_error: str | None = None
    relists: int = 0
    watches: int = 0


def strip(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without ``metadata.managedFields`` (nobody here reads them)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


class Reflector:
    """Keeps ``cache`` (``namespace/name`` or ``name`` -> object) equal to the server's view."""

    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        *,
        namespaces: Sequence[str] | None = None,
        label_selector: str | None = None,
        on_change: Callable[[], None] | None = None,
        on_event: EventHook | None = None,
        watch_timeout: tuple[int, int] = (300, 600),
        inactivity_grace: float | None = None,
        backoff_initial: float = 0.2,
        backoff_max: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.scopes: list[str | None] = list(namespaces) if namespaces and resource.namespaced else [None]
        self.label_selector = label_selector
        self.on_change = on_change
        self.on_event = on_event
        self.watch_timeout = watch_timeout
        self.inactivity_grace = inactivity_grace
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.rng = rng or random.Random()
        self.cache: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.health = ReflectorHealth()
        self._pending = len(self.scopes)
        self._connected: set[str | None] = set()
        self._rv: dict[str | None, str | None] = {}

    async def run(self) -> None:
        """Reflect until cancelled."""
        async with asyncio.TaskGroup() as group:
            for scope in self.scopes:
                group.create_task(self._scope(scope), name=f"reflector {self.resource.qualified} {scope or '*'}")

    def objects(self) -> list[dict[str, Any]]:
        return list(self.cache.values())

    async def _scope(self, namespace: str | None) -> None:
        failures = 0
        while True:
            try:
                if self._rv.get(namespace) is None:
                    self._rv[namespace] = await self._relist(namespace)
                await self._watch(namespace)
                failures = 0
            except Expired as exc:
                self._record_error(f"{exc} (relisting)")
                self._rv[namespace] = None
            except (KubeError, KubeconfigError) as exc:
                self._set_connected(namespace, False)
                self._record_error(str(exc))
                await asyncio.sleep(self._backoff(failures, exc))
                failures += 1

    def _backoff(self, failures: int, exc: Exception) -> float:
        delay = min(self.backoff_max, self.backoff_initial * 2.0 ** min(failures, 30))
        delay *= 1 + self.rng.random()
        retry_after = exc.retry_after if isinstance(exc, ApiError) else None
        return max(delay, retry_after or 0.0)

    def _record_error(self, message: str) -> None:
        self.health.last_error = message
        log.warning("kubernetes %s: %s", self.resource.qualified, message)

    def _set_connected(self, namespace: str | None, up: bool) -> None:
        if up:
            self._connected.add(namespace)
        else:
            self._connected.discard(namespace)
        self.health.connected = len(self._connected) == len(self.scopes)

    def _owned(self, namespace: str | None) -> set[str]:
        if namespace is None:
            return set(self.cache)
        return {k for k, o in self.cache.items() if (o.get("metadata") or {}).get("namespace") == namespace}

    async def _relist(self, namespace: str | None) -> str:
        result = await self.client.list(self.resource, namespace, label_selector=self.label_selector)
        self.health.relists += 1
        fresh = {object_key(o): strip(o) for o in result.items}
        changed = False
        for key in sorted(self._owned(namespace) - set(fresh)):
            changed = True
            self._emit("DELETED", self.cache.pop(key))
        for key, obj in fresh.items():
            old = self.cache.get(key)
            if old is None or old != obj:
                changed = True
                self.cache[key] = obj
                self._emit("ADDED" if old is None else "MODIFIED", obj)
        self._first_list_done(namespace)
        if changed:
            self._changed()
        return result.resource_version

    def _first_list_done(self, namespace: str | None) -> None:
        if not self.synced.is_set():
            self._pending -= 1
            if self._pending <= 0:
                self.synced.set()

    async def _watch(self, namespace: str | None) -> None:
        """Watch from the last RV until the stream ends; every event's RV is kept as it arrives."""
        low, high = self.watch_timeout
        timeout = self.rng.randrange(low, high) if high > low else low
        grace = None if self.inactivity_grace is None else timeout + self.inactivity_grace
        self.health.watches += 1
        stream = await self.client.watch(
            self.resource,
            namespace,
            resource_version=str(self._rv[namespace]),
            timeout_seconds=timeout,
            label_selector=self.label_selector,
            inactivity_timeout=grace,
        )
        self._set_connected(namespace, True)
        try:
            async for kind, obj in stream:
                self._rv[namespace] = str((obj.get("metadata") or {}).get("resourceVersion") or self._rv[namespace])
                self._apply(kind, obj)
        finally:
            stream.close()
            self._set_connected(namespace, False)

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "BOOKMARK":
            return
        obj = strip(obj)
        key = object_key(obj)
        if kind == "DELETED":
            if self.cache.pop(key, None) is None:
                return
        elif kind in ("ADDED", "MODIFIED"):
            self.cache[key] = obj
        else:
            return
        self._emit(kind, obj)
        self._changed()

    def _emit(self, kind: str, obj: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(kind, obj)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
