"""A worker process of ``--workers N``: one ``DataPlane`` serving the tables its supervisor sends.

Owns: the worker's entry point (``worker_main``) and the wire between supervisor and worker
(environment variables, table frames, status lines), which ``serve/supervisor.py`` speaks too.

Rules:
1. A worker is a fresh interpreter (``python -c``, never ``fork`` of a running loop) that binds
   every listener with SO_REUSEPORT (the kernel spreads connections over the workers' sockets)
   and has no admin server. Its settings arrive as JSON in ``MIRRORGATE_WORKER_CONFIG``.
2. Tables travel as length-prefixed JSON frames on the worker's stdin; the first frame is the
   table to start with. The supervisor checked each table before sending it. EOF on stdin means
   the supervisor is gone: the worker stops gracefully. Workers ignore SIGHUP.
3. Applying a table is ``DataPlane.apply`` (new sockets first, then the matcher swap, then
   vanished sockets closed), the matcher compiled in a thread. A table it cannot apply (a port it
   cannot bind) is reported; the worker keeps its old table.
4. It reports ``bound``, each reload's outcome and its metrics as JSON lines on a pipe
   (``MIRRORGATE_WORKER_STATUS_FD``): the text exposition of its registry every
   ``METRICS_EVERY`` seconds and once more as it stops, each followed by a ``mirrors`` line
   (``mirror/views.py``'s ``WorkerFeed``: its mirrors' counters and the mismatch records it
   has not sent yet).
5. Each worker writes its own access log and mirror access log, to the destinations of its
   ``RunConfig`` (the supervisor's served settings, files it checked): a file that cannot be
   opened at start is one error line and exit 1; before it first binds (``DataPlane.fresh``) a
   frame with other destinations switches them (``serve/logs.switch_logs``), a failure logged and
   the old ones kept.
"""

import asyncio
import logging
import os
import struct
import sys
from typing import Any

import msgspec
import uvloop
from prometheus_client import CollectorRegistry, generate_latest

from mirrorgate.dataplane.matcher import compile
from mirrorgate.ir.table import RoutingTable
from mirrorgate.mirror.views import WorkerFeed
from mirrorgate.serve.apply import summary
from mirrorgate.serve.config import RunConfig, StartupError
from mirrorgate.serve.gwsettings import Settings, log_applied, log_destinations
from mirrorgate.serve.logs import CannotOpen, setup_logging, switch_logs
from mirrorgate.serve.plane import DataPlane
from mirrorgate.serve.signals import cancel_all, every, until_stopped

log = logging.getLogger("mirrorgate")

ENV_CONFIG = "MIRRORGATE_WORKER_CONFIG"
ENV_ID = "MIRRORGATE_WORKER_ID"
ENV_STATUS_FD = "MIRRORGATE_WORKER_STATUS_FD"
METRICS_EVERY = 1.0  # seconds between a worker's metrics snapshots
STATUS_LINE_LIMIT = 256 << 20  # a status line carries a metrics snapshot: allow big ones
FRAME = struct.Struct("!I")  # the length prefix of a table frame on a worker's stdin


class Frame(msgspec.Struct, frozen=True, kw_only=True):
    """What the supervisor sends a worker: the table to serve and the gateway-wide settings."""

    table: RoutingTable
    settings: Settings


def table_frame(table: RoutingTable, settings: Settings) -> bytes:
    body = msgspec.json.encode(Frame(table=table, settings=settings))
    return FRAME.pack(len(body)) + body


def worker_main() -> int:
    """Entry point of a worker process; returns its exit code."""
    config = msgspec.json.decode(os.environ[ENV_CONFIG], type=RunConfig)
    index = int(os.environ[ENV_ID])
    status_fd = int(os.environ[ENV_STATUS_FD])
    try:
        settings = config.settings
        setup_logging(settings.access_log, index, config.log_format, config.log_level, settings.mirror_access_log)
    except CannotOpen as exc:  # the supervisor checked the files; one went away since (rule 5)
        log.error("cannot start: %s", exc)
        return 1
    try:
        uvloop.run(_worker(config, status_fd))
    except StartupError as exc:
        log.error("%s", exc)
        return 1
    return 0


