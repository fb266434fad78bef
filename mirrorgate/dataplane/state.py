"""State shared by every connection of one gateway process (uvicorn's ``ServerState``).

Owns: the current ``Matcher`` (swapped as one reference on reload; exchanges keep the one they
started with), the primary upstream pool, the RNG for weighted choice, the set of live
connections and the tracked task set, access-log settings and the mirror hook.

Rules: every task the data plane starts goes through ``track`` (a done-callback removes it), so
shutdown can find and finish or cancel each one.
"""

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from random import Random
from typing import Any, Protocol

from mirrorgate.dataplane.flow import ReadGate
from mirrorgate.dataplane.limits import Limits
from mirrorgate.dataplane.matcher import Matcher, ServerKey
from mirrorgate.ir.table import Mirror
from mirrorgate.mirror.mirrorlog import MirroredRequest
from mirrorgate.mirror.policy import Shape
from mirrorgate.tls.server import TlsPort
from mirrorgate.upstream.connection import ResponseHead
from mirrorgate.upstream.pool import Pool

access_log = logging.getLogger("mirrorgate.access")
Shapes = tuple[Shape | None, ...]


class ClientConnection(Protocol):
    """What exchanges and the runtime use of a client connection (``protocol.HttpProtocol``); a
    protocol class, so that neither ``exchange`` nor this module imports ``protocol``."""

    server_key: ServerKey  # the IR (address, port) its socket serves
    loop: asyncio.AbstractEventLoop
    gate: ReadGate  # the client's read side
    client: str  # ``ip:port`` for the access log
    client_ip: bytes
    forward_tail: bytes  # ``headers.forward_tail(client_ip, scheme)``
    scheme: bytes  # b"https" on a TLS connection (``X-Forwarded-Proto``), else b"http"
    tls_listener: str | None  # the listener the SNI chose on a TLS connection
    write_paused: bool  # the client's write buffer is above its high-water mark

    @property
    def idle(self) -> bool: ...
    def write(self, data: bytes) -> None: ...
    def writelines(self, data: list[bytes]) -> None: ...
    def exchange_done(self, ex: Any) -> None: ...  # ``ex``: the ``Exchange`` that finished
    def shutdown(self) -> None: ...
    def abort(self) -> None: ...
    def hand_over(self) -> tuple[asyncio.Transport, bytes] | None: ...  # for a tunnel; None: gone
    def connection_lost(self, exc: Exception | None) -> None: ...


class BodyTee(Protocol):
    """Receives a copy of a request body as it streams; every call must return at once."""

    def feed(self, chunk: bytes) -> None: ...
    def end(self) -> None: ...
    def abort(self) -> None: ...


class ResponseCapture(Protocol):
    """Receives what the primary's response relays, for the mirrors that compare responses
    (``mirror.capture.PrimaryCapture``); every call returns at once and changes nothing relayed."""

    def head(self, rh: ResponseHead) -> None: ...
    def body(self, chunk: bytes) -> None: ...
    def complete(self) -> None: ...  # the whole response was relayed
    def end(self) -> None: ...  # the exchange finished (after ``complete``, or instead of it)


# method, target, headers as the client sent them, and the request id forwarded (``x-request-id``)
Request = tuple[bytes, bytes, list[tuple[bytes, bytes]], bytes]


