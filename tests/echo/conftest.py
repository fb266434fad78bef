"""Fixtures for the echo backend tests: a real server on 127.0.0.1, and ``echo_request`` to build
requests whose header order (``Host`` included) the test chooses.

Every async test runs on both the default asyncio loop and uvloop (the production loop) when the
installed pytest-asyncio offers the ``pytest_asyncio_loop_factories`` hook.
"""

import asyncio
import io
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import pytest
import pytest_asyncio.plugin
import uvloop

from mirrorgate.echo import EchoConfig, EchoServer, start_echo
from tests.support.client import encode_request

if hasattr(pytest_asyncio.plugin, "PytestAsyncioSpecs"):

    def pytest_asyncio_loop_factories(
        config: pytest.Config, item: pytest.Item
    ) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@dataclass
class Echo:
    """A running in-process echo server and the text it has logged so far."""

    server: EchoServer
    log: io.StringIO

    @property
    def port(self) -> int:
        return self.server.port

    def log_lines(self) -> list[str]:
        return self.log.getvalue().splitlines()


def echo_request(
    target: str = "/",
    *,
    method: str = "GET",
    headers: tuple[tuple[str, str], ...] = (("Host", "echo.test"),),
    body: bytes = b"",
    version: str = "1.1",
) -> bytes:
    """One request with exactly ``headers`` (``Host`` among them), plus Content-Length when there is a body."""
    return encode_request(method, target, None, headers, body or None, version)


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    log = io.StringIO()
    config = EchoConfig(
        port=0, bind="127.0.0.1", name="infra-backend-v1-7d9c5b8f4-x2x7q", namespace="gateway-conformance-infra"
    )
    async with await start_echo(config, log=log) as server:
        yield Echo(server, log)
