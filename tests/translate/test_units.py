"""Unit tests of the translator's pure parts: hostnames, sampling rates, durations, precedence."""

import msgspec
import pytest

from mirrorgate.model.httproute import BackendObjectReference, Fraction, HTTPRequestMirrorFilter, HTTPRoute
from mirrorgate.translate import hostnames
from mirrorgate.translate.precedence import precedence_key
from mirrorgate.translate.values import duration_ms, mirror_ppm


@pytest.mark.parametrize(
    ("pattern", "host", "ok"),
    [
        ("", "anything.example", True),
        ("*.example.com", "test.example.com", True),
        ("*.example.com", "foo.test.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "xexample.com", False),
        ("very.specific.com", "very.specific.com", True),
        ("very.specific.com", "foo.specific.com", False),
    ],
)
def test_hostname_matches(pattern: str, host: str, ok: bool) -> None:
    assert hostnames.matches(pattern, host) is ok


@pytest.mark.parametrize(
    ("listener", "route", "want"),
    [
        (None, (), ("",)),
        (None, ("a.com", "*.b.com"), ("a.com", "*.b.com")),
        ("test.example.com", (), ("test.example.com",)),
        ("test.example.com", ("test.example.com",), ("test.example.com",)),
        ("test.example.com", ("*.example.com",), ("test.example.com",)),
        (
            "*.example.com",
            ("*.example.com", "test.example.com", "foo.test.example.com"),
            ("*.example.com", "test.example.com", "foo.test.example.com"),
        ),
        ("*.example.com", ("example.com", "test.example.net"), ()),
        ("very.specific.com", ("*.specific.com",), ("very.specific.com",)),
        ("*.foo.example.com", ("*.example.com",), ("*.foo.example.com",)),
    ],
)
def test_hostname_intersection(listener: str | None, route: tuple[str, ...], want: tuple[str, ...]) -> None:
    assert hostnames.intersect(listener, route) == want


def _mirror(percent: int | None = None, fraction: tuple[int, int] | None = None) -> HTTPRequestMirrorFilter:
    frac = Fraction(numerator=fraction[0], denominator=fraction[1]) if fraction else None
    ref = BackendObjectReference(name="m", port=80)
    return HTTPRequestMirrorFilter(backend_ref=ref, percent=percent, fraction=frac)


@pytest.mark.parametrize(
    ("percent", "fraction", "ppm"),
    [
        (None, None, 1_000_000),
        (0, None, 0),
        (42, None, 420_000),
        (100, None, 1_000_000),
        (None, (1, 3), 333_333),
        (None, (2, 3), 666_667),
        (None, (5, 1000), 5_000),
        (None, (25, 50), 500_000),
        (None, (0, 7), 0),
        (None, (7, 7), 1_000_000),
        (None, (1, 2_000_000_000), 1),  # a non-zero rate never rounds to "never"
    ],
)
def test_mirror_ppm_rounding(percent: int | None, fraction: tuple[int, int] | None, ppm: int) -> None:
    assert mirror_ppm(_mirror(percent, fraction)) == ppm


@pytest.mark.parametrize(
    ("text", "ms"),
    [("0s", 0), ("500ms", 500), ("1s500ms", 1500), ("1h30m", 5_400_000), ("10s", 10_000), ("2m", 120_000)],
)
def test_duration_ms(text: str, ms: int) -> None:
    assert duration_ms(text) == ms


def _route(name: str, ts: str, matches: list[dict[str, object]]) -> HTTPRoute:
    doc = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": ts},
        "spec": {"rules": [{"matches": matches}]},
    }
    return msgspec.convert(doc, HTTPRoute)


def _order(*specs: tuple[str, str, dict[str, object]]) -> list[str]:
    keyed = []
    for label, ts, match in specs:
        route = _route(label, ts, [match])
        m = route.spec.rules[0].matches[0]
        keyed.append((precedence_key(route, 0, 0, m), label))
    return [label for _, label in sorted(keyed)]


def test_precedence_exact_beats_longer_prefix() -> None:
    got = _order(
        ("prefix", "", {"path": {"type": "PathPrefix", "value": "/match/"}}),
        ("exact", "", {"path": {"type": "Exact", "value": "/match"}}),
    )
    assert got == ["exact", "prefix"]


def test_precedence_prefix_length_then_method_then_headers_then_query() -> None:
    got = _order(
        ("query", "", {"queryParams": [{"name": "a", "value": "b"}]}),
        ("long", "", {"path": {"value": "/path5"}}),
        ("method", "", {"method": "PATCH"}),
        ("header", "", {"headers": [{"name": "version", "value": "four"}]}),
    )
    assert got == ["long", "method", "header", "query"]


def test_precedence_oldest_route_then_name() -> None:
    got = _order(
        ("b-new", "2024-01-02T00:00:00Z", {}),
        ("z-old", "2024-01-01T00:00:00Z", {}),
        ("a-new", "2024-01-02T00:00:00Z", {}),
    )
    assert got == ["z-old", "a-new", "b-new"]


def test_precedence_regex_between_exact_and_prefix() -> None:
    got = _order(
        ("prefix", "", {"path": {"type": "PathPrefix", "value": "/aaaaaaaaaaaa"}}),
        ("regex", "", {"path": {"type": "RegularExpression", "value": "/a.*"}}),
        ("exact", "", {"path": {"type": "Exact", "value": "/a"}}),
    )
    assert got == ["exact", "regex", "prefix"]
