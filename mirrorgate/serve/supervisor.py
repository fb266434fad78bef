"""``--workers N``: one supervisor process and N worker processes sharing each listener.

Owns: starting, watching and restarting workers, forwarding reloads, the admin server of the
whole group, and graceful stop. The worker side is ``serve/worker.py``.

Rules:
1. The supervisor is the control plane, the workers are data planes. The supervisor loads,
   checks, watches and reloads the configuration (the same ``ConfigSource`` and ``Reloader`` as
   one process: file changes and SIGHUP); each worker serves the routing tables the supervisor
   sends it, so every worker serves exactly the supervisor's table, and a worker restarted while
   the files are broken serves the last good one.
2. Workers start as ``python -c WORKER_CODE`` with SIGHUP ignored and SIGINT ignored until their
   loop handles it; the wire (settings, table frames, status lines) is ``serve/worker.py``'s.
3. Start: the configuration is loaded and checked before any worker starts (bad config:
   ``StartupError``, exit 1). A worker that exits before it ever bound, while the group is still
   starting, is a startup failure: every worker is stopped and ``StartupError`` raised. Later, a
   worker that dies is restarted after a backoff (0.1 s doubling to 10 s, reset once it binds). A
   reload that a worker cannot apply (a port it cannot bind) is reported on ``/status``; that
   worker keeps its old table.
4. Metrics: ``/metrics`` on the supervisor is the sum over workers of their latest snapshots,
   sample by sample (counters, histograms and gauges alike: a gauge sums to the whole group's
   value, e.g. mirror requests in flight). A dead worker's counters and histograms stay counted
   (its gauges are dropped), so totals never go down; what a killed worker counted in its last
   ``METRICS_EVERY`` seconds is lost. (Not prometheus-client's multiprocess mode: the mirror
   metrics are a custom collector over in-memory ints, which that mode cannot see.)
5. ``/readyz`` is 200 once every worker has bound at least once and while at least one is bound,
   unless the table serves no listener (503 with the reason, ``serve/report.py``). What is served
   and every problem are logged by the supervisor once, when the group is ready, and after each
   reload; workers log only their own sockets.
6. SIGTERM/SIGINT: SIGTERM to every worker (each drains within ``grace``), wait, exit normally (0);
   a worker still running ``grace`` + 5 s later is killed.
7. Gateway-wide settings (``serve/gwsettings.py``) are the supervisor's to compute, like the
   table: each table frame carries the settings to serve with it, a worker applies what a reload
   may change (``DataPlane.reconfigure``), and a worker started later gets the served settings in
   its ``RunConfig`` (its access-log and mirror access-log destinations, pools and breakers are
   made from them). Until a table with listeners was sent, every setting applies at reload
   (``gwsettings`` rule 3). Each worker writes its own access log and mirror access log; the
   supervisor writes none, but checks that their files can be opened: at start (else a
   ``StartupError`` naming the field and its GatewayConfig) and at a reload that changes them
   before anything was served (else a failed reload).
8. ``/mirrors`` and ``/mirrors/<id>/diffs``: each worker sends its mirrors' counters with every
   metrics snapshot, and the mismatch records it has not sent yet (``serve/worker.py`` rule 4).
   The counters add up like rule 4's (a dead worker's stay counted, latency histograms add
   bucket by bucket, so percentiles are those of the whole group); the rings are merged newest
   first (by record time) and cut to the mirror's ``keep_mismatches``, kept as JSON bytes under
   one byte budget for all mirrors (``mirror/views.py``'s ``MergedMirrors``).
"""

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import msgspec
import uvloop
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from mirrorgate.admin.server import AdminApp
from mirrorgate.mirror.views import MergedMirrors
from mirrorgate.serve.admin import listen_admin, mirror_endpoints, register_source_metrics, status_of, why_not_ready
from mirrorgate.serve.apply import Reloader, ReloadFailed, ReloadMetrics, announce_start, load_checked
from mirrorgate.serve.config import ConfigInvalid, Loaded, RunConfig, StartupError
from mirrorgate.serve.gwsettings import Effective, SettingsState, cannot_open, log_destinations
from mirrorgate.serve.logs import CannotOpen, check_files
from mirrorgate.serve.signals import cancel_all, on_signal, until_stopped
from mirrorgate.serve.source import ConfigSource, source_of
from mirrorgate.serve.worker import ENV_CONFIG, ENV_ID, ENV_STATUS_FD, STATUS_LINE_LIMIT, table_frame

