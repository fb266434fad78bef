"""Loop signal handlers and the cleanup of helper tasks.

Rules:
1. Signal handlers are installed for the duration of a ``with`` block, on the main thread only
   (a gateway run in a thread, as tests do, installs none).
2. Helper tasks are cancelled and awaited: none outlives the block that started it.
"""

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager


@contextmanager
def on_signal(signum: signal.Signals, handler: Callable[[], None]) -> Iterator[None]:
    """Install a loop signal handler for the duration (only possible on the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signum, handler)
    try:
        yield
    finally:
        loop.remove_signal_handler(signum)


async def cancel_all(tasks: Sequence["asyncio.Task[None]"]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)


async def every(seconds: float, action: Callable[[], None]) -> None:
    """Call ``action`` every ``seconds`` until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        action()
