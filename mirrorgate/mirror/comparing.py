"""The comparing half of ``Dispatcher`` (its rule 10): ``start_compared``/``submit_compared``, the
``start``/``submit`` of a request whose admitted mirrors include one with ``compare``, and the
views of the dispatcher's counters and comparisons (``views.py``).

``Comparing`` is a mixin: the dispatcher's ``__init__`` sets the attributes declared here.
"""

from mirrorgate.ir.table import Mirror
from mirrorgate.mirror.admission import Admitted
from mirrorgate.mirror.board import Board, Request
from mirrorgate.mirror.capture import PrimaryCapture
from mirrorgate.mirror.config import MirrorConfig
from mirrorgate.mirror.head import MirrorHead, build_head, head_from_parts
from mirrorgate.mirror.metrics import MirrorSeries
from mirrorgate.mirror.mirrorlog import MirroredRequest, MirrorLog, RequestView
from mirrorgate.mirror.shadow import Tee
from mirrorgate.mirror.views import DispatcherViews

Header = tuple[bytes, bytes]


class Comparing:
    """Rule 10 of the dispatcher; see ``Dispatcher``."""

    __slots__ = ()

    board: Board
    config: MirrorConfig
    access_log: MirrorLog | None
    _series: dict[tuple[str, str], MirrorSeries]

    def admit(self, mirrors: tuple[Mirror, ...], request: MirroredRequest | None = None) -> list[Admitted] | None:
        raise NotImplementedError  # ``Admission.admit``

    def _start_with(
        self,
        admitted: list[Admitted],
        head: MirrorHead,
        request: MirroredRequest | None,
        primary: PrimaryCapture | None = None,
    ) -> Tee | None:
        raise NotImplementedError  # ``Dispatcher._start_with``

    def submit_compared(
        self,
        mirrors: tuple[Mirror, ...],
        method: bytes,
        target: bytes,
        headers: list[Header],
        has_body: bool,
        record: Request,
        capture: PrimaryCapture | None = None,
        request: MirroredRequest | None = None,
    ) -> tuple[Tee | None, PrimaryCapture | None]:
        """``submit`` for mirrors of which some have ``compare`` (rule 10): also the capture the
        exchange feeds with the primary's response (None: nothing is compared). ``record``: the
        request for a mismatch record; ``capture``: the one the request already has (mirrors of
        its rule and of its backendRef); ``request``: the primary, for the mirror access log."""
        if request is not None and self.access_log is not None:
            request = RequestView.of(request, method, target, headers)
        admitted = self.admit(mirrors, request)
        if admitted is None:
            return None, capture
        head = build_head(method, target, headers, has_body, self.config.shadow_host_suffix)
        return self._start_compared(admitted, head, request, record, capture)

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
        """``start`` for mirrors of which some have ``compare`` (rule 10); see ``submit_compared``."""
        shadow = self.config.shadow_host_suffix
        head = head_from_parts(parts, host_at, has_body, content_length, shadow, is_head)
        return self._start_compared(admitted, head, request, record, None)

    def _start_compared(
        self,
        admitted: list[Admitted],
        head: MirrorHead,
        request: MirroredRequest | None,
        record: Request,
        capture: PrimaryCapture | None,
    ) -> tuple[Tee | None, PrimaryCapture | None]:
        compared = [a[0] for a in admitted if a[0].compare is not None]
        primary = self.board.primary(record, compared, capture) if compared else capture
        tee = self._start_with(admitted, head, request, primary)
        if primary is not None and not primary.comparisons:
            primary = None  # every compared mirror was refused a place
        return tee, primary

    def views(self) -> DispatcherViews:
        """What ``/mirrors`` and ``/mirrors/<id>/diffs`` show of this dispatcher (``views.py``)."""
        return DispatcherViews(lambda: list(tuple(self._series.values())), self.board)
