"""The log lines of mirror traffic, with real sockets: a breaker's opening and closing at WARNING,
once each; drops at DEBUG, rate-limited per (backend, reason), and nothing when DEBUG is off."""

import logging
import re

import pytest

from mirrorgate.mirror import logs
from tests.support.waiting import until

from .conftest import BACKEND, MakeDispatcher, StartBackend, make_mirror, refused_endpoint, request_headers
from .test_isolation import submit_many

LOGGER = "mirrorgate.mirror"


def lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


async def test_breaker_open_and_closed_are_one_warning_each(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    d = make_dispatcher(breaker_failures=3, breaker_open_duration=0.2)
    dead = refused_endpoint()
    submit_many(d, dead, 3)
    await until(lambda: d.stats().breakers[BACKEND] == "open")
    submit_many(d, dead, 40)  # dropped at admission: no line each
    await until(lambda: d.stats().breakers[BACKEND] == "half_open")
    submit_many(d, dead, 5)  # one probe, refused: the breaker stays open, no new warning
    await until(lambda: d.stats().dropped.get("connect_error") == 4)
    assert lines(caplog, logging.WARNING) == [
        f"mirror backend {BACKEND}: breaker open after 3 consecutive failures (last: connect_error); "
        "mirrors to it are dropped for 0.2s"
    ]
    # the backend comes back on the same port: the next probe closes the breaker
    back = await start_backend(port=dead.port)
    await until(lambda: d.stats().breakers[BACKEND] == "half_open")
    submit_many(d, back.endpoint, 3)
    await until(lambda: d.stats().completed.get("2xx") == 1)
    submit_many(d, back.endpoint, 3)
    await until(lambda: d.stats().completed.get("2xx") == 4)
    warnings = lines(caplog, logging.WARNING)
    assert len(warnings) == 2
    assert re.fullmatch(
        rf"mirror backend {BACKEND}: breaker closed: probe succeeded \(open \d+\.\ds, 1 failed probe before\)",
        warnings[1],
    )
    assert lines(caplog, logging.DEBUG) == []  # drops are not logged unless DEBUG is on


async def test_a_burst_of_drops_is_the_first_line_then_summaries(
    make_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "INTERVAL", 0.2)
    d = make_dispatcher(breaker_failures=0, max_concurrent_per_backend=4, max_queue_per_backend=0)
    caplog.set_level(logging.DEBUG, logger=LOGGER)  # after the dispatcher was made: seen on its first request
    dead = refused_endpoint()
    n = 300
    for i in range(n):
        d.submit((make_mirror(dead),), b"GET", b"/burst/%d" % i, request_headers(request_id=b"rid-%d" % i), False)
    await until(lambda: sum(d.stats().dropped.values()) == n, "every mirror dropped")
    dropped = d.stats().dropped
    assert set(dropped) == {"connect_error", "over_capacity"}
    await until(lambda: sum(_logged(lines(caplog, logging.DEBUG)).values()) == n, "every drop reported")
    debug = lines(caplog, logging.DEBUG)
    assert _logged(debug) == dropped  # each drop counted exactly once, by its reason
    assert len(debug) <= 8  # per reason: the first line, then a few summaries, not one line per drop
    firsts = [line for line in debug if " dropped: " in line]
    assert sorted(firsts) == [
        f"mirror to {BACKEND} dropped: connect_error (GET /burst/0, x-request-id rid-0)",
        f"mirror to {BACKEND} dropped: over_capacity",  # at admission: no head built, no request to name
    ]


def _logged(debug: list[str]) -> dict[str, int]:
    """Drops per reason as the DEBUG lines tell them: 1 per first line, N per summary."""
    out: dict[str, int] = {}
    for line in debug:
        if first := re.fullmatch(rf"mirror to {BACKEND} dropped: (\w+).*", line):
            reason, count = first.group(1), 1
        else:
            summary = re.fullmatch(rf"mirror to {BACKEND}: (\d+) more drops? of (\w+) in the last \d+\.\ds", line)
            assert summary is not None, line
            reason, count = summary.group(2), int(summary.group(1))
        out[reason] = out.get(reason, 0) + count
    return out


async def test_drops_are_not_logged_without_debug(
    make_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    d = make_dispatcher(breaker_failures=0, max_concurrent_per_backend=4, max_queue_per_backend=0)
    submit_many(d, refused_endpoint(), 100)
    await until(lambda: sum(d.stats().dropped.values()) == 100, "every mirror dropped")
    assert not d._debug
    assert [r for r in caplog.records if r.name == LOGGER] == []
