"""Waiting for an event in tests: poll a predicate until it holds, with a generous bound.

The bound only turns a hang into a failure; no test asserts on how long a wait took, so a busy
host makes a test slower, never red.
"""

import asyncio
from collections.abc import Awaitable, Callable

WAIT_LIMIT = 20.0  # seconds: the bound of every ``until``


async def until(predicate: Callable[[], bool], what: str = "condition", limit: float = WAIT_LIMIT) -> None:
    """Wait (bounded by ``limit``) until ``predicate()`` holds, polling every 5 ms."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + limit
    while not predicate():
        assert loop.time() < give_up, f"gave up waiting for {what}"
        await asyncio.sleep(0.005)


async def until_async(probe: Callable[[], Awaitable[bool]], what: str = "condition", limit: float = WAIT_LIMIT) -> None:
    """``until`` for a probe that must await (a request, a handshake), polling every 50 ms."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + limit
    while not await probe():
        assert loop.time() < give_up, f"gave up waiting for {what}"
        await asyncio.sleep(0.05)
