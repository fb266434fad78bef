"""``mirrorgate echo``: a drop-in for the Gateway API conformance backend ``echo-basic``.

The behaviour copies ``echo-basic/echo-basic.go`` (kubernetes-sigs/gateway-api-conformance-images):
the JSON body, ``X-Echo-Set-Header``, ``?delay=``, ``/status/NNN``, ``/health``, ``/retry/`` and
the ``Echoing back request made to <RequestURI> to client (<addr>)`` log line, byte-identical,
followed by `` body_length=<N> body_sha256=<hex> host=<Host>`` (what was received: the mirror's
``-shadow`` Host can be checked there); request bodies are streamed and hashed, never stored.
With a certificate and key (``EchoConfig.tls_cert``/``tls_key``, ``--tls-cert``/``--tls-key``)
the one port speaks HTTPS (TLS, ALPN ``http/1.1``) with the same answers and log lines, so a TLS
mirror target can be tried locally.

Modules: ``config`` (``EchoConfig`` and the echoed identity), ``http11`` (reason phrases, status
lines, Date, request targets, Go's canonical header keys), ``app`` (request handling),
``connection`` (one client connection) and ``server`` (entry points). Deliberate differences from
echo-basic are marked ``DIVERGES`` in them. Go standard-library behaviour (durations, JSON
strings, URL unescaping) comes from ``mirrorgate.gocompat``.
"""

from mirrorgate.echo.config import EchoConfig, EchoIdentity, default_pod_name, resolve_identity
from mirrorgate.echo.server import EchoServer, run_echo, serve_echo, start_echo

__all__ = [
    "EchoConfig",
    "EchoIdentity",
    "EchoServer",
    "default_pod_name",
    "resolve_identity",
    "run_echo",
    "serve_echo",
    "start_echo",
]
