"""The byte relay of an upgraded exchange (WebSocket, after the backend's ``101 Switching Protocols``).

Owns: the client and upstream transports once HTTP has ended on both, from the 101 to the
close of either; the exchange that made it (``relay.ResponseRelay.on_switched``) is told when it ends.

Rules:
1. Bytes are relayed as they arrive, unchanged, in both directions (the gateway does not parse
   WebSocket frames). Bytes that followed the request head or the 101 head in the same read are
   relayed first.
2. Flow control: one side's reading is paused while the other side's write buffer is over its
   high-water mark (the transport's ``pause_writing``), and resumed when it drains.
3. Half-close: an EOF from one side is passed on (``write_eof``) and the other direction keeps
   flowing; once both sides have sent EOF, or either connection is lost, both are closed
   (buffered bytes are still written; a side still writing them ``websocket_idle_timeout``
   seconds later is aborted, so a peer that stopped reading cannot hold a connection for ever).
   A side that cannot pass an EOF on is closed instead.
4. Idle timeout: no byte in either direction for ``websocket_idle_timeout`` seconds closes both
   (one timer, re-armed only when it fires).
5. The end is reported once (``TunnelOwner.tunnel_closed``, with the bytes relayed to the
   client) before the client connection's own ``connection_lost`` runs, so the exchange's access
   line is written while the connection is still counted.
"""

import asyncio
from collections.abc import Callable
from typing import Protocol


class TunnelOwner(Protocol):
    def tunnel_closed(self, to_client: int) -> None: ...


class _Side(asyncio.Protocol):
    """One transport's protocol while it is tunnelled: events go to the tunnel."""

    __slots__ = ("is_client", "tunnel")

    def __init__(self, tunnel: "Tunnel", is_client: bool) -> None:
        self.tunnel = tunnel
        self.is_client = is_client

    def data_received(self, data: bytes) -> None:
        self.tunnel.relay(self.is_client, data)

    def eof_received(self) -> bool:
        self.tunnel.eof(self.is_client)
        return True  # keep our side open: the other direction may still flow (rule 3)

    def connection_lost(self, exc: Exception | None) -> None:
        self.tunnel.lost(self.is_client, exc)

    def pause_writing(self) -> None:
        self.tunnel.peer_of(self.is_client).pause_reading()  # rule 2

    def resume_writing(self) -> None:
        peer = self.tunnel.peer_of(self.is_client)
        if not peer.is_closing():
            peer.resume_reading()


class Tunnel:
    __slots__ = (
        "client",
        "client_eof",
        "client_lost",
        "closed",
        "idle",
        "last",
        "loop",
        "owner",
        "timer",
        "to_client",
        "to_upstream",
        "upstream",
        "upstream_eof",
    )

    def __init__(
        self,
        owner: TunnelOwner,
        client: asyncio.Transport,
        upstream: asyncio.Transport,
        idle: float,
        client_lost: Callable[[Exception | None], None],
    ) -> None:
        self.owner = owner
        self.client = client
        self.upstream = upstream
        self.idle = idle
        self.client_lost = client_lost  # the client connection's own ``connection_lost`` (rule 5)
        self.loop = asyncio.get_running_loop()
        self.last = self.loop.time()
        self.timer: asyncio.TimerHandle | None = None
        self.to_client = 0
        self.to_upstream = 0
        self.client_eof = False
        self.upstream_eof = False
        self.closed = False

    def start(self, from_client: bytes, from_upstream: bytes, client_write_paused: bool) -> None:
        """Take both transports over and relay what each side already sent (rule 1)."""
        self.client.set_protocol(_Side(self, True))
        self.upstream.set_protocol(_Side(self, False))
        if from_upstream:
            self.relay(False, from_upstream)
        if from_client:
            self.relay(True, from_client)
        if self.client.is_closing() or self.upstream.is_closing():
            self.close()
            return
        self.client.resume_reading()
        if client_write_paused or self._over_high_water(self.client):
            self.upstream.pause_reading()
        else:
            self.upstream.resume_reading()
        self.timer = self.loop.call_later(self.idle, self._on_timer)

    @staticmethod
    def _over_high_water(t: asyncio.Transport) -> bool:
        return t.get_write_buffer_size() > t.get_write_buffer_limits()[1]

    def peer_of(self, is_client: bool) -> asyncio.Transport:
        return self.upstream if is_client else self.client

    def relay(self, from_client: bool, data: bytes) -> None:
        self.last = self.loop.time()
        if from_client:
            self.to_upstream += len(data)
            self.upstream.write(data)
        else:
            self.to_client += len(data)
            self.client.write(data)

    def eof(self, from_client: bool) -> None:
        """Rule 3: pass the EOF on; close once both sides have sent theirs."""
        if from_client:
            self.client_eof = True
        else:
            self.upstream_eof = True
        peer = self.peer_of(from_client)
        if (self.client_eof and self.upstream_eof) or not peer.can_write_eof():
            self.close()
        elif not peer.is_closing():
            peer.write_eof()

    def lost(self, is_client: bool, exc: Exception | None) -> None:
        self.close()
        if is_client:
            self.client_lost(exc)

    def _on_timer(self) -> None:
        self.timer = None
        if self.closed:
            return
        left = self.last + self.idle - self.loop.time()
        if left <= 0:
            self.close()  # rule 4
        else:
            self.timer = self.loop.call_later(left, self._on_timer)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for t in (self.client, self.upstream):
            if not t.is_closing():
                t.close()
        if self.client.get_write_buffer_size() or self.upstream.get_write_buffer_size():
            self.loop.call_later(self.idle, self._abort)  # rule 3
        self.owner.tunnel_closed(self.to_client)

    def _abort(self) -> None:
        self.client.abort()
        self.upstream.abort()
