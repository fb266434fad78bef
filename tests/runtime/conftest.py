"""Fixtures for the runtime tests: echo backends, config files, and ``mirrorgate run`` as a real
process whose log lines (stderr) and access log (stdout) are followed as they arrive.

Every wait is bounded (``WAIT``) and waits for an event (a log line, a response), never a time.
"""

import asyncio
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from mirrorgate.echo import EchoConfig, EchoServer, start_echo
from tests.support.client import Conn, Response, encode_request, request
from tests.support.manifests import gateway_doc, route_doc, service_docs

WAIT = 20.0  # seconds any single wait may take before the test fails


class EchoLog(io.StringIO):
    """An echo server's log that can be searched while it grows."""

    def __init__(self) -> None:
        super().__init__()
        self.grew = asyncio.Event()

    def write(self, s: str) -> int:
        self.grew.set()
        return super().write(s)

    async def wait_for(self, text: str) -> None:
        async with asyncio.timeout(WAIT):
            while text not in self.getvalue():
                self.grew.clear()
                await self.grew.wait()


class Backend:
    def __init__(self, server: EchoServer, log: EchoLog, pod: str) -> None:
        self.server = server
        self.log = log
        self.pod = pod

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture
async def backends() -> AsyncIterator[dict[str, Backend]]:
    """Echo backends ``a``, ``b`` and ``m`` (for mirrors); pod names ``<x>-1-2``."""
    out: dict[str, Backend] = {}
    for name in ("a", "b", "m"):
        log = EchoLog()
        pod = f"{name}-1-2"
        out[name] = Backend(await start_echo(EchoConfig(port=0, bind="127.0.0.1", name=pod), log=log), log, pod)
    yield out
    for backend in out.values():
        await backend.server.close()


def gateway_yaml(ports: list[int], backend: Backend, mirror: Backend | None = None, route_extra: str = "") -> str:
    """One Gateway with a listener per port, one route sending everything to ``backend`` (and
    mirroring all of it to ``mirror`` when given)."""
    listeners = ", ".join(f"{{name: l{p}, port: {p}, protocol: HTTP}}" for p in ports)
    filters = (
        "    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: mirror, port: 8080}}}]\n"
        if mirror is not None
        else ""
    )
    services = service_docs("primary", backend.port, "default")
    if mirror is not None:
        services += service_docs("mirror", mirror.port, "default")
    rules = f"  - backendRefs: [{{name: primary, port: 8080{route_extra}}}]\n{filters}"
    return gateway_doc("default", listeners) + services + route_doc(rules, namespace="default")


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step (as editors and ConfigMaps do), so no reader sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class GatewayProcess:
    """``python -m mirrorgate run`` with its stderr and stdout lines collected as they arrive."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []  # stderr: the log
        self.access: list[str] = []  # stdout: the access log
        self._changed = asyncio.Event()
        assert proc.stderr is not None
        assert proc.stdout is not None
        self._readers = [
            asyncio.create_task(self._collect(proc.stderr, self.lines)),
            asyncio.create_task(self._collect(proc.stdout, self.access)),
        ]

    @classmethod
    async def start(cls, path: Path | str, *extra: str, stdin_text: str | None = None) -> "GatewayProcess":
        if "--workers" not in extra:
            extra = (*extra, "--workers", "1")  # one process unless the test is about workers
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mirrorgate",
            "run",
            "-f",
            str(path),
            "--bind",
            "127.0.0.1",
            "--admin",
            "127.0.0.1:0",
            *extra,
            stdin=subprocess.DEVNULL if stdin_text is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if stdin_text is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin_text.encode())
            proc.stdin.close()
        return cls(proc)

    async def _collect(self, stream: asyncio.StreamReader, into: list[str]) -> None:
        async for raw in stream:
            into.append(raw.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    async def wait_line(self, pattern: str, *, after: int = 0, where: list[str] | None = None) -> re.Match[str]:
        """The first line (from index ``after``) matching ``pattern``; fails after ``WAIT``."""
        lines = self.lines if where is None else where
        regex = re.compile(pattern)
        i = after
        async with asyncio.timeout(WAIT):
            while True:
                while i < len(lines):
                    m = regex.search(lines[i])
                    if m is not None:
                        return m
                    i += 1
                if self.proc.returncode is not None and all(r.done() for r in self._readers):
                    raise AssertionError(f"process exited before {pattern!r}:\n" + "\n".join(self.lines))
                self._changed.clear()
                await self._changed.wait()

    async def count_lines(self, pattern: str, n: int, where: list[str] | None = None) -> None:
        """Wait until ``n`` lines match ``pattern``."""
        lines = self.lines if where is None else where
        regex = re.compile(pattern)
        async with asyncio.timeout(WAIT):
            while sum(1 for line in lines if regex.search(line)) < n:
                self._changed.clear()
                await self._changed.wait()

    async def admin_port(self) -> int:
        return int((await self.wait_line(r"admin server on 127\.0\.0\.1:(\d+)")).group(1))

    async def stop(self, signum: signal.Signals = signal.SIGTERM) -> int:
        """Send ``signum`` and wait for the exit code."""
        self.proc.send_signal(signum)
        return await self.exited()

    async def exited(self) -> int:
        """Wait for the process to exit (after a signal the test sent itself)."""
        async with asyncio.timeout(WAIT):
            code = await self.proc.wait()
            await asyncio.gather(*self._readers)
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await asyncio.gather(*self._readers)


Starter = Callable[..., Awaitable[GatewayProcess]]


@pytest.fixture
async def gateways() -> AsyncIterator[Starter]:
    """``await gateways(path, *flags)`` starts a gateway process, killed at teardown if still up."""
    started: list[GatewayProcess] = []

    async def start(path: Path | str, *extra: str, stdin_text: str | None = None) -> GatewayProcess:
        gw = await GatewayProcess.start(path, *extra, stdin_text=stdin_text)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        await gw.kill()


class HostRecorder:
    """A mirror backend that records the Host header of every request and answers 200."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.server: asyncio.Server | None = None
        self.got = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                for line in head.decode("latin-1").split("\r\n"):
                    if line.lower().startswith("host:"):
                        self.hosts.append(line.split(":", 1)[1].strip())
                        self.got.set()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture
