"""Fixtures: a fake API server over real HTTP and a client connected to it through a kubeconfig."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mirrorgate.kube.client import KubeClient
from mirrorgate.kube.kubeconfig import resolve
from tests.kube.fakeapi import FakeApiServer


@pytest.fixture
async def api() -> AsyncIterator[FakeApiServer]:
    async with FakeApiServer() as server:
        yield server


@pytest.fixture
async def client(api: FakeApiServer, tmp_path: Path) -> AsyncIterator[KubeClient]:
    conn = resolve(str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    async with await KubeClient.connect(conn, request_timeout=5) as c:
        yield c
