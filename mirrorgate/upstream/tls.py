"""Pool keys for backends and mirrors with TLS (BackendTLSPolicy) or an ExternalName target.

Rules:
1. A pool key is ``(address, port)`` for a plain endpoint (an IP: never looked up), and
   ``(host, port, tls, external)`` otherwise: ``tls`` the shared ``ClientTls`` of the backend's
   settings (None: plain HTTP), ``external`` True when ``host`` is an ExternalName Service's
   name, resolved by the process's ``Resolver`` when a connection is dialled. A plain and a TLS
   connection to one address, or two policies with different settings, never share a
   connection; equal settings share one ``ClientTls`` (one ``SSLContext``, so sessions resume).
2. The CA of a policy is the PEM the table's ``trust`` holds under ``ca_digest`` (None: the
   system store). Settings are turned into a ``ClientTls`` once per distinct settings; the
   cache is process-wide and safe to use from the thread that compiles a table.
3. ``current_trust`` is the trust of the table being served (set by the data plane on apply):
   mirrors, whose IR carries only the digest, read it when they are sent.
"""

import threading
from collections.abc import Mapping

from mirrorgate.ir.table import BackendTLS, ExternalName, RoutingTable, UpstreamAddress
from mirrorgate.tls.client import BackendTls, ClientTls, ClientTlsCache, SubjectAltName
from mirrorgate.upstream.dns import Resolver

Key = tuple[str, int] | tuple[str, int, ClientTls | None, bool]

_cache = ClientTlsCache()
_lock = threading.Lock()
_by_ir: dict[tuple[BackendTLS, str | None], ClientTls] = {}
_trust: dict[str, str] = {}
_resolver: Resolver | None = None


def resolver() -> Resolver:
    """The process's one ``Resolver`` (ExternalName lookups share its cache)."""
    global _resolver
    if _resolver is None:
        _resolver = Resolver()
    return _resolver


def trust_of(table: RoutingTable) -> dict[str, str]:
    return {bundle.digest: bundle.ca_pem for bundle in table.trust}


def set_trust(table: RoutingTable) -> None:
    """The trust bundles of the table now served (rule 3)."""
    global _trust
    _trust = trust_of(table)


def current_trust() -> Mapping[str, str]:
    return _trust


def client_tls(tls: BackendTLS, trust: Mapping[str, str]) -> ClientTls:
    """The shared ``ClientTls`` for a policy's settings (rule 2)."""
    ca_pem = trust.get(tls.ca_digest) if tls.ca_digest is not None else None
    found = _by_ir.get((tls, ca_pem))
    if found is not None:
        return found
    sans = tuple(SubjectAltName("URI" if s.type == "URI" else "Hostname", s.value) for s in tls.subject_alt_names)
    with _lock:
        found = _by_ir[(tls, ca_pem)] = _cache.get(BackendTls(tls.hostname, ca_pem, sans))
        if len(_by_ir) > _cache.size:
            _by_ir.clear()
    return found


def keys_for(
    endpoints: tuple[UpstreamAddress, ...],
    tls: BackendTLS | None,
    external: ExternalName | None,
    trust: Mapping[str, str],
) -> tuple[Key, ...]:
    """The pool keys of a backend's endpoints (rule 1); an ExternalName backend has one."""
    if tls is None and external is None:
        return tuple((e.address, e.port) for e in endpoints)
    client = client_tls(tls, trust) if tls is not None else None
    if external is not None:
        return ((external.host, external.port, client, True),)
    return tuple((e.address, e.port, client, False) for e in endpoints)
