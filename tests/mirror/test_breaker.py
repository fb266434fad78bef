"""The circuit breaker as a pure state machine (the clock is passed in)."""

from mirrorgate.mirror.breaker import Breaker, Verdict


def test_opens_after_threshold_consecutive_failures() -> None:
    b = Breaker(3, 10.0)
    for now in (1.0, 2.0):
        b.record_failure(now)
        assert b.check(now) is Verdict.ALLOW
    b.record_failure(3.0)
    assert b.state(3.0) == "open"
    assert b.check(12.9) is Verdict.DENY


def test_success_resets_the_count() -> None:
    b = Breaker(2, 10.0)
    b.record_failure(0.0)
    b.record_success()
    b.record_failure(0.0)
    assert b.check(0.0) is Verdict.ALLOW


def test_half_open_lets_exactly_one_probe_through() -> None:
    b = Breaker(1, 5.0)
    b.record_failure(0.0)
    assert b.check(4.0) is Verdict.DENY
    assert b.state(5.0) == "half_open"
    assert b.check(5.0) is Verdict.PROBE
    assert b.check(5.0) is Verdict.DENY
    assert b.state(5.0) == "half_open"


def test_probe_failure_reopens_and_success_closes() -> None:
    b = Breaker(1, 5.0)
    b.record_failure(0.0)
    assert b.check(5.0) is Verdict.PROBE
    b.record_failure(5.0)
    assert b.check(9.9) is Verdict.DENY
    assert b.check(10.0) is Verdict.PROBE
    b.record_success()
    assert b.state(10.0) == "closed"
    assert b.check(10.0) is Verdict.ALLOW


def test_probe_without_verdict_frees_the_slot() -> None:
    b = Breaker(1, 5.0)
    b.record_failure(0.0)
    assert b.check(6.0) is Verdict.PROBE
    b.probe_done(b.probe)
    assert b.check(6.0) is Verdict.PROBE


def test_an_overtaken_probe_does_not_free_its_successors_slot() -> None:
    """Rule 3: probe 1 is still out (say, queued) when another mirror's failure reopens the
    breaker; after the open period probe 2 goes out. Probe 1 then ends without a verdict: that
    must not let a third probe through while probe 2 is out."""
    b = Breaker(1, 5.0)
    b.record_failure(0.0)
    assert b.check(5.0) is Verdict.PROBE
    first = b.probe
    b.record_failure(6.0)  # an older mirror's timeout: open again until 11
    assert b.check(11.0) is Verdict.PROBE
    second = b.probe
    assert second != first
    b.probe_done(first)
    assert b.check(11.0) is Verdict.DENY
    assert b.state(11.0) == "half_open"
    b.probe_done(second)
    assert b.check(11.0) is Verdict.PROBE


def test_threshold_zero_disables() -> None:
    b = Breaker(0, 5.0)
    for _ in range(100):
        b.record_failure(0.0)
    assert b.check(0.0) is Verdict.ALLOW
