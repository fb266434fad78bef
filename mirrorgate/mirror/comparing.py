"""The comparing half of ``Dispatcher`` (its rule 9): ``start_compared``/``submit_compared``, the
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
from mirrorgate.mirror.shadow import Tee
from mirrorgate.mirror.views import DispatcherViews

Header = tuple[bytes, bytes]


class Comparing:
    """Rule 9 of the dispatcher; see ``Dispatcher``."""

    __slots__ = ()

    board: Board
    config: MirrorConfig
    _series: dict[tuple[str, str], MirrorSeries]

    def admit(self, mirrors: tuple[Mirror, ...]) -> list[Admitted] | None:
        raise NotImplementedError  # ``Admission.admit``

    def _start_with(
        self, admitted: list[Admitted], head: MirrorHead, primary: PrimaryCapture | None = None
    ) -> Tee | None:
        raise NotImplementedError  # ``Dispatcher._start_with``

    def submit_compared(
        self,
        mirrors: tuple[Mirror, ...],
        method: bytes,
        target: bytes,
        headers: list[Header],
        has_body: bool,
        request: Request,
        capture: PrimaryCapture | None = None,
    ) -> tuple[Tee | None, PrimaryCapture | None]:
        """``submit`` for mirrors of which some have ``compare`` (rule 9): also the capture the
        exchange feeds with the primary's response (None: nothing is compared). ``capture`` is the
        one the request already has (mirrors of its rule and of its backendRef)."""
        admitted = self.admit(mirrors)
        if admitted is None:
            return None, capture
        head = build_head(method, target, headers, has_body, self.config.shadow_host_suffix)
        return self._start_compared(admitted, head, request, capture)

    def start_compared(
        self,
        admitted: list[Admitted],
        parts: list[bytes],
        host_at: int,
        has_body: bool,
        content_length: int | None,
        is_head: bool,
        request: Request,
    ) -> tuple[Tee | None, PrimaryCapture | None]:
        """``start`` for mirrors of which some have ``compare`` (rule 9); see ``submit_compared``."""
        shadow = self.config.shadow_host_suffix
        head = head_from_parts(parts, host_at, has_body, content_length, shadow, is_head)
        return self._start_compared(admitted, head, request, None)

    def _start_compared(
        self, admitted: list[Admitted], head: MirrorHead, request: Request, capture: PrimaryCapture | None
    ) -> tuple[Tee | None, PrimaryCapture | None]:
        compared = [a[0] for a in admitted if a[0].compare is not None]
        primary = self.board.primary(request, compared, capture) if compared else capture
        tee = self._start_with(admitted, head, primary)
        if primary is not None and not primary.comparisons:
            primary = None  # every compared mirror was refused a place
        return tee, primary

    def views(self) -> DispatcherViews:
        """What ``/mirrors`` and ``/mirrors/<id>/diffs`` show of this dispatcher (``views.py``)."""
        return DispatcherViews(lambda: list(tuple(self._series.values())), self.board)