log = logging.getLogger("mirrorgate")

WORKER_CODE = (  # SIGINT is ignored until the worker's loop handles it; SIGHUP always (rule 2)
    "import signal; signal.signal(signal.SIGHUP, signal.SIG_IGN); signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "from mirrorgate.serve.worker import worker_main; raise SystemExit(worker_main())"
)
BACKOFF_MIN = 0.1
BACKOFF_MAX = 10.0
KILL_AFTER = 5.0  # seconds past the grace period before a stopping worker is killed


def supervise(config: RunConfig, source: ConfigSource | None = None) -> None:
    """Run ``config.workers`` workers until SIGINT/SIGTERM; raises ``StartupError``."""
    if 0 in config.port_overrides.values():
        raise StartupError("ephemeral port overrides (0) cannot be shared by workers")
    uvloop.run(Supervisor(config, source).run())


class WorkerSlot:
    """One worker position; its process is replaced when it dies."""

    __slots__ = ("bound", "index", "proc")

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.bound = False  # the current process reported its listeners bound

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


class Candidate(NamedTuple):
    """A loaded configuration and its gateway-wide settings, computed once (rule 7)."""

    loaded: Loaded
    settings: Effective


class Supervisor:
    def __init__(self, config: RunConfig, source: ConfigSource | None = None) -> None:
        self.config = config
        self.metrics = MergedMetrics()
        self.mirrors = MergedMirrors(lambda: self.reloader.current.loaded.table)  # rule 7
        self.slots = [WorkerSlot(i) for i in range(config.workers)]
        self.stop = asyncio.Event()
        self.started = asyncio.Event()  # every worker bound at least once
        self.stopping = False
        self.failure: str | None = None
        self.source = source if source is not None else source_of(config)
        loaded = load_checked(self.source)
        self.settings = SettingsState(loaded.settings(config))  # rule 7
        self._check_logs(log_destinations(self.settings.served), self.settings.wanted, StartupError.of_lines)
        self.served_any = bool(loaded.table.servers)  # a table with listeners went to the workers
        self.reloader: Reloader[Candidate] = Reloader(
            Candidate(loaded, self.settings.wanted),
            source=self.source,
            prepare=self._prepare,
            table_of=lambda c: c.loaded.table,
            apply=self._forward_reload,
            loaded_of=lambda c: c.loaded,
            key=lambda c: (c.loaded.table, c.settings),
        )

    async def run(self) -> None:
        admin = await self._start_admin() if self.config.admin is not None else None
        tasks = [asyncio.create_task(self._keep(slot)) for slot in self.slots]
        tasks.append(asyncio.create_task(self.reloader.run()))
        tasks.append(asyncio.create_task(self.source.watch(self.reloader.request, self.stop)))
        try:
            with until_stopped(self.stop.set), on_signal(signal.SIGHUP, self.reloader.request):
                await self.stop.wait()
                await self._stop_workers(tasks[: len(self.slots)])
        finally:
            await cancel_all(tasks)
            if admin is not None:
                admin.close()
                await admin.wait_closed()
        if self.failure is not None:
            raise StartupError(self.failure)

    # --- control plane ---------------------------------------------------------------------------------

    def _prepare(self, loaded: Loaded) -> "Candidate":
        """``loaded`` with its gateway-wide settings, once they are known to be valid (rule 7)."""
        try:
            return Candidate(loaded, loaded.settings(self.config))
        except ConfigInvalid as exc:
            raise ReloadFailed(exc.lines) from exc

    async def _forward_reload(self, candidate: "Candidate") -> None:
        """Send the new table and settings to every live worker (rule 1); workers not started yet get them then."""
        loaded, wanted = candidate
        if wanted != self.settings.wanted:
            fresh = not self.served_any
            if fresh:  # the workers will open these files: a reload naming one they cannot, fails
                self._check_logs(log_destinations(wanted.settings, self.settings.served), wanted, ReloadFailed)
            self.settings.update(wanted, fresh=fresh)
        self.served_any = self.served_any or bool(loaded.table.servers)
        frame = table_frame(loaded.table, self.settings.served)
        for slot in self.slots:
            if slot.proc is not None and slot.alive() and slot.proc.stdin is not None:
                slot.proc.stdin.write(frame)
        for slot in self.slots:
            if slot.proc is not None and slot.alive() and slot.proc.stdin is not None:
                try:
                    await slot.proc.stdin.drain()
                except ConnectionError:
                    pass  # it died; its replacement starts with the current table

    @staticmethod
    def _check_logs(destinations: dict[str, str], wanted: Effective, error: Callable[[list[str]], Exception]) -> None:
        """Rule 7: the log files the workers will open can be opened; else ``error`` names the field
        and where its value came from."""
        try:
            check_files(destinations)
        except CannotOpen as exc:
            raise error([cannot_open(wanted, exc)]) from exc

    def ready(self) -> bool:
        return self.started.is_set() and not self.stopping and any(s.bound for s in self.slots)

    async def _start_admin(self) -> asyncio.Server:
        assert self.config.admin is not None
        registry = CollectorRegistry()
        registry.register(self.metrics)
        registry.register(ReloadMetrics(self.reloader))
        register_source_metrics(registry, self.source)
        reloader = self.reloader
        app = AdminApp(
            registry=registry,
            table=lambda: reloader.current.loaded.table,
            status=status_of(reloader, lambda: reloader.current.loaded.status, self.source, self.settings.view),
            ready=self.ready,
            why_not_ready=why_not_ready(self.source, lambda: reloader.current.loaded),
            **mirror_endpoints(lambda: reloader.current.loaded.table, self.mirrors),
        )
        return await listen_admin(app, self.config.admin)

    # --- workers ------------------------------------------------------------------------------------------

    async def _keep(self, slot: WorkerSlot) -> None:
        """Run the slot's worker, restarting it with backoff until the group stops (rule 3)."""
        backoff = BACKOFF_MIN
        while not self.stopping:
            try:
                code, bound = await self._run_once(slot)
            except Exception:  # a supervisor bug must not leave the group a worker short; logged with traceback
                log.exception("supervising worker %d failed", slot.index)
                code, bound = None, False
                if slot.proc is not None and slot.alive():
                    slot.proc.kill()
                    await slot.proc.wait()
            if self.stopping:
                return
            if not self.started.is_set() and not bound:
                self.failure = f"worker {slot.index} exited with code {code} before it was ready (see its log)"
                self.stop.set()
                return
            backoff = BACKOFF_MIN if bound else min(backoff * 2, BACKOFF_MAX)
            log.warning("worker %d exited with code %s; restarting in %.1fs", slot.index, code, backoff)
            try:
                await asyncio.wait_for(self.stop.wait(), backoff)
            except TimeoutError:
                pass

    async def _run_once(self, slot: WorkerSlot) -> tuple[int | None, bool]:
        """Start one worker process and follow it until it exits: (exit code, whether it bound)."""
        rfd, wfd = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", WORKER_CODE, stdin=subprocess.PIPE, pass_fds=(wfd,), env=self._env(slot, wfd)
            )
        except OSError as exc:
            os.close(rfd)
            log.error("cannot start worker %d: %s", slot.index, exc)
            return None, False
        finally:
            os.close(wfd)
        assert proc.stdin is not None
        proc.stdin.write(
            table_frame(self.reloader.current.loaded.table, self.settings.served)
        )  # before any reload can be forwarded
        slot.proc = proc
        if self.stopping:  # the group began to stop while this one was starting
            proc.send_signal(signal.SIGTERM)
        log.info("worker %d started (pid %d)", slot.index, proc.pid)
        bound = await self._follow(slot, rfd)
        code = await proc.wait()
        slot.bound = False
        self.metrics.retire(slot.index)
        self.mirrors.retire(slot.index)
        log.log(logging.INFO if self.stopping else logging.WARNING, "worker %d (pid %d) exited", slot.index, proc.pid)
        return code, bound

    def _env(self, slot: WorkerSlot, status_fd: int) -> dict[str, str]:
        worker_config = msgspec.structs.replace(
            self.config, admin=None, watch=False, reuse_port=True, workers=1, kube=None, settings=self.settings.served
        )
        return {
            **os.environ,
            ENV_CONFIG: msgspec.json.encode(worker_config).decode(),
            ENV_ID: str(slot.index),
            ENV_STATUS_FD: str(status_fd),
        }

    async def _follow(self, slot: WorkerSlot, rfd: int) -> bool:
        """Read the worker's status lines until its end of the pipe closes; True if it bound."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=STATUS_LINE_LIMIT)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(rfd, "rb", buffering=0)
        )
        bound = False
        try:
            async for line in reader:
                try:
                    event = msgspec.json.decode(line, type=dict[str, Any])
                except msgspec.DecodeError:
                    log.warning("worker %d sent an unreadable status line: %r", slot.index, line[:200])
                    continue
                bound = self._on_event(slot, event) or bound
        finally:
            transport.close()
        return bound

    def _on_event(self, slot: WorkerSlot, event: dict[str, Any]) -> bool:
        kind = event.get("event")
        if kind == "metrics":
            self.metrics.update(slot.index, str(event.get("text", "")))
        if kind == "mirrors":
            try:
                self.mirrors.update(slot.index, event)
            except msgspec.ValidationError as exc:  # a bug: the worker encodes what we decode
                log.warning("worker %d sent unreadable mirror counters: %s", slot.index, exc)
        if kind == "reload_failed":
            errors = [f"worker {slot.index}: {e}" for e in event.get("errors", [])]
            self.reloader.fail(errors)
        if kind != "bound":
            return False
        slot.bound = True
        log.info("worker %d ready", slot.index)
        if all(s.bound for s in self.slots) and not self.started.is_set():
            self.started.set()
            announce_start(self.reloader.current.loaded, self.source)  # once for the group, not once per worker
        return True

    async def _stop_workers(self, keepers: list["asyncio.Task[None]"]) -> None:
        """SIGTERM every worker, wait for them to drain, kill the ones that outlive the grace."""
        self.stopping = True
        grace = self.settings.served.grace
        log.info("stopping %d worker(s) (grace %.1fs)", len(self.slots), grace)
        for slot in self.slots:
            if slot.proc is not None and slot.alive():
                slot.proc.send_signal(signal.SIGTERM)
        _, pending = await asyncio.wait(keepers, timeout=grace + KILL_AFTER)
        if not pending:
            return
        for slot in self.slots:
            if slot.proc is not None and slot.alive():
                log.warning("worker %d did not stop in time: killing it", slot.index)
                slot.proc.kill()
        await asyncio.wait(pending)


# --- metrics of the group (rule 4) ----------------------------------------------------------------


class MergedMetrics:
    """A collector: the sum over workers of their latest snapshot, plus what dead workers counted."""

    def __init__(self) -> None:
        self.live: dict[int, list[Metric]] = {}  # worker index -> its last snapshot
        self.retired: list[Metric] = []  # counters and histograms of dead workers, summed

    def update(self, worker: int, text: str) -> None:
        self.live[worker] = list(text_string_to_metric_families(text))

    def retire(self, worker: int) -> None:
        families = [f for f in self.live.pop(worker, []) if f.type not in ("gauge", "unknown", "info", "stateset")]
        self.retired = merge_families([self.retired, families])

    def collect(self) -> Iterator[Metric]:
        yield from merge_families([self.retired, *self.live.values()])


def merge_families(snapshots: Iterable[list[Metric]]) -> list[Metric]:
    """Families with equal names merged; samples with equal name and labels summed (``_created``
    timestamps: the earliest)."""
    merged: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for families in snapshots:
        for family in families:
            if family.name not in merged:
                merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            series = values.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                old = series.get(key)
                if old is None:
                    series[key] = sample.value
                elif sample.name.endswith("_created"):
                    series[key] = min(old, sample.value)
                else:
                    series[key] = old + sample.value
    for name, family in merged.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    return list(merged.values())
