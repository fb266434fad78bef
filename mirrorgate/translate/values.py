"""Field conversions shared by HTTPRoute rules and MirrorPolicy: header edits, sampling rates, durations.

Rules:
1. ``header_modifier``: an HTTPHeaderFilter's first entry per (case-insensitive) name wins, in
   each of ``set``, ``add`` and ``remove``, as the Gateway API says.
2. ``mirror_ppm``: ``percent``/``fraction`` of a RequestMirror filter or a MirrorPolicy in parts
   per million (see its docstring for the rounding).
3. ``duration_ms``: a GEP-2257 duration in milliseconds.
"""

import re
from typing import Protocol

from mirrorgate.ir.table import PPM, HeaderModifier
from mirrorgate.model.httproute import Fraction, HTTPHeaderFilter


class Sampled(Protocol):
    """What carries a mirror sampling rate: a RequestMirror filter or a MirrorPolicy spec."""

    @property
    def percent(self) -> int | None: ...

    @property
    def fraction(self) -> Fraction | None: ...


def header_modifier(h: HTTPHeaderFilter) -> HeaderModifier:
    """First entry per (case-insensitive) name wins, as the spec says."""
    seen: set[str] = set()

    def first(pairs: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        out = []
        for name, value in pairs:
            if name.lower() not in seen:
                seen.add(name.lower())
                out.append((name, value))
        return tuple(out)

    set_ = first([(x.name, x.value) for x in h.set])
    add = first([(x.name, x.value) for x in h.add])
    remove = tuple(n for n, _ in first([(n, "") for n in h.remove]))
    return HeaderModifier(set=set_, add=add, remove=remove)


def mirror_ppm(m: Sampled) -> int:
    """Sampling rate in parts per million.

    ``percent`` p -> p * 10,000 exactly. ``fraction`` n/d -> n * 1e6 / d rounded half up to the
    nearest integer, but never rounded down to 0 when n > 0 (a configured non-zero rate mirrors
    something), e.g. 1/3 -> 333,333 and 2/3 -> 666,667. Neither set -> 1,000,000 (all).
    """
    if m.percent is not None:
        return m.percent * 10_000
    if m.fraction is not None:
        n, d = m.fraction.numerator, m.fraction.denominator
        ppm = (2 * n * PPM + d) // (2 * d)
        return max(ppm, 1) if n > 0 else 0
    return PPM


_DURATION = re.compile(r"([0-9]{1,5})(h|ms|m|s)")
_UNIT_MS = {"h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}


def duration_ms(text: str) -> int:
    """A GEP-2257 duration (``1h30m``, ``500ms``, ``0s``) in milliseconds; admission checked the format."""
    return sum(int(n) * _UNIT_MS[u] for n, u in _DURATION.findall(text))
