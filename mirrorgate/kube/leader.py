"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's leaderelection semantics.

Rules:

- Timings default to the core components' 15 s lease, 10 s renew deadline and 2 s retry period;
  ``lease_duration > renew_deadline > 1.2 * retry_period`` is required.
- Decisions use a local monotonic clock only: the Lease's timestamps are never trusted, only
  whether its record changed. A record seen changing resets ``observed_at``; another holder is
  considered alive until ``observed_at`` plus the record's ``leaseDurationSeconds`` (ours when
  absent) by the local clock.
- A round GETs the Lease (404: create it as holder), then, when it is ours or expired, PUTs it
  with the resourceVersion read, so two candidates racing for it cannot both win (409 loses).
  Renewing keeps ``acquireTime``; a takeover sets it and adds one to ``leaseTransitions``.
  Times are RFC 3339 MicroTime in UTC (``2026-01-02T03:04:05.000000Z``).
- Each round is bounded by a timeout (as leader: what is left of the renew deadline), so a hung
  request cannot keep a leader believing it leads. No successful renew within ``renew_deadline``,
  or another holder seen, means leadership is lost: ``is_leader`` drops, ``on_stopped`` runs at
  once, and the elector goes back to being a candidate.
- Nothing fences: for a moment two processes may both act as leader, so leader-only writes must
  be conflict-checked (PUT with resourceVersion).
- On cancellation a leader releases the Lease (empty ``holderIdentity``) so a standby takes over
  within a retry period instead of a lease duration.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mirrorgate.kube.client import LEASES, Conflict, KubeClient, KubeError, NotFound
from mirrorgate.kube.kubeconfig import KubeconfigError

log = logging.getLogger("mirrorgate.kube.leader")


@dataclass(frozen=True)
class LeaseTimings:
    """client-go's LeaseDuration, RenewDeadline and RetryPeriod, in seconds."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline:
            raise ValueError("lease duration must be greater than the renew deadline")
        if not self.renew_deadline > 1.2 * self.retry_period:
            raise ValueError("renew deadline must be greater than 1.2 x the retry period")
        if self.retry_period <= 0:
            raise ValueError("retry period must be positive")


def micro_time(moment: datetime) -> str:
    """RFC 3339 MicroTime in UTC, always with six fractional digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity(environ: dict[str, str] | None = None) -> str:
    """The pod name (``$POD_NAME``, else the host name) plus a random suffix: unique per process."""
    env = os.environ if environ is None else environ
    return f"{env.get('POD_NAME') or socket.gethostname()}_{secrets.token_hex(4)}"


class LeaderElector:
    """Campaigns for the Lease ``namespace/name`` while ``run()`` runs."""

    def __init__(
        self,
        client: KubeClient,
        name: str,
        namespace: str,
        *,
        identity: str | None = None,
        timings: LeaseTimings | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_started: Callable[[], None] | None = None,
        on_stopped: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.timings = timings or LeaseTimings()
        self.clock = clock
        self.wall = wall
        self.on_started = on_started
        self.on_stopped = on_stopped
        self.rng = rng or random.Random()
        self.is_leader = False
        self.leading = asyncio.Event()
        self.stopped = asyncio.Event()
        self.observed: dict[str, Any] | None = None
        self.observed_at = 0.0
        self.last_renew = 0.0
        self._other_holder = False

    async def run(self, *, release_on_cancel: bool = True) -> None:
        """Campaign until cancelled; a leader releases the Lease on the way out."""
        try:
            while True:
                await self._round()
                await asyncio.sleep(self._pause())
        finally:
            if self.is_leader and release_on_cancel:
                await self._release_quietly()
            self._set_leader(False)

    def _pause(self) -> float:
        period = self.timings.retry_period
        if self.is_leader:
            left = self.last_renew + self.timings.renew_deadline - self.clock()
            return max(0.0, min(period, left))
        return period * (1 + 0.2 * self.rng.random())

    async def _round(self) -> None:
        budget = self.timings.renew_deadline
        if self.is_leader:
            budget = max(0.001, self.last_renew + budget - self.clock())
        ok = False
        try:
            async with asyncio.timeout(budget):
                ok = await self.try_acquire_or_renew()
        except (TimeoutError, KubeError, KubeconfigError) as exc:
            log.warning("lease %s/%s: %s", self.namespace, self.name, exc or type(exc).__name__)
        if ok:
            self.last_renew = self.clock()
            self._set_leader(True)
        elif self.is_leader and (self._other_holder or self.clock() - self.last_renew >= self.timings.renew_deadline):
            log.warning("lease %s/%s: leadership lost", self.namespace, self.name)
            self._set_leader(False)

    def _set_leader(self, leader: bool) -> None:
        if leader == self.is_leader:
            return
        self.is_leader = leader
        if leader:
            self.stopped.clear()
            self.leading.set()
            callback = self.on_started
        else:
            self.leading.clear()
            self.stopped.set()
            callback = self.on_stopped
        if callback is not None:
            callback()

    async def try_acquire_or_renew(self) -> bool:
        """One round: True when we hold the Lease afterwards."""
        self._other_holder = False
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except NotFound:
            return await self._create()
        spec = lease.get("spec") or {}
        now = self.clock()
        if spec != self.observed:
            self.observed, self.observed_at = spec, now
        holder = spec.get("holderIdentity") or ""
        duration = spec.get("leaseDurationSeconds") or self.timings.lease_duration
        if holder and holder != self.identity and now < self.observed_at + float(duration):
            self._other_holder = True
            return False
        lease["spec"] = self._record(spec if holder == self.identity else None, spec)
        try:
            written = await self.client.replace(LEASES, lease)
        except Conflict:
            return False
        self.observed, self.observed_at = written.get("spec") or {}, self.clock()
        return True

    def _record(self, ours: dict[str, Any] | None, previous: dict[str, Any]) -> dict[str, Any]:
        now = micro_time(self.wall())
        transitions = int(previous.get("leaseTransitions") or 0)
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": math.ceil(self.timings.lease_duration),
            "acquireTime": (ours or {}).get("acquireTime") or now,
            "renewTime": now,
            "leaseTransitions": transitions if ours is not None else transitions + (1 if previous else 0),
        }

    async def _create(self) -> bool:
        body = {
            "apiVersion": LEASES.api_version,
            "kind": LEASES.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": self._record(None, {}),
        }
        try:
            written = await self.client.create(LEASES, body, self.namespace)
        except Conflict:
            return False
        self.observed, self.observed_at = written.get("spec") or {}, self.clock()
        return True

    async def release(self) -> bool:
        """Empty ``holderIdentity`` when we hold the Lease; True when released."""
        lease = await self.client.get(LEASES, self.name, self.namespace)
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.identity:
            return False
        now = micro_time(self.wall())
        lease["spec"] = {**spec, "holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": now, "acquireTime": now}
        try:
            await self.client.replace(LEASES, lease)
        except Conflict:
            return False
        return True

    async def _release_quietly(self) -> None:
        try:
            async with asyncio.timeout(self.timings.renew_deadline):
                await self.release()
        except (TimeoutError, KubeError, KubeconfigError) as exc:
            log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, exc)
