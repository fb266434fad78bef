"""The log lines of mirror traffic (logger ``mirrorgate.mirror``): drops at DEBUG, rate-limited;
breaker transitions at WARNING, once each.

Rules:
1. Drops are logged only when DEBUG is enabled. The dispatcher keeps that as one cached flag
   (``_debug``, read when it is made, on its first request, on every scrape and deadline sweep)
   and checks it before calling ``DropLog.drop``: with DEBUG off a drop costs that one check. (The
   flag is also up while the mirror access log is on, ``mirrorlog.py``: DEBUG is then checked
   again before ``DropLog.drop``.)
2. Per (backend, reason): the first drop is logged with its request when the mirror's head was
   already built (method, target, ``x-request-id``; a drop at admission has none). The drops that
   follow within ``INTERVAL`` seconds of the last line are only counted; one timer per
   (backend, reason) then writes ``N more drops of <reason> to <backend> in the last Xs``, so a
   dead mirror costs at most two lines per second per reason however many requests it drops,
   and the tail of a burst is not lost. After a quiet ``INTERVAL`` the next drop is logged in
   full again. ``close`` writes the pending summaries.
3. A breaker is logged at WARNING when it opens (how many consecutive failures, the last one's
   reason, for how long mirrors are dropped) and when it closes (what closed it: a probe that
   succeeded, or a response to a mirror sent before it opened; how long it was open, how many
   probes failed). A failed probe only extends the open period: DEBUG. Never one line per request.
"""

import asyncio
import logging
from typing import Any

from mirrorgate.mirror.backend import BackendState
from mirrorgate.mirror.config import DropReason

log = logging.getLogger("mirrorgate.mirror")

INTERVAL = 1.0  # seconds: at most one summary line per (backend, reason) per interval


class _Pending:
    """Drops of one (backend, reason) counted since the last line, and the timer that reports them."""

    __slots__ = ("count", "since", "timer")

    def __init__(self, since: float) -> None:
        self.since = since  # loop time of the last line written
        self.count = 0
        self.timer: asyncio.TimerHandle | None = None


class DropLog:
    """Rule 2: the rate-limited DEBUG lines about drops."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], _Pending] = {}

    def drop(self, loop: asyncio.AbstractEventLoop, backend: str, reason: DropReason | str, head: bytes = b"") -> None:
        """One drop of a mirror to ``backend``; ``head``: the mirror's head when it was built."""
        key = (backend, str(reason))
        now = loop.time()
        pending = self._pending.get(key)
        if pending is None or (not pending.count and now - pending.since >= INTERVAL):
            self._pending[key] = _Pending(now)
            log.debug("mirror to %s dropped: %s%s", backend, key[1], describe(head))
            return
        pending.count += 1
        if pending.timer is None:
            pending.timer = loop.call_at(pending.since + INTERVAL, self._report, loop, key)

    def _report(self, loop: asyncio.AbstractEventLoop, key: tuple[str, str]) -> None:
        pending = self._pending[key]
        pending.timer = None
        now = loop.time()
        _summary(key, pending, now)
        pending.since = now

    def close(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Write the pending summaries now and cancel their timers."""
        for key, pending in self._pending.items():
            if pending.timer is not None:
                pending.timer.cancel()
                pending.timer = None
                _summary(key, pending, loop.time() if loop is not None else pending.since)
        self._pending.clear()


def _summary(key: tuple[str, str], pending: _Pending, now: float) -> None:
    backend, reason = key
    count, pending.count = pending.count, 0
    if count:
        s = "" if count == 1 else "s"
        log.debug(
            "mirror to %s: %d more drop%s of %s in the last %.1fs", backend, count, s, reason, now - pending.since
        )


def describe(head: bytes) -> str:
    """`` (GET /path, x-request-id abc)`` from a mirror's head: its request line and request id."""
    if not head:
        return ""
    line, _, rest = head.partition(b"\r\n")
    method, _, target = line.partition(b" ")
    target = target.rpartition(b" ")[0]
    found = rest.find(b"x-request-id: ") if rest.startswith(b"x-request-id: ") else rest.find(b"\r\nx-request-id: ")
    rid = b""
    if found >= 0:
        start = rest.index(b": ", found) + 2
        rid = rest[start : rest.find(b"\r\n", start)]
    text = f"{method.decode('latin-1')} {target.decode('latin-1')}"
    return f" ({text}, x-request-id {rid.decode('latin-1')})" if rid else f" ({text})"


# --- the breaker (rule 3) ---------------------------------------------------------------------------


def breaker_failed(backend: BackendState[Any], reason: str, probe: bool, now: float) -> None:
    """After ``breaker.record_failure``: log the opening, or a failed probe."""
    breaker = backend.breaker
    if not breaker.open_until:
        return
    if not backend.open_since:
        backend.open_since = now
        backend.failed_probes = 0
        log.warning(
            "mirror backend %s: breaker open after %d consecutive failures (last: %s); "
            "mirrors to it are dropped for %ss",
            backend.name,
            breaker.failures,
            reason,
            breaker.open_duration,
        )
    elif probe:
        backend.failed_probes += 1
        log.debug(
            "mirror backend %s: breaker probe failed (%s); open for %ss more",
            backend.name,
            reason,
            breaker.open_duration,
        )


def breaker_closed(backend: BackendState[Any], probe: bool, now: float) -> None:
    """After ``breaker.record_success``: log the closing of a breaker that was logged open."""
    if not backend.open_since:
        return
    what = "probe succeeded" if probe else "a mirror response completed"
    failed = backend.failed_probes
    more = f", {failed} failed probe{'' if failed == 1 else 's'} before" if failed else ""
    log.warning(
        "mirror backend %s: breaker closed: %s (open %.1fs%s)", backend.name, what, now - backend.open_since, more
    )
    backend.open_since = 0.0
    backend.failed_probes = 0
