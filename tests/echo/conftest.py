"""Fixtures for the echo backend tests: a real server on 127.0.0.1 and a tiny raw HTTP client.

Every async test runs on both the default asyncio loop and uvloop (the production loop) when the
installed pytest-asyncio offers the ``pytest_asyncio_loop_factories`` hook.
"""

import asyncio
import io
from collections.abc import AsyncIterator, Callable, Mapping

import pytest
import pytest_asyncio.plugin
import uvloop

from mirrorgate.echo import EchoConfig, start_echo
from tests.echo.client import Echo

if hasattr(pytest_asyncio.plugin, "PytestAsyncioSpecs"):

    def pytest_asyncio_loop_factories(
        config: pytest.Config, item: pytest.Item
    ) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    log = io.StringIO()
    config = EchoConfig(
        port=0, bind="127.0.0.1", name="infra-backend-v1-7d9c5b8f4-x2x7q", namespace="gateway-conformance-infra"
    )
    async with await start_echo(config, log=log) as server:
        yield Echo(server, log)
