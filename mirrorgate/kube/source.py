"""The Kubernetes configuration source: reflector caches of the API server -> whole configurations.

``KubeSource`` implements ``serve.source.ConfigSource`` (``load`` / ``watch``) for any result
type ``T``: what a cache becomes (decode, admission, translate) is the ``build`` function the
serving side hands in, since this package never imports the serving packages.

Rules:
1. One ``Reflector`` per kind: GatewayClass, Gateway, HTTPRoute, ReferenceGrant (``v1``, else
   ``v1beta1``, by discovery; neither served: no grants, one warning), BackendTLSPolicy (``v1``
   when discovery lists it; else none, one note), Service, EndpointSlice, Namespace, Secret
   (HTTPS listeners' certificateRefs), ConfigMap (BackendTLSPolicy CA bundles) and MirrorPolicy
   (``mirrorgate.dev/v1alpha1`` when discovery lists it, i.e. its CRD is installed; else none, one
   note), and GatewayConfig the same way.
   ``watch_namespaces`` limits the namespaced kinds; GatewayClass and Namespace are always read
   cluster-wide. Secret and ConfigMap contents are never logged (only their counts).
2. A cache change that can change the configuration pokes a debouncer (``QUIET`` seconds without
   changes, ``MAX_DELAY`` at most after the first) that calls ``changed()`` once. A change to
   ``status`` alone (our own status writes, the load balancer's) or to ``resourceVersion`` is
   not one, except the ``status`` of the ``--publish-service`` Service (Gateway addresses).
3. Until every reflector has synced, ``load()`` returns one fixed "unsynced" result (built from no
   objects) without reading the caches, and ``not_ready`` says which watches are missing and the
   last error; it stays unready until a result built after the sync is the one served. Once
   synced, an API outage keeps the last good configuration serving (reflectors retry forever)
   and only ``/status`` and the metrics say so.
4. ``load()`` runs in a thread; the caches belong to the loop, so their objects are copied on the
   loop (objects are replaced, never mutated, so a shallow copy is a consistent view).
5. Status: every result's statuses go to the status writer at once; the writer writes only
   while this replica leads (Lease ``LeaderElector``, or always with ``leader_elect=False``).
   Every replica serves traffic whether it leads or not.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mirrorgate.kube.client import (
    ENDPOINT_SLICES,
    GATEWAY_API,
    GATEWAY_CLASSES,
    GATEWAYS,
    HTTP_ROUTES,
    NAMESPACES,
    SERVICES,
    KubeClient,
    KubeError,
    Resource,
)
from mirrorgate.kube.kubeconfig import Connection, KubeconfigError
from mirrorgate.kube.leader import LeaderElector, LeaseTimings
from mirrorgate.kube.reflector import Reflector, ReflectorHealth

log = logging.getLogger("mirrorgate.kube")

T = TypeVar("T")
QUIET = 0.1  # seconds without a change before a reload is asked for
MAX_DELAY = 1.0  # seconds after the first change at most
RETRY = (0.2, 10.0)  # connect / discovery backoff, first and longest
COPY_TIMEOUT = 30.0  # seconds a load waits for the loop to copy the caches (a loop shutting down never does)
SECRETS = Resource("", "v1", "secrets", "Secret", namespaced=True)
CONFIG_MAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
BACKEND_TLS_POLICIES = Resource(GATEWAY_API, "v1", "backendtlspolicies", "BackendTLSPolicy", namespaced=True)
MIRROR_POLICIES = Resource("mirrorgate.dev", "v1alpha1", "mirrorpolicies", "MirrorPolicy", namespaced=True)
GATEWAY_CONFIGS = Resource("mirrorgate.dev", "v1alpha1", "gatewayconfigs", "GatewayConfig", namespaced=True)
FIXED = (GATEWAY_CLASSES, GATEWAYS, HTTP_ROUTES, SERVICES, ENDPOINT_SLICES, NAMESPACES, SECRETS, CONFIG_MAPS)
REFERENCE_GRANT = "ReferenceGrant"
BACKEND_TLS_POLICY = "BackendTLSPolicy"
MIRROR_POLICY = "MirrorPolicy"
GATEWAY_CONFIG = "GatewayConfig"
# Kinds read only when the API server serves them (their CRD is installed), and what their absence means.
OPTIONAL = {
    BACKEND_TLS_POLICY: (BACKEND_TLS_POLICIES, "backends are reached in plain HTTP"),
    MIRROR_POLICY: (MIRROR_POLICIES, "ExtensionRef filters naming a MirrorPolicy answer 500"),
    GATEWAY_CONFIG: (GATEWAY_CONFIGS, "a GatewayClass whose parametersRef names one is InvalidParameters"),
}
STATUS_KINDS = ("GatewayClass", "Gateway", "HTTPRoute", "BackendTLSPolicy", "MirrorPolicy")


class Built(NamedTuple, Generic[T]):
    """What ``build`` makes of the caches: the result, its status List, the refused objects."""

    result: T
    status_list: dict[str, Any]
    refused: Sequence[Any]


class StatusWriter(Protocol):
    """The leader's status writer (``kube.status.StatusSync``)."""

    def update(self, status_list: dict[str, Any], rejected: Sequence[Any] = ()) -> None: ...

    def set_leading(self, leading: bool) -> None: ...

    async def run(self) -> None: ...


