"""Per-backend runtime state of mirror traffic: concurrency slots, the bounded queue, round-robin
position and the circuit breaker.

Rules: ``inflight`` counts mirror requests holding a slot (a task exists for each);
``inflight <= cap`` always; ``queue`` holds at most ``max_queue`` requests that have no task yet.
Only the dispatcher changes these fields.
"""

from collections import deque
from typing import TYPE_CHECKING

from mirrorgate.ir.table import Endpoint
from mirrorgate.mirror.breaker import Breaker

if TYPE_CHECKING:
    from mirrorgate.mirror.body import Shadow


class BackendState:
    __slots__ = ("breaker", "inflight", "last_log", "name", "queue", "rr")

    def __init__(self, name: str, breaker: Breaker) -> None:
        self.name = name
        self.breaker = breaker
        self.inflight = 0
        self.queue: deque[Shadow] = deque()
        self.rr = 0  # round-robin position over the backend's endpoints
        self.last_log = 0.0  # loop time of the last debug log line (rate limit)

    def __repr__(self) -> str:
        return f"<BackendState {self.name} inflight={self.inflight} queued={len(self.queue)} {self.breaker!r}>"

    def next_endpoint(self, endpoints: tuple[Endpoint, ...]) -> Endpoint:
        """Round-robin over ``endpoints`` (non-empty): one endpoint per mirrored request (DESIGN §2.6)."""
        i = self.rr
        self.rr = i + 1
        return endpoints[i % len(endpoints)]