class MirrorDispatcher(Protocol):
    """The mirror hook (``mirror.Dispatcher`` implements it; the data plane knows only this class).

    ``submit`` is called synchronously, once per request whose rule has mirrors, with the head as
    the primary will send it after the rule's RequestHeaderModifier and URLRewrite:
    method, origin-form target, lower-case headers (``x-request-id`` and ``x-forwarded-for``
    included). It returns a ``BodyTee`` for the body (or None) and is never awaited.
    Mirrors with MirrorPolicy settings come with their ``shapes`` (``matcher.mirror_shapes``,
    precomputed; None when no mirror has any) and the client's target and headers as received
    (``client``), from which sampling keys are read.
    Every method takes the primary exchange last (``request``): the mirror access log reads its
    request id and route, and nothing else keeps it.
    """

    def submit(
        self,
        mirrors: tuple[Mirror, ...],
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        has_body: bool,
        shapes: Shapes | None = None,
        client: tuple[bytes, Sequence[tuple[bytes, bytes]]] | None = None,
        request: MirroredRequest | None = None,
    ) -> BodyTee | None: ...

    # ``submit`` in two steps, for the hot path: ``admit`` samples and drops (cheap, nothing
    # allocated when nothing is admitted); only then does ``start`` build the mirrors' head, from
    # the primary's upstream head as ``headers.encode_forward`` encoded it: ``parts`` (request
    # line and header lines, before the endpoint's lines; not modified), ``parts[host_at]`` the
    # Host value (-1: none), ``content_length`` the request's (None: none).
    def admit(self, mirrors: tuple[Mirror, ...], request: MirroredRequest | None = None) -> list[Any] | None: ...
    # ``admit`` for mirrors with ``shapes``; ``target`` and ``headers``: the client's request
    def admit_shaped(
        self,
        mirrors: tuple[Mirror, ...],
        shapes: Shapes,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        request: MirroredRequest | None = None,
    ) -> list[Any] | None: ...
    # the mirrors of a request that is never mirrored (an upgrade): each one sampled is counted
    # as dropped with ``reason`` (``target``, ``headers``, ``shapes`` and ``client`` as ``submit``'s)
    def refuse(
        self,
        mirrors: tuple[Mirror, ...],
        reason: str,
        target: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
        shapes: Shapes | None = None,
        client: tuple[bytes, Sequence[tuple[bytes, bytes]]] | None = None,
        request: MirroredRequest | None = None,
    ) -> None: ...
    def start(
        self,
        admitted: list[Any],
        parts: list[bytes],
        host_at: int,
        has_body: bool,
        content_length: int | None,
        is_head: bool,
        request: MirroredRequest | None = None,
    ) -> BodyTee | None: ...
    # ``start`` for what ``admit_shaped`` let through (heads of their own made here)
    def start_shaped(
        self,
        admitted: list[Any],
        parts: list[bytes],
        host_at: int,
        has_body: bool,
        content_length: int | None,
        is_head: bool,
        request: MirroredRequest | None = None,
    ) -> BodyTee | None: ...

    # ``submit`` and ``start`` for mirrors of which some compare responses (``Plan.compare``,
    # ``Target.compare``): also the capture the exchange feeds with the primary's response
    # (None: nothing is compared). ``record``: the request for a mismatch record; ``shapes`` and
    # ``client`` as ``submit``'s; ``capture``: the one the request already has. ``start_compared``
    # takes what ``admit`` or ``admit_shaped`` let through (each with its shape).
    def submit_compared(
        self,
        mirrors: tuple[Mirror, ...],
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        has_body: bool,
        record: Request,
        shapes: Shapes | None = None,
        client: tuple[bytes, Sequence[tuple[bytes, bytes]]] | None = None,
        capture: Any = None,
        request: MirroredRequest | None = None,
    ) -> tuple[BodyTee | None, ResponseCapture | None]: ...
    def start_compared(
        self,
        admitted: list[Any],
        parts: list[bytes],
        host_at: int,
        has_body: bool,
        content_length: int | None,
        is_head: bool,
        request: MirroredRequest | None,
        record: Request,
    ) -> tuple[BodyTee | None, ResponseCapture | None]: ...


class GatewayState:
    __slots__ = (
        "access_log_json",
        "connections",
        "limits",
        "matcher",
        "mirror",
        "no_connections",
        "pool",
        "rejected_connections",
        "rng",
        "tasks",
        "tls_ports",
    )

    def __init__(
        self,
        matcher: Matcher,
        pool: Pool,
        *,
        rng: Random | None = None,
        access_log_json: bool = False,
        mirror: MirrorDispatcher | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.matcher = matcher
        self.limits = limits or Limits()
        self.rejected_connections = 0  # closed at accept: ``limits.max_connections`` were open
        self.pool = pool
        self.rng = rng or Random()
        self.access_log_json = access_log_json
        self.mirror = mirror
        self.connections: set[ClientConnection] = set()
        self.no_connections = asyncio.Event()  # set whenever ``connections`` becomes empty
        self.no_connections.set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.tls_ports: dict[ServerKey, TlsPort] = {}  # the HTTPS servers' SNI tables

    def misdirected(self, conn: ClientConnection, host: bytes) -> bool:
        """The request's Host selects another listener of the port than the SNI chose (421)."""
        port = self.tls_ports.get(conn.server_key)
        name = host.partition(b":")[0].decode("latin-1") if not host.startswith(b"[") else ""
        return port is not None and bool(name) and port.misdirected(conn.tls_listener, name)

    def track(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task
