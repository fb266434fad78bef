"""The echo server's entry points: ``start_echo`` (in-process), ``serve_echo`` (until cancelled)
and ``run_echo`` (the ``mirrorgate echo`` process, until SIGINT or SIGTERM).

Rules: every connection and task is tracked by the ``EchoApp``, so ``EchoServer.close`` can stop
them all; the startup line is echo-basic's ``Starting server, listening on port N (http)``, with
``(https)`` when a certificate and key are given (then every connection is TLS, HTTP/1.1 inside).
A certificate or key that cannot be loaded is a ``ValueError`` naming the file, never the key.
"""

import asyncio
import signal
import ssl
import sys
from typing import Self, TextIO

import uvloop

from mirrorgate.echo.app import EchoApp
from mirrorgate.echo.config import EchoConfig, EchoIdentity, resolve_identity
from mirrorgate.echo.connection import EchoProtocol


class EchoServer:
    """A listening echo server. Use ``async with`` or call ``close()``."""

    def __init__(self, server: asyncio.Server, app: EchoApp, port: int) -> None:
        self._server = server
        self._app = app
        self.port = port  # the bound TCP port (useful with EchoConfig(port=0))

    @property
    def identity(self) -> EchoIdentity:
        return self._app.identity

    async def close(self) -> None:
        """Stop listening, close every connection, cancel in-flight requests, and wait."""
        self._server.close()
        for connection in list(self._app.connections):
            connection.shutdown()
        for task in list(self._app.tasks):
            task.cancel()
        await asyncio.gather(*self._app.tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server context serving ``cert`` (PEM chain) with ``key`` (PEM); ``ValueError`` if unusable."""
    if not cert or not key:
        raise ValueError("--tls-cert and --tls-key go together")
    for path in (cert, key):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"cannot load the certificate {cert} with the key {key}: {exc.strerror or exc}") from None
    context.set_alpn_protocols(["http/1.1"])
    return context


async def start_echo(config: EchoConfig, *, log: TextIO | None = None) -> EchoServer:
    """Bind ``config.bind:config.port`` and start serving; log lines go to ``log`` (default stderr).

    Prints echo-basic's ``Starting server, listening on port N (http)`` with the bound port.
    Raises ``ValueError`` for a port outside 0..65535 or an unusable certificate or key, and
    ``OSError`` when the address cannot be bound; raising anything else is a bug.
    """
    if not 0 <= config.port <= 65535:
        raise ValueError(f"port must be in 0..65535, got {config.port}")
    tls = tls_context(config.tls_cert, config.tls_key) if config.tls_cert or config.tls_key else None
    loop = asyncio.get_running_loop()
    app = EchoApp(sys.stderr if log is None else log)
    server = await loop.create_server(
        lambda: EchoProtocol(app), host=config.bind, port=config.port, backlog=1024, start_serving=False, ssl=tls
    )
    port = int(server.sockets[0].getsockname()[1])
    app.set_identity(resolve_identity(config, port))
    await server.start_serving()
    app.emit(f"Starting server, listening on port {port} ({'https' if tls else 'http'})\n")
    return EchoServer(server, app, port)


async def serve_echo(
    config: EchoConfig, *, ready: "asyncio.Future[int] | None" = None, log: TextIO | None = None
) -> None:
    """Serve until cancelled; ``ready`` (if given) receives the bound port once listening."""
    async with await start_echo(config, log=log) as server:
        if ready is not None and not ready.done():
            ready.set_result(server.port)
        await asyncio.get_running_loop().create_future()  # only cancellation ends this


async def _serve_until_signal(config: EchoConfig) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with await start_echo(config):
            await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def run_echo(config: EchoConfig) -> None:
    """Run an echo server under uvloop until SIGINT or SIGTERM, then return normally."""
    uvloop.run(_serve_until_signal(config))
