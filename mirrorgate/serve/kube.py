"""``run --kubernetes``: the API server's objects -> the same decode, admission and translate as ``-f``.

Rules:
1. The caches of ``kube.source.KubeSource`` go through ``providers.objects.build_snapshot`` (the
   file path's per-document steps, with ``kubernetes`` where the file name stands) and
   ``translate()`` with ``TranslateOptions(bind, controller_name, missing_class_is_ours=False,
   mesh_parents_on_bind=True)``: a Gateway whose class the cluster does not have is not ours, and
   a Service is a mesh listener only when a route names it as parent, bound on ``--bind`` (cluster
   IPs belong to kube-proxy, not to the pod).
2. An object admission refuses is left out of the snapshot, logged once per distinct message as a
   warning naming kind, namespace and name, and handed to the status writer as a refusal
   (``Accepted=False`` with the message) when it is ours: a GatewayClass with our
   ``controllerName``, a Gateway of such a class, a route with a parent Gateway of such a class, a
   MirrorPolicy (mirrorgate's own kind: always ours).
3. A GatewayConfig admission refuses is handed to translate as refused
   (``TranslateOptions.refused_configs``): a class of ours naming it is ``InvalidParameters``
   with the admission message, and its Gateways are served with the last valid GatewayConfig
   this source loaded (``serve/source.py`` rule 5), else the defaults.
4. The status writer is ``kube.status.StatusSync``: the Lease holder writes the statuses of the
   objects that are ours (``docs/kubernetes.md``, "Status").
5. The Lease timings are client-go's (15 s lease, 10 s renew deadline, 2 s retry period) unless
   the environment variable ``MIRRORGATE_LEASE_TIMINGS`` is ``DURATION,RENEW,RETRY`` (seconds):
   a hidden knob, read here only, so that tests can run leader takeovers in seconds. A value that
   is not three numbers satisfying ``LeaseTimings``' rules is ignored with a warning.
"""

import logging
import os
from collections.abc import Mapping
from typing import Any

import msgspec

from mirrorgate.kube.kubeconfig import resolve
from mirrorgate.kube.leader import LeaseTimings
from mirrorgate.kube.source import Built, KubeSettings, KubeSource
from mirrorgate.kube.status import Rejected, StatusSync
from mirrorgate.model.gwconfig import GatewayConfig
from mirrorgate.providers.objects import DecodeCache, ObjectsResult, Refused, build_snapshot
from mirrorgate.serve.config import Loaded, RunConfig
from mirrorgate.translate import TranslateOptions

log = logging.getLogger("mirrorgate")

ORIGIN = "kubernetes"
GATEWAY_GROUP = "gateway.networking.k8s.io"
LEASE_TIMINGS_ENV = "MIRRORGATE_LEASE_TIMINGS"


class Builder:
    """Caches -> ``Built[Loaded]`` (rules 1-2); remembers which refusals it already logged."""

    def __init__(self, options: TranslateOptions) -> None:
        self.options = options
        self._logged: set[str] = set()
        self._cache = DecodeCache()
        self.last_config: GatewayConfig | None = None  # serve/source.py rule 5

    def __call__(self, objects: Mapping[str, list[dict[str, Any]]]) -> Built[Loaded]:
        bodies = [o for kind in sorted(objects) for o in objects[kind]]
        result = build_snapshot(bodies, ORIGIN, self._cache)
        configs = {
            f"{r.key.namespace}/{r.key.name}": r.message for r in result.refused if r.key.kind == "GatewayConfig"
        }
        options = msgspec.structs.replace(self.options, refused_configs=configs, last_config=self.last_config)
        loaded = Loaded.of(result.snapshot, options)
        self.last_config = loaded.valid_config(self.last_config)
        self._log(result)
        refused = [_refusal(r) for r in result.refused if _ours(r, objects, self.options.controller_name)]
        return Built(loaded, loaded.status, refused)

    def _log(self, result: ObjectsResult) -> None:
        lines = {str(e) for r in result.refused for e in r.errors} | set(result.warnings)
        for line in sorted(lines - self._logged):
            log.warning("refused: %s", line)
        self._logged = lines


def _refusal(r: Refused) -> Rejected:
    return Rejected(r.key.kind, r.key.namespace, r.key.name, r.generation, r.message)


def _ours(r: Refused, objects: Mapping[str, list[dict[str, Any]]], controller: str) -> bool:
    """Whether a refused object is one whose status we write (rule 2)."""
    classes = {_name(c) for c in objects.get("GatewayClass", ()) if _spec(c).get("controllerName") == controller}
    body = next((o for o in objects.get(r.key.kind, ()) if _identity(o) == (r.key.namespace, r.key.name)), {})
    if r.key.kind == "MirrorPolicy":
        return True
    if r.key.kind == "GatewayClass":
        return _spec(body).get("controllerName") == controller
    if r.key.kind == "Gateway":
        return _spec(body).get("gatewayClassName") in classes
    if r.key.kind != "HTTPRoute":
        return False
    gateways = {_identity(g) for g in objects.get("Gateway", ()) if _spec(g).get("gatewayClassName") in classes}
    return any(_parent(ref, r.key.namespace) in gateways for ref in _spec(body).get("parentRefs") or ())


def _parent(ref: Any, namespace: str) -> tuple[str, str] | None:
    if not isinstance(ref, dict) or ref.get("kind", "Gateway") != "Gateway":
        return None
    if ref.get("group", GATEWAY_GROUP) != GATEWAY_GROUP:
        return None
    return str(ref.get("namespace") or namespace), str(ref.get("name"))


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _name(obj: dict[str, Any]) -> str:
    return _identity(obj)[1]


def _identity(obj: dict[str, Any]) -> tuple[str, str]:
    raw = obj.get("metadata")
    meta: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def kube_source(config: RunConfig) -> KubeSource[Loaded]:
    """The source of ``run --kubernetes``; raises ``KubeconfigError`` for a bad kubeconfig."""
    assert config.kube is not None
    k = config.kube
    conn = resolve(k.kubeconfig, k.context)
    settings = KubeSettings(
        controller_name=k.controller_name,
        watch_namespaces=k.watch_namespaces,
        leader_elect=k.leader_elect,
        lease_name=k.lease_name,
        lease_namespace=k.lease_namespace,
        publish_service=k.publish_service,
        lease_timings=lease_timings(os.environ.get(LEASE_TIMINGS_ENV)),
    )
    options = kube_options(config.bind, k.controller_name)
    return KubeSource(conn, settings, Builder(options), writer_factory=StatusSync)


def lease_timings(value: str | None) -> LeaseTimings | None:
    """``MIRRORGATE_LEASE_TIMINGS`` as ``LeaseTimings`` (rule 4); None: the defaults."""
    if not value:
        return None
    try:
        duration, renew, retry = (float(part) for part in value.split(","))
        return LeaseTimings(duration, renew, retry)
    except ValueError as exc:
        log.warning("%s=%r ignored (want DURATION,RENEW,RETRY in seconds): %s", LEASE_TIMINGS_ENV, value, exc)
        return None


def kube_options(bind: str, controller_name: str) -> TranslateOptions:
    """How the cluster's objects are translated (rule 1)."""
    return TranslateOptions(
        bind=bind, controller_name=controller_name, missing_class_is_ours=False, mesh_parents_on_bind=True
    )
