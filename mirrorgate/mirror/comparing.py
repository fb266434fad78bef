"""The comparing half of ``Dispatcher`` (its rule 11): ``start_compared``/``submit_compared``, the
``start``/``submit`` of a request whose admitted mirrors include one with ``compare``, and the
views of the dispatcher's counters (``stats``, the metrics' gauges) and comparisons (``views.py``).

``Comparing`` is a mixin on ``Shaping`` (``shaped.py``): the dispatcher's ``__init__`` sets the
attributes declared here. Mirrors that compare come from a MirrorPolicy, so a compared request
is also sampled, headed and limited by its mirrors' ``Shape``s: ``submit_compared`` takes the
``shapes`` and ``client`` ``submit`` takes, ``start_compared`` what ``admit_shaped`` (or ``admit``,
when no mirror has a shape) let through; the ``Shadow`` of each is made by ``Shaping._shaped``.
"""

from collections.abc import Sequence

from mirrorgate.ir.table import Mirror
from mirrorgate.mirror.admission import Admitted, Header, Shapes
from mirrorgate.mirror.backend import breaker_state
from mirrorgate.mirror.board import Board
from mirrorgate.mirror.capture import PrimaryCapture, Request
from mirrorgate.mirror.head import MirrorHead
from mirrorgate.mirror.metrics import BackendGauges, MirrorStats, Stats
from mirrorgate.mirror.mirrorlog import MirroredRequest, RequestView
from mirrorgate.mirror.shadow import Shadow, Tee
from mirrorgate.mirror.shaped import Shaping
from mirrorgate.mirror.views import DispatcherViews


class Comparing(Shaping):
    """Rule 11 of the dispatcher; see ``Dispatcher``."""

    __slots__ = ()

    board: Board
    _buffered: int
    _inflight: set[Shadow]

    def submit_compared(
        self,
        mirrors: tuple[Mirror, ...],
        method: bytes,
        target: bytes,
        headers: list[Header],
        has_body: bool,
        record: Request,
        shapes: Shapes | None = None,
        client: tuple[bytes, Sequence[Header]] | None = None,
        capture: PrimaryCapture | None = None,
        request: MirroredRequest | None = None,
    ) -> tuple[Tee | None, PrimaryCapture | None]:
        """``submit`` for mirrors of which some have ``compare`` (rule 11): also the capture the
        exchange feeds with the primary's response (None: nothing is compared). ``record``: the
        request for a mismatch record; ``shapes`` and ``client``: as ``submit``'s (the mirrors'
        MirrorPolicy settings, the client's target and headers as received); ``capture``: the
        one the request already has (mirrors of its rule and of its backendRef); ``request``:
        the primary, for the mirror access log."""
        if request is not None and self.access_log is not None:
            request = RequestView.of(request, method, target, headers)
        admitted = self._admit_any(mirrors, target, headers, shapes, client, request)
        if admitted is None:
            return None, capture
        shared = self._shared_head(admitted, method, target, headers, has_body)
        return self._start_compared(admitted, shared, has_body, (method, target, headers), request, record, capture)

    def start_compared(
        self,
        admitted: list[Admitted],
        parts: list[bytes],
        host_at: int,
        has_body: bool,
        content_length: int | None,
        is_head: bool,
        request: MirroredRequest | None,
        record: Request,
    ) -> tuple[Tee | None, PrimaryCapture | None]:
        """``start`` (``start_shaped``) for mirrors of which some have ``compare`` (rule 11); see
        ``submit_compared``."""
        shared, own = self._heads(admitted, parts, host_at, has_body, content_length, is_head)
        return self._start_compared(admitted, shared, has_body, own, request, record, None)

    def _start_compared(
        self,
        admitted: list[Admitted],
        head: MirrorHead | None,
        has_body: bool,
        forwarded: tuple[bytes, bytes, list[Header]] | None,
        request: MirroredRequest | None,
        record: Request,
        capture: PrimaryCapture | None,
    ) -> tuple[Tee | None, PrimaryCapture | None]:
        primary = self.board.primary(record, admitted, capture)
        if primary is None:  # nothing to compare (or the board is at its cap): as ``start_shaped``
            return self._start_with(admitted, head, has_body, forwarded, request), None
        tee = self._start_with(admitted, head, has_body, forwarded, request, primary)
        if not primary.comparisons:
            return tee, None  # every compared mirror was refused a place
        return tee, primary

    def stats(self) -> Stats:
        """A snapshot (copies) of every counter, for tests and the admin server."""
        out = Stats(buffered_bytes=self._buffered, tasks=len(self._inflight))
        for backend in self._backends.values():
            out.inflight[backend.name] = backend.inflight
            out.queued[backend.name] = len(backend.queue)
            out.breakers[backend.name] = breaker_state(backend)
        for (name, backend_name), series in sorted(self._series.items()):
            st = MirrorStats.of(series)
            out.mirrors[name if name not in out.mirrors else f"{name}@{backend_name}"] = st
            out.sent += st.sent
            out.sampled_out += st.sampled_out
            for key, n in st.completed.items():
                out.completed[key] = out.completed.get(key, 0) + n
            for key, n in st.dropped.items():
                out.dropped[key] = out.dropped.get(key, 0) + n
        return out

    def _gauges(self) -> list[BackendGauges]:
        self._debug = self._watching()  # (drops log at debug: the level, now)
        return [
            BackendGauges(b.name, b.inflight, len(b.queue), breaker_state(b) != "closed")
            for b in tuple(self._backends.values())
        ]

    def views(self) -> DispatcherViews:
        """What ``/mirrors`` and ``/mirrors/<id>/diffs`` show of this dispatcher (``views.py``)."""
        return DispatcherViews(lambda: list(tuple(self._series.values())), self.board)