# (client, controller name, live lookup, resources, addresses) -> a writer
WriterFactory = Callable[..., StatusWriter]


@dataclass(frozen=True)
class KubeSettings:
    """What ``run --kubernetes`` asked for."""

    controller_name: str
    watch_namespaces: tuple[str, ...] = ()
    leader_elect: bool = True
    lease_name: str = "mirrorgate-leader"
    lease_namespace: str = "default"
    publish_service: tuple[str, str] | None = None  # (namespace, name)
    identity: str | None = None  # the Lease holder identity (default: $POD_NAME plus a random suffix)
    lease_timings: LeaseTimings | None = None  # None: client-go's 15 s / 10 s / 2 s


@dataclass
class _Kind:
    """One watched kind: its reflector (None until discovery chose its resource)."""

    name: str
    resource: Resource | None = None
    reflector: Reflector | None = None
    fingerprints: dict[str, Any] = field(default_factory=dict)


class Debouncer:
    """Calls ``fire()`` once per burst of ``poke()``: ``quiet`` s after the last, ``longest`` s at most."""

    def __init__(self, fire: Callable[[], None], quiet: float = QUIET, longest: float = MAX_DELAY) -> None:
        self.fire = fire
        self.quiet = quiet
        self.longest = longest
        self._poked = asyncio.Event()

    def poke(self) -> None:
        self._poked.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._poked.wait()
            deadline = loop.time() + self.longest
            while True:
                self._poked.clear()
                left = deadline - loop.time()
                try:
                    await asyncio.wait_for(self._poked.wait(), max(0.0, min(self.quiet, left)))
                except TimeoutError:
                    break
                if loop.time() >= deadline:
                    break
            self._poked.clear()
            self.fire()


def fingerprint(obj: dict[str, Any], keep_status: bool = False) -> dict[str, Any]:
    """What of ``obj`` can change a configuration (rule 2)."""
    out = {k: v for k, v in obj.items() if k != "status" or keep_status}
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        out["metadata"] = {k: v for k, v in meta.items() if k not in ("resourceVersion", "managedFields")}
    return out