class _Worker:
    """One worker's data plane, fed tables by the supervisor."""

    def __init__(self, config: RunConfig, status_fd: int) -> None:
        self.config = config
        self.status_fd = status_fd
        self.stop = asyncio.Event()
        self.registry = CollectorRegistry()
        self.inbox = asyncio.StreamReader()
        self.settings = Settings()  # the gateway-wide settings served (the last frame's)
        self.mirrors: WorkerFeed | None = None  # once the data plane exists

    def emit(self, event: dict[str, Any]) -> None:
        try:
            _write_all(self.status_fd, msgspec.json.encode(event) + b"\n")
        except OSError:  # the supervisor is gone
            self.stop.set()

    def send_metrics(self) -> None:
        self.emit({"event": "metrics", "text": generate_latest(self.registry).decode()})
        if self.mirrors is not None:
            self.emit(self.mirrors.event())

    async def next_table(self) -> Frame | None:
        """The next table and settings from the supervisor, decoded off the loop; None at EOF."""
        try:
            (size,) = FRAME.unpack(await self.inbox.readexactly(FRAME.size))
            body = await self.inbox.readexactly(size)
        except asyncio.IncompleteReadError:
            return None
        try:
            return await asyncio.to_thread(msgspec.json.decode, body, type=Frame)
        except msgspec.DecodeError:  # a bug: the supervisor encodes what we decode; the framing still holds
            log.exception("undecodable table from the supervisor; keeping the current one")
            return await self.next_table()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(self.inbox), sys.stdin)
        try:
            frame = await self.next_table()
            if frame is not None:
                await self.serve(frame)
        finally:
            transport.close()
            os.close(self.status_fd)

    async def serve(self, frame: Frame) -> None:
        cfg = self.config
        self.settings = frame.settings
        plane = DataPlane(
            frame.table,
            port_overrides=cfg.port_overrides,
            access_log_json=frame.settings.access_log_json,
            mirror_config=frame.settings.mirror,
            registry=self.registry,
            reuse_port=True,
            limits=frame.settings.limits,
        )
        self.mirrors = WorkerFeed(plane.mirror.views(), plane.mirror.board)
        helpers: list[asyncio.Task[None]] = []
        try:
            with until_stopped(self.stop.set):
                await plane.start()
                self.emit({"event": "bound"})
                helpers.append(asyncio.create_task(self.follow(plane)))
                helpers.append(asyncio.create_task(every(METRICS_EVERY, self.send_metrics)))
                await self.stop.wait()
                await cancel_all(helpers)
                log.info("shutting down (grace %.1fs)", self.settings.grace)
                await plane.shutdown(self.settings.grace)
        finally:
            await cancel_all(helpers)
            self.send_metrics()

    def _logs(self, settings: Settings) -> None:
        """The log destinations of ``settings`` that differ from those served (rule 5)."""
        try:
            switch_logs(log_destinations(settings, self.settings), int(os.environ[ENV_ID]))
        except CannotOpen as exc:
            kept = log_destinations(self.settings)[exc.field]
            log.error("%s; this worker keeps writing to %r", exc, kept)

    async def follow(self, plane: DataPlane) -> None:
        """Apply each table the supervisor sends; stop at EOF (the supervisor is gone)."""
        while (frame := await self.next_table()) is not None:
            if frame.settings != self.settings:
                fresh = plane.fresh  # nothing served yet: every setting applies (``gwsettings`` rule 3)
                if fresh:  # before ``reconfigure``, which reads the mirror sink anew
                    self._logs(frame.settings)
                before, self.settings = self.settings, frame.settings
                plane.reconfigure(frame.settings, fresh=fresh)
                log_applied(before, frame.settings)
            table = frame.table
            if table == plane.table:
                continue
            matcher = await asyncio.to_thread(compile, table)
            try:
                await plane.apply(table, matcher)
            except StartupError as exc:
                log.error("reload failed: %s; this worker keeps its previous configuration", exc)
                self.emit({"event": "reload_failed", "errors": [str(exc)]})
                continue
            log.info("reloaded: %s", summary(table))
            self.emit({"event": "reloaded"})
        if not self.stop.is_set():
            log.warning("supervisor gone: stopping")
            self.stop.set()


async def _worker(config: RunConfig, status_fd: int) -> None:
    await _Worker(config, status_fd).run()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
