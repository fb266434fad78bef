"""Small helpers for the Kubernetes tests: wait on a condition with a generous deadline."""

import asyncio
from collections.abc import Callable


async def eventually(condition: Callable[[], bool], deadline: float = 15.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail after ``deadline`` seconds (generous: asserts outcomes, not timing)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
