"""Loop signal handlers and the cleanup of helper tasks.

Rules:
1. Signal handlers are installed for the duration of a ``with`` block, on the main thread only
   (a gateway run in a thread, as tests do, installs none).
2. Helper tasks are cancelled and awaited: none outlives the block that started it.
3. SIGINT and SIGTERM mean "stop gracefully" (``until_stopped``). Once that block ends, the
   process is stopping: further SIGINT/SIGTERM are ignored until the loop is closed (a second
   Ctrl-C during the drain, or while the interpreter waits for its threads at exit, must not
   raise ``KeyboardInterrupt``). The process exits soon after; an in-process caller on the main
   thread that goes on living restores the handlers itself (``signal.signal``).
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


@contextmanager
def until_stopped(stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT and SIGTERM call ``stop`` for the duration; ignored afterwards (rule 3)."""
    try:
        with on_signal(signal.SIGINT, stop), on_signal(signal.SIGTERM, stop):
            yield
    finally:
        ignore_stop_signals()


def ignore_stop_signals() -> None:
    """Ignore SIGINT and SIGTERM from now on (rule 3); main thread only."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


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
