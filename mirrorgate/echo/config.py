"""The echo server's configuration and the identity it echoes (pod, namespace, service, ...).

Rules: what the command line leaves empty is filled from the environment variables echo-basic
reads (``POD_NAME``, ``NAMESPACE``, ``SERVICE_NAME``, ``INGRESS_NAME``, ``HTTP_PORT``), else from
the host and the bound port; nothing here does I/O beyond reading the environment and hostname.
"""

import hashlib
import os
import re
import socket
from collections.abc import Mapping
from typing import Final

import msgspec

from mirrorgate.gocompat import json_string

_POD_HASH_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' rand.SafeEncodeString


class EchoConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How to run one echo server. Empty strings are filled from the environment at start."""

    port: int  # TCP port to listen on; 0 picks a free one (see EchoServer.port)
    bind: str = "0.0.0.0"  # listen address
    name: str = ""  # pod name; "" -> $POD_NAME, else "<host>-<port>-<hash10>-<hash5>"
    namespace: str = ""  # "" -> $NAMESPACE
    service: str = ""  # "" -> $SERVICE_NAME
    ingress: str = ""  # "" -> $INGRESS_NAME
    http_port: str = ""  # echoed "httpPort"; "" -> $HTTP_PORT, else the bound port
    tls_cert: str = ""  # PEM file of the certificate chain; with tls_key, the server speaks HTTPS
    tls_key: str = ""  # PEM file of the private key matching tls_cert


class EchoIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """The resolved context fields echoed in every JSON body."""

    namespace: str
    ingress: str
    service: str
    pod: str
    http_port: str


def default_pod_name(hostname: str, port: int) -> str:
    """A Deployment-style pod name, so that stripping the last two ``-`` segments leaves a name.

    ``default_pod_name("laptop.lan", 3000)`` -> ``"laptop-3000-<10 chars>-<5 chars>"``; the hashes
    are derived from hostname and port, so the name is stable across restarts.
    """
    base = re.sub(r"[^a-z0-9-]+", "-", hostname.split(".")[0].lower()).strip("-") or "echo"
    digest = hashlib.sha256(f"{hostname}:{port}".encode()).digest()
    chars = "".join(_POD_HASH_ALPHABET[byte % len(_POD_HASH_ALPHABET)] for byte in digest[:15])
    return f"{base}-{port}-{chars[:10]}-{chars[10:]}"


def resolve_identity(config: EchoConfig, bound_port: int, env: Mapping[str, str] | None = None) -> EchoIdentity:
    """Fill the empty fields of ``config`` from ``env`` (default ``os.environ``) as echo-basic does."""
    environ = os.environ if env is None else env
    return EchoIdentity(
        namespace=config.namespace or environ.get("NAMESPACE", ""),
        ingress=config.ingress or environ.get("INGRESS_NAME", ""),
        service=config.service or environ.get("SERVICE_NAME", ""),
        pod=config.name or environ.get("POD_NAME", "") or default_pod_name(socket.gethostname(), bound_port),
        # DIVERGES: echo-basic defaults to "3000", its fixed port; we default to the port we bound.
        http_port=config.http_port or environ.get("HTTP_PORT", "") or str(bound_port),
    )


def identity_json(identity: EchoIdentity) -> str:
    """The JSON members after ``headers``, in echo-basic's field order (computed once)."""
    fields = (
        ("httpPort", identity.http_port),
        ("namespace", identity.namespace),
        ("ingress", identity.ingress),
        ("service", identity.service),
        ("pod", identity.pod),
    )
    return ",\n".join(f" {json_string(key)}: {json_string(value)}" for key, value in fields)
