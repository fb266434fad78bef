"""The admin server of a process (one gateway process, or the supervisor of a group of workers).

Rules:
1. ``/status`` is the served resources with their status plus ``lastReloadError``: null when the
   last reload succeeded, else its time and error lines.
2. An admin address that cannot be bound is a startup error.
"""

import asyncio
from collections.abc import Callable
from typing import Any

from mirrorgate.admin.server import AdminApp, start_admin
from mirrorgate.serve.apply import Reloader
from mirrorgate.serve.config import StartupError


def status_of(reloader: Reloader[Any], status: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """The ``/status`` document (rule 1)."""
    return lambda: {**status(), "lastReloadError": reloader.last_error}


async def listen_admin(app: AdminApp, address: tuple[str, int]) -> asyncio.Server:
    try:
        return await start_admin(app, *address)
    except OSError as exc:
        raise StartupError(f"cannot listen for the admin server on {address[0]}:{address[1]}: {exc}") from exc
