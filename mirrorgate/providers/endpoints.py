"""Endpoints given on the command line: ``SERVICE[.NAMESPACE][:PORT]=ADDRESS:PORT`` -> EndpointSlices.

In a cluster the EndpointSlice controller tells a gateway where a Service's pods are; in file mode
nothing does, so the files must carry EndpointSlices, or the user names the endpoints with this
syntax (meant for a repeatable ``--endpoints`` flag).

Rules:
1. ``SERVICE`` is a Service name (a DNS-1035 label); ``.NAMESPACE`` defaults to ``default``.
2. ``:PORT`` picks one port of the Service, by number (``port``) or by name; without it the
   address stands for every port of the Service.
3. ``ADDRESS:PORT`` is where the backend listens (what the Service port's ``targetPort`` resolves
   to in a cluster): an IPv4 literal, or an IPv6 literal in brackets (``[::1]:9000``); not the
   unspecified or a multicast address. Loopback is allowed, as in mirrorgate's EndpointSlices.
4. A malformed value raises ``EndpointsError`` naming it; it is also an
   ``argparse.ArgumentTypeError``, so ``parse_endpoint`` is usable as an argparse ``type=``.
5. The values become ``discovery.k8s.io/v1`` EndpointSlices labelled
   ``kubernetes.io/service-name``, one per Service port, address family and listening port,
   whose port is named like the Service port (the translator matches slice ports by the Service
   port's name), all endpoints ready. They are added to the snapshot: EndpointSlices from the
   files for the same Service still count.
6. A value naming a Service, or a port of it, that the snapshot lacks is an error naming it; an
   ExternalName Service (which has no endpoints) too. All such problems are reported at once.
"""

import argparse
import ipaddress
import re
from collections.abc import Iterable, Sequence

import msgspec

from mirrorgate.model.core import Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Service, ServicePort
from mirrorgate.model.meta import ObjectMeta
from mirrorgate.model.snapshot import Snapshot

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpoints-flag.mirrorgate.dev"  # a label value: no "/" (like "endpointslice-controller.k8s.io")

_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_PORT_NAME = _DNS1123


class EndpointsError(argparse.ArgumentTypeError, ValueError):
    """Bad endpoints: each problem names the value it is about."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class EndpointSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One parsed ``SERVICE[.NAMESPACE][:PORT]=ADDRESS:PORT``."""

    service: str
    namespace: str = "default"
    port: int | str | None = None  # the Service port's number or name; None: every port
    address: str  # an IP literal in its canonical form
    target_port: int

    @property
    def family(self) -> str:
        """The EndpointSlice ``addressType``: ``IPv4`` or ``IPv6``."""
        return "IPv6" if ":" in self.address else "IPv4"

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        host = f"[{self.address}]" if self.family == "IPv6" else self.address
        return f"{self.service}.{self.namespace}{port}={host}:{self.target_port}"


def parse_endpoint(text: str) -> EndpointSpec:
    """Parse ``SERVICE[.NAMESPACE][:PORT]=ADDRESS:PORT``; raise ``EndpointsError`` naming the bad part."""
    target, eq, backend = text.partition("=")
    if not eq:
        raise _bad(text, "expected SERVICE[.NAMESPACE][:PORT]=ADDRESS:PORT")
    ref, colon, port = target.partition(":")
    service, dot, namespace = ref.partition(".")
    _check(text, "Service name", service, _DNS1035)
    if dot:
        _check(text, "namespace", namespace, _DNS1123)
    address, target_port = _backend(text, backend)
    return EndpointSpec(
        service=service,
        namespace=namespace if dot else "default",
        port=_service_port(text, port) if colon else None,
        address=address,
        target_port=target_port,
    )


def endpoint_slices(snapshot: Snapshot, specs: Iterable[EndpointSpec]) -> tuple[EndpointSlice, ...]:
    """The EndpointSlices ``specs`` stand for; ``EndpointsError`` if a Service or port is missing."""
    groups: dict[tuple[str, str, str, int, int], tuple[ServicePort, set[str]]] = {}
    problems: list[str] = []
    for spec in specs:
        try:
            ports = _ports_of(snapshot, spec)
        except EndpointsError as exc:
            problems.extend(exc.problems)
            continue
        for sport in ports:
            key = (spec.namespace, spec.service, spec.family, sport.port, spec.target_port)
            groups.setdefault(key, (sport, set()))[1].add(spec.address)
    if problems:
        raise EndpointsError(problems)
    return tuple(_slice(*key, *groups[key]) for key in sorted(groups))