async def recorder() -> AsyncIterator[HostRecorder]:
    rec = HostRecorder()
    rec.server = await asyncio.start_server(rec.handle, "127.0.0.1", 0)
    yield rec
    rec.server.close()


async def wait_hosts(rec: HostRecorder, n: int) -> None:
    async with asyncio.timeout(WAIT):
        while len(rec.hosts) < n:
            rec.got.clear()
            await rec.got.wait()


async def admin_port_logged(err: Path, port: int) -> int:
    """The admin port a gateway (started with ``--admin 127.0.0.1:0``, stderr to ``err``) logged,
    once it also logged listening on ``port``."""
    async with asyncio.timeout(WAIT):
        while True:
            text = await asyncio.to_thread(err.read_text)
            m = re.search(r"admin server on 127\.0\.0\.1:(\d+)", text)
            if m and f"listening on 127.0.0.1:{port}" in text:
                return int(m.group(1))
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def stuck_stdout_gateway(
    tmp_path: Path, config: Path, port: int, *flags: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """``mirrorgate run -f config`` (one worker, ``flags`` added) whose stdout is a pipe nobody
    reads (it fills, then the log writer's buffer): the process and its admin port, once it
    listens on ``port``; killed at the end if it still runs."""
    read, write = os.pipe()
    err = tmp_path / "stderr"
    with err.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mirrorgate", "run", "-f", str(config), "--bind", "127.0.0.1",
            "--admin", "127.0.0.1:0", "--no-watch", "--workers", "1", *flags,
            stdin=subprocess.DEVNULL, stdout=write, stderr=stderr,
        )  # fmt: skip
    os.close(write)
    try:
        yield proc, await admin_port_logged(err, port)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        os.close(read)


async def send_all(port: int, paths: Sequence[tuple[str, str | None]], host: str | None = None) -> None:
    """One keep-alive connection, one request after the other (with its x-request-id when given),
    each answered 200; ``host`` default ``example.com:<port>``."""
    conn = await Conn.open(port)
    try:
        for path, rid in paths:
            headers = [("x-request-id", rid)] if rid is not None else []
            await conn.send(encode_request("GET", path, host or f"example.com:{port}", headers))
            assert (await conn.read_response()).status == 200
    finally:
        await conn.close()


async def get(port: int, path: str = "/", host: str = "example.com") -> Response:
    """One GET on a fresh connection."""
    return await request(port, "GET", path, host)


async def admin_json(port: int, path: str) -> dict[str, object]:
    r = await get(port, path, host="127.0.0.1")
    assert r.status == 200, r
    data = json.loads(r.body)
    assert isinstance(data, dict)
    return data


async def gateway_config(admin: int) -> dict[str, Any]:
    """The ``gatewayConfig`` section of the admin server's ``/status``."""
    section = (await admin_json(admin, "/status"))["gatewayConfig"]
    assert isinstance(section, dict)
    return section


def pod_of(r: Response) -> str:
    pod = r.json()["pod"]
    assert isinstance(pod, str)
    return pod
