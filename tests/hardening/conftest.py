"""Hardening fixtures: the real in-process gateway in front of recording backends.

The backends are ``tests.support.backends.Backend`` in ``ok`` mode: they parse what they receive
with httptools (their own, independent parser), record every request (method, target, headers,
body) and every raw byte, and answer each request ``200``. ``Harness`` starts two of them
(``primary`` and ``mirror``) and the gateway (``DataPlane(load_table(...), port_overrides=...)``)
with one route: ``/mirrored`` (prefix) is mirrored 100% to ``mirror``, everything goes to
``primary``. Every wait is bounded; nothing asserts on time.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from random import Random

import pytest

from mirrorgate.serve.config import load_table
from mirrorgate.serve.plane import DataPlane
from tests.support.backends import SENTINEL, Backend
from tests.support.client import WAIT
from tests.support.manifests import gateway_doc, route_doc, service_docs


def gateway_yaml(primary: int, mirror: int, extra_rules: str = "", extra_docs: str = "") -> str:
    """The harness's configuration: ``/mirrored`` (prefix) mirrored to ``mirror``, then
    ``extra_rules``, then everything to ``primary``; ``extra_docs`` appended."""
    rules = f"""  - matches: [{{path: {{type: PathPrefix, value: /mirrored}}}}]
    filters: [{{type: RequestMirror, requestMirror: {{backendRef: {{name: mirror, port: 8080}}}}}}]
    backendRefs: [{{name: primary, port: 8080}}]
{extra_rules}  - backendRefs: [{{name: primary, port: 8080}}]"""
    return (
        gateway_doc()
        + service_docs("primary", primary)
        + service_docs("mirror", mirror)
        + route_doc(rules)
        + extra_docs
    )


class ErrorRecords(logging.Handler):
    """Collects WARNING+ records of the ``mirrorgate`` loggers and any traceback."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[str]:
        return [
            f"{r.levelname} {r.name}: {r.getMessage()}"
            for r in self.records
            if r.levelno >= logging.ERROR or r.exc_info is not None or "Traceback" in r.getMessage()
        ]


@dataclass
class Harness:
    gateway: DataPlane
    primary: Backend
    mirror: Backend
    log: ErrorRecords

    @property
    def port(self) -> int:
        return self.gateway.port(80)

    async def settle(self) -> None:
        """Send a mirrored sentinel on a fresh connection and wait until both backends saw it: the
        requests of earlier (closed) client connections have been forwarded or never will be."""
        n = sum(SENTINEL in s.target for s in self.primary.seen)
        m = sum(SENTINEL in s.target for s in self.mirror.seen)
        target = f"/mirrored{SENTINEL}"  # route prefix /mirrored: the mirror sees it too
        async with asyncio.timeout(WAIT):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(f"GET {target} HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n".encode())
            await reader.read()
            writer.close()
        await self.primary.wait_for(lambda: sum(SENTINEL in s.target for s in self.primary.seen) > n)
        await self.mirror.wait_for(lambda: sum(SENTINEL in s.target for s in self.mirror.seen) > m)

    def leaks(self) -> tuple[int, int, str]:
        st = self.gateway.state
        return len(st.connections), len(st.tasks), repr(st.pool)


HarnessFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[HarnessFactory]:
    made: list[Harness] = []
    handler = ErrorRecords()
    logger = logging.getLogger("mirrorgate")
    logger.addHandler(handler)

    async def make(extra_rules: str = "", extra_docs: str = "", **gateway_kw: object) -> Harness:
        primary, mirror = await Backend().start(), await Backend().start()
        path = tmp_path / f"gw{len(made)}.yaml"
        path.write_text(gateway_yaml(primary.port, mirror.port, extra_rules, extra_docs))
        try:
            table = load_table([str(path)], "127.0.0.1")
        except Exception:  # a configuration the test expects to be refused: close what was started
            await primary.close()
            await mirror.close()
            raise
        gw = DataPlane(table, port_overrides={s.port: 0 for s in table.servers}, rng=Random(7), **gateway_kw)  # type: ignore[arg-type]
        await gw.start()
        h = Harness(gw, primary, mirror, handler)
        made.append(h)
        return h

    yield make
    for h in made:
        await h.gateway.shutdown(1.0)
        await h.primary.close()
        await h.mirror.close()
    logger.removeHandler(handler)


@pytest.fixture
async def harness(make_harness: HarnessFactory) -> Harness:
    return await make_harness()