def with_endpoints(snapshot: Snapshot, specs: Iterable[EndpointSpec]) -> Snapshot:
    """``snapshot`` plus the EndpointSlices of ``specs`` (see ``endpoint_slices``)."""
    slices = endpoint_slices(snapshot, specs)
    return Snapshot.of([*snapshot.objects(), *slices]) if slices else snapshot


def _bad(text: str, why: str) -> EndpointsError:
    return EndpointsError([f"invalid endpoints {text!r}: {why}"])


def _check(text: str, what: str, value: str, pattern: re.Pattern[str]) -> None:
    if len(value) > 63 or not pattern.fullmatch(value):
        raise _bad(text, f"{what} {value!r} is not a DNS label (lower-case letters, digits, '-', at most 63)")


def _service_port(text: str, port: str) -> int | str:
    if port.isdigit():
        return _port_number(text, "Service port", port)
    _check(text, "Service port name", port, _PORT_NAME)
    return port


def _port_number(text: str, what: str, port: str) -> int:
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _bad(text, f"{what} {port!r} is not a number from 1 to 65535")
    return int(port)


def _backend(text: str, backend: str) -> tuple[str, int]:
    """``ADDRESS:PORT`` -> (canonical address, port)."""
    if backend.startswith("["):
        host, bracket, rest = backend[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise _bad(text, "expected [IPv6]:PORT after '='")
        port = rest[1:]
    else:
        host, colon, port = backend.rpartition(":")
        if not colon:
            raise _bad(text, "expected ADDRESS:PORT after '='")
        if ":" in host:
            raise _bad(text, f"IPv6 address {host!r} must be in brackets: [{host}]:{port}")
    return _address(text, host, bracket=backend.startswith("[")), _port_number(text, "port", port)


def _address(text: str, host: str, *, bracket: bool) -> str:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise _bad(text, f"{host!r} is not an IP address") from None
    if bracket and not isinstance(ip, ipaddress.IPv6Address):
        raise _bad(text, f"{host!r}: brackets are for IPv6 addresses")
    if isinstance(ip, ipaddress.IPv6Address) and (ip.scope_id or ip.ipv4_mapped):
        raise _bad(text, f"{host!r}: an endpoint address has no zone and is not IPv4-mapped")
    if ip.is_unspecified or ip.is_multicast:
        raise _bad(text, f"{host!r} is not a unicast address")
    return str(ip)


def _ports_of(snapshot: Snapshot, spec: EndpointSpec) -> tuple[ServicePort, ...]:
    """The Service ports ``spec`` stands for."""
    svc = _service(snapshot, spec)
    if spec.port is None:
        if not svc.spec.ports:
            raise EndpointsError([f"endpoints {str(spec)!r}: Service {_name(spec)} has no ports"])
        return svc.spec.ports
    matching = tuple(p for p in svc.spec.ports if spec.port in (p.port, p.name))
    if not matching:
        ports = ", ".join(f"{p.port} ({p.name})" if p.name else str(p.port) for p in svc.spec.ports) or "none"
        raise EndpointsError(
            [f"endpoints {str(spec)!r}: Service {_name(spec)} has no port {spec.port} (its ports: {ports})"]
        )
    return matching


def _service(snapshot: Snapshot, spec: EndpointSpec) -> Service:
    svc = next(
        (s for s in snapshot.services if (s.metadata.namespace, s.metadata.name) == (spec.namespace, spec.service)),
        None,
    )
    if svc is None:
        raise EndpointsError([f"endpoints {str(spec)!r}: Service {_name(spec)} is not defined in the files"])
    if svc.spec.type == "ExternalName":
        raise EndpointsError([f"endpoints {str(spec)!r}: Service {_name(spec)} is of type ExternalName"])
    return svc


def _name(spec: EndpointSpec) -> str:
    return f"{spec.namespace}/{spec.service}"


def _slice(
    namespace: str, service: str, family: str, port: int, target_port: int, sport: ServicePort, addresses: set[str]
) -> EndpointSlice:
    meta = ObjectMeta(
        name=f"{service}-mirrorgate-{port}-{target_port}-{family.lower()}",
        namespace=namespace,
        labels={SERVICE_NAME_LABEL: service, MANAGED_BY_LABEL: MANAGED_BY},
    )
    ready = EndpointConditions(ready=True)
    return EndpointSlice(
        api_version="discovery.k8s.io/v1",
        kind="EndpointSlice",
        metadata=meta,
        address_type=family,
        endpoints=tuple(Endpoint(addresses=(a,), conditions=ready) for a in sorted(addresses)),
        ports=(
            EndpointPort(
                name=sport.name or "", port=target_port, protocol=sport.protocol, app_protocol=sport.app_protocol
            ),
        ),
    )