class KubeSource(Generic[T]):
    """A ``ConfigSource`` over the API server's objects (rules 1-5)."""

    def __init__(
        self,
        conn: Connection,
        settings: KubeSettings,
        build: Callable[[Mapping[str, list[dict[str, Any]]]], Built[T]],
        *,
        writer_factory: WriterFactory | None = None,
    ) -> None:
        self.conn = conn
        self.settings = settings
        self._build = build
        self._writer_factory = writer_factory
        self.kinds = {r.kind: _Kind(r.kind, r) for r in FIXED}
        self.kinds[REFERENCE_GRANT] = _Kind(REFERENCE_GRANT)
        for name in OPTIONAL:
            self.kinds[name] = _Kind(name)
        self.unsynced: T = build({}).result
        self.synced = False
        self.leading = not settings.leader_elect
        self.elector: LeaderElector | None = None
        self.writer: StatusWriter | None = None
        self.last_error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._debouncer: Debouncer | None = None
        self._publish: Reflector | None = None

    # --- ConfigSource ---------------------------------------------------------------------------------

    def load(self) -> T:
        if not self.synced:
            return self.unsynced
        built = self._build(self._objects())
        self._hand_to_writer(built)
        return built.result

    async def watch(self, changed: Callable[..., None], stop: asyncio.Event) -> None:
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        self._debouncer = Debouncer(lambda: changed())
        client = await self._connected(stop)
        if client is None:
            return
        try:
            async with asyncio.TaskGroup() as group:
                stopper = group.create_task(stop.wait())
                group.create_task(self._debouncer.run())
                for kind in self.kinds.values():
                    if kind.resource is not None:
                        self._start(group, client, kind)
                group.create_task(self._discover_grants(group, client))
                for name in OPTIONAL:
                    group.create_task(self._discover_optional(group, client, name))
                group.create_task(self._wait_synced(changed))
                self._start_status(group, client)
                await stopper
                raise _Stopped
        except* _Stopped:
            pass
        finally:
            await client.close()

    # --- readiness, /status, metrics ------------------------------------------------------------------

    def not_ready(self, current: T) -> str | None:
        """Why this replica must not be ready yet (rule 3), or None."""
        if not self.synced:
            waiting = [k.name for k in self.kinds.values() if k.reflector is None or not k.reflector.synced.is_set()]
            errors = [
                f"{k.name}: {k.reflector.health.last_error}"
                for k in self.kinds.values()
                if k.reflector is not None and k.reflector.health.last_error and not k.reflector.synced.is_set()
            ]
            if self.last_error:
                errors.insert(0, self.last_error)
            why = f"watches not synced: {', '.join(waiting)}"
            return f"waiting for the Kubernetes API: {why}" + (f"; last error: {errors[-1]}" if errors else "")
        if current is self.unsynced:
            return "waiting for the Kubernetes API: the first configuration is not served yet"
        return None

    def status_section(self) -> dict[str, Any]:
        """The ``kubernetes`` section of ``/status``."""
        resources = {}
        for kind in self.kinds.values():
            r = kind.reflector
            resources[kind.name] = {
                "resource": kind.resource.qualified if kind.resource else None,
                "connected": bool(r and r.health.connected),
                "synced": bool(r and r.synced.is_set()),
                "lastError": r.health.last_error if r is not None else self.last_error,
            }
        return {
            "server": self.conn.server,
            "synced": self.synced,
            "resources": resources,
            "leader": {"identity": self.elector.identity if self.elector else None, "leading": self.leading},
        }

    def collector(self) -> KubeMetrics:
        return KubeMetrics(self)

    # --- internals --------------------------------------------------------------------------------

    async def _connected(self, stop: asyncio.Event) -> KubeClient | None:
        delay = RETRY[0]
        while not stop.is_set():
            try:
                return await KubeClient.connect(self.conn)
            except (KubeError, KubeconfigError) as exc:
                self._error(f"cannot connect to {self.conn.server}: {exc}")
            await _sleep_or_stop(stop, delay)
            delay = min(RETRY[1], delay * 2)
        return None

    def _error(self, message: str) -> None:
        self.last_error = message
        log.warning("kubernetes: %s", message)

    def _start(self, group: asyncio.TaskGroup, client: KubeClient, kind: _Kind) -> None:
        assert kind.resource is not None
        namespaces = self.settings.watch_namespaces or None
        kind.reflector = Reflector(client, kind.resource, namespaces=namespaces, on_event=self._hook(kind))
        group.create_task(kind.reflector.run())

    def _hook(self, kind: _Kind) -> Callable[[str, dict[str, Any]], None]:
        return lambda type_, obj: self._on_event(kind, type_, obj)

    async def _discover_grants(self, group: asyncio.TaskGroup, client: KubeClient) -> None:
        delay = RETRY[0]
        while True:
            try:
                resource = await client.reference_grants()
                break
            except (KubeError, KubeconfigError) as exc:
                self._error(f"discovering ReferenceGrant: {exc}")
            await asyncio.sleep(delay)
            delay = min(RETRY[1], delay * 2)
        kind = self.kinds[REFERENCE_GRANT]
        if resource is None:
            log.warning(
                "kubernetes: the API server serves no ReferenceGrant (v1 or v1beta1): no cross-namespace grants"
            )
            kind.reflector = _Empty()
            return
        kind.resource = resource
        self._start(group, client, kind)

    async def _discover_optional(self, group: asyncio.TaskGroup, client: KubeClient, name: str) -> None:
        """BackendTLSPolicy, MirrorPolicy and GatewayConfig are read only when the API server serves
        them (their CRD is installed)."""
        resource, absent = OPTIONAL[name]
        delay = RETRY[0]
        while True:
            try:
                served = await client.serves(resource)
                break
            except (KubeError, KubeconfigError) as exc:
                self._error(f"discovering {name}: {exc}")
            await asyncio.sleep(delay)
            delay = min(RETRY[1], delay * 2)
        kind = self.kinds[name]
        if not served:
            log.info("kubernetes: the API server serves no %s (%s): %s", name, resource.version, absent)
            kind.reflector = _Empty()
            return
        kind.resource = resource
        self._start(group, client, kind)

    async def _wait_synced(self, changed: Callable[..., None]) -> None:
        while True:
            missing = [k for k in self.kinds.values() if k.reflector is None or not k.reflector.synced.is_set()]
            if not missing:
                break
            if missing[0].reflector is None:
                await asyncio.sleep(0.05)
            else:
                await missing[0].reflector.synced.wait()
        if self._publish is not None:
            await self._publish.synced.wait()
        self.synced = True
        self.last_error = None
        log.info("kubernetes: every watch synced (%s)", self._counts())
        changed()

    def _counts(self) -> str:
        return ", ".join(f"{len(k.reflector.cache)} {k.name}" for k in self.kinds.values() if k.reflector is not None)

    def _on_event(self, kind: _Kind, type_: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = f"{meta.get('namespace') or ''}/{meta.get('name')}"
        if type_ == "DELETED":
            kind.fingerprints.pop(key, None)
        else:
            new = fingerprint(obj, keep_status=self._is_published(kind.name, meta))
            if kind.fingerprints.get(key) == new:
                return
            kind.fingerprints[key] = new
        if self.synced and self._debouncer is not None:
            self._debouncer.poke()

    def _is_published(self, kind: str, meta: dict[str, Any]) -> bool:
        pub = self.settings.publish_service
        return kind == "Service" and pub is not None and (meta.get("namespace"), meta.get("name")) == pub

    def _objects(self) -> dict[str, list[dict[str, Any]]]:
        """A copy of every cache, taken on the loop (rule 4)."""
        if self._loop is None or threading.get_ident() == self._loop_thread:
            return self._copy()
        return asyncio.run_coroutine_threadsafe(self._copy_async(), self._loop).result(COPY_TIMEOUT)

    async def _copy_async(self) -> dict[str, list[dict[str, Any]]]:
        return self._copy()

    def _copy(self) -> dict[str, list[dict[str, Any]]]:
        """Each cache's objects, with the ``apiVersion`` and ``kind`` list items may lack."""
        out: dict[str, list[dict[str, Any]]] = {}
        for k in self.kinds.values():
            if k.reflector is not None and k.resource is not None:
                head = {"apiVersion": k.resource.api_version, "kind": k.resource.kind}
                out[k.name] = [{**o, **head} for o in k.reflector.cache.values()]
        return out

    # --- leader and status ----------------------------------------------------------------------------

    def _start_status(self, group: asyncio.TaskGroup, client: KubeClient) -> None:
        pub = self.settings.publish_service
        if pub is not None:
            self._publish = self._publish_reflector(client, pub)
            if self._publish is not self.kinds["Service"].reflector:
                group.create_task(self._publish.run())
        if self._writer_factory is not None:
            self.writer = self._writer_factory(
                client,
                controller_name=self.settings.controller_name,
                live=self._live,
                resources={r.kind: r for r in (*FIXED, *(r for r, _ in OPTIONAL.values())) if r.kind in STATUS_KINDS},
                addresses=self.addresses,
            )
            group.create_task(self.writer.run())
            self.writer.set_leading(self.leading)
        if self.settings.leader_elect:
            self.elector = LeaderElector(
                client,
                self.settings.lease_name,
                self.settings.lease_namespace,
                identity=self.settings.identity,
                timings=self.settings.lease_timings,
                on_started=lambda: self._set_leading(True),
                on_stopped=lambda: self._set_leading(False),
            )
            group.create_task(self.elector.run())

    def _publish_reflector(self, client: KubeClient, pub: tuple[str, str]) -> Reflector:
        services = self.kinds["Service"].reflector
        watched = self.settings.watch_namespaces
        if services is not None and (not watched or pub[0] in watched):
            return services
        return Reflector(client, SERVICES, namespaces=[pub[0]], on_event=lambda t, o: self._on_publish(o))

    def _on_publish(self, obj: dict[str, Any]) -> None:
        if self._is_published("Service", obj.get("metadata") or {}) and self.synced and self._debouncer:
            self._debouncer.poke()

    def addresses(self) -> list[dict[str, str]]:
        """``status.loadBalancer.ingress`` of ``--publish-service`` as Gateway ``status.addresses``."""
        pub = self.settings.publish_service
        if pub is None or self._publish is None:
            return []
        svc = self._publish.cache.get(f"{pub[0]}/{pub[1]}") or {}
        out = []
        for ingress in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            if ingress.get("ip"):
                out.append({"type": "IPAddress", "value": str(ingress["ip"])})
            elif ingress.get("hostname"):
                out.append({"type": "Hostname", "value": str(ingress["hostname"])})
        return out

    def _live(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        k = self.kinds.get(kind)
        if k is None or k.reflector is None:
            return None
        return k.reflector.cache.get(f"{namespace}/{name}" if namespace else name)

    def _set_leading(self, leading: bool) -> None:
        self.leading = leading
        log.info("kubernetes: %s", "leading: this replica writes status" if leading else "not leading")
        if self.writer is not None:
            self.writer.set_leading(leading)

    def _hand_to_writer(self, built: Built[T]) -> None:
        if self.writer is None or self._loop is None:
            return
        writer = self.writer
        self._loop.call_soon_threadsafe(writer.update, built.status_list, built.refused)


class _Stopped(Exception):
    """Ends the watch task group when ``stop`` is set."""


class _Empty(Reflector):
    """A kind the API server does not serve: synced at once, never any object."""

    def __init__(self) -> None:  # no client: nothing is ever listed
        self.cache = {}
        self.synced = asyncio.Event()
        self.synced.set()
        self.health = ReflectorHealth(connected=True)


async def _sleep_or_stop(stop: asyncio.Event, delay: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), delay)
    except TimeoutError:
        pass


class KubeMetrics(Collector):
    """``mirrorgate_kube_watch_connected{resource}``, ``mirrorgate_kube_synced``, ``mirrorgate_leader``."""

    def __init__(self, source: KubeSource[Any]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        connected = GaugeMetricFamily(
            "mirrorgate_kube_watch_connected", "1 while the watch of a resource is connected", labels=["resource"]
        )
        for kind in self.source.kinds.values():
            r = kind.reflector
            label = kind.resource.qualified if kind.resource else kind.name
            connected.add_metric([label], 1.0 if r is not None and r.health.connected else 0.0)
        yield connected
        yield GaugeMetricFamily("mirrorgate_kube_synced", "1 once every watch synced", value=float(self.source.synced))
        yield GaugeMetricFamily("mirrorgate_leader", "1 while this replica leads", value=float(self.source.leading))
