"""A per-backend circuit breaker for mirror traffic.

States: CLOSED (every mirror may dial), OPEN (``open_until`` in the future: every mirror is
dropped without dialling), HALF-OPEN (``open_until`` passed: exactly one mirror, the probe, may
dial; the others are dropped until it has a verdict).

Rules:
1. Failures are what a dead or hung backend produces: connect errors, connect timeouts and
   response timeouts. ``threshold`` consecutive failures open the breaker; any failure while
   open or half-open (re)opens it for ``open_duration``.
2. A complete response (any status) is a success: it closes the breaker and resets the count.
   Resets and protocol errors are neither (the backend is reachable and answering quickly).
3. A probe that ends without a verdict (dropped for body lag, primary aborted, shutdown) frees the
   probe slot, so the next request probes. Each probe has a number (``probe``, counted from 1);
   only the current probe frees the slot: a probe overtaken by a reopening (another mirror's
   failure, then a new probe after the open period) must not free its successor's slot, or a
   third could dial while the second is still out.
4. ``threshold == 0`` disables the breaker. The clock is passed in, so tests need no sleeps.
"""

from enum import IntEnum


class Verdict(IntEnum):
    ALLOW = 0
    PROBE = 1
    DENY = 2


class Breaker:
    __slots__ = ("failures", "open_duration", "open_until", "probe", "probing", "threshold")

    def __init__(self, threshold: int, open_duration: float) -> None:
        self.threshold = threshold
        self.open_duration = open_duration
        self.failures = 0  # consecutive, since the last success
        self.open_until = 0.0  # 0: closed
        self.probing = False  # a half-open probe is in flight
        self.probe = 0  # the number of the latest probe let through (rule 3)

    def __repr__(self) -> str:
        return f"<Breaker open_until={self.open_until} probing={self.probing} failures={self.failures}>"

    def state(self, now: float) -> str:
        """``closed``, ``open`` or ``half_open`` (the open period is over: probing or about to)."""
        if not self.open_until:
            return "closed"
        return "open" if now < self.open_until and not self.probing else "half_open"

    def check(self, now: float) -> Verdict:
        """May a new mirror request dial this backend now?"""
        if not self.open_until:
            return Verdict.ALLOW
        if now < self.open_until or self.probing:
            return Verdict.DENY
        self.probing = True
        self.probe += 1
        return Verdict.PROBE

    def record_success(self) -> None:
        self.failures = 0
        self.open_until = 0.0
        self.probing = False

    def record_failure(self, now: float) -> None:
        if not self.threshold:
            return
        self.failures += 1
        if self.open_until or self.failures >= self.threshold:
            self.open_until = now + self.open_duration
        self.probing = False

    def probe_done(self, probe: int) -> None:
        """Probe number ``probe`` ended without success or failure (rule 3)."""
        if probe == self.probe:
            self.probing = False
